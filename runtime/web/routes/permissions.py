"""Explain: why may (or may not) a user do something to a form, a record, a field.

Read-only and for administrators: it shows policy lines. It answers from the
same compiled access that enforcement uses, so the explanation cannot drift
from the decision.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from engine.errors import ErrorDetail, PermissionDeniedError, QueryError
from engine.forms.fieldtypes import INT64_MAX
from permissions.explain import explain
from permissions.gate import load_caller
from runtime.auth.service import find_user_id
from runtime.web.deps import Ctx, CurrentUser, Db

router = APIRouter(prefix="/api/v1/permissions", tags=["permissions"])

Action = Literal["create", "read", "update", "delete", "export", "import"]


@router.get(
    "/explain",
    summary="Explain a user's access to a form, a record and a field",
    responses={403: {"description": "Not an administrator"}, 404: {"description": "No such user"}},
)
def explain_access(
    user: CurrentUser,
    conn: Db,
    ctx: Ctx,
    username: Annotated[str, Query(alias="user", min_length=1, max_length=150)],
    form: Annotated[str, Query(min_length=1, max_length=41)],
    action: Action = "read",
    record: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None,
    field: Annotated[str | None, Query(max_length=41)] = None,
) -> dict[str, Any]:
    if not user.is_superuser:
        raise PermissionDeniedError("Only administrators may read the policy.")
    schema = ctx.schemas.get(conn)
    tables = schema.form(form)
    if field is not None and tables.definition.field(field) is None:
        raise QueryError(
            "Unknown field.", [ErrorDetail("/query/field", f"form {form!r} has no field {field!r}")]
        )
    # The very context enforcement uses (departments and user attributes).
    subject = load_caller(conn, find_user_id(conn, username)).user
    result = explain(
        conn,
        ctx.access,
        subject,
        tables.definition,
        action,
        form_version=schema.versions[form],
        field=field,
        table=tables.table,
        record_id=record,
    )
    return {"user": username, **result}
