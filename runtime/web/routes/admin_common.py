"""What the administration routers share: the superuser check, paging, documented errors.

Every route under ``/api/v1/admin`` takes :data:`Admin` before anything that
reads the body or the query, so a caller who is not an administrator gets
403 whatever else is wrong with the request.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Query
from pydantic import BaseModel, ConfigDict

from engine.errors import PermissionDeniedError
from engine.forms.fieldtypes import INT64_MAX
from runtime.auth.service import Principal
from runtime.web.deps import CurrentUser

PREFIX = "/api/v1/admin"


def require_admin(user: CurrentUser) -> Principal:
    if not user.is_superuser:
        raise PermissionDeniedError("Only administrators may use the administration API.")
    return user


Admin = Annotated[Principal, Depends(require_admin)]

Limit = Annotated[int, Query(ge=1, le=500, description="Items per page.")]
IdCursor = Annotated[
    int | None,
    Query(ge=0, le=INT64_MAX, description="`next_cursor` of the previous page."),
]
DeptCode = Annotated[str, Path(min_length=1, max_length=64, description="Department code.")]
RoleKey = Annotated[str, Path(min_length=1, max_length=64, description="Role key.")]
FormKey = Annotated[str, Path(min_length=1, max_length=63, description="Form key.")]
PolicyName = Annotated[str, Path(min_length=1, max_length=63, description="Scope name.")]

_DESCRIPTIONS = {
    403: "Not an administrator",
    404: "Not found",
    409: "Refused by the current state (it is in use, already exists, or would make a cycle)",
    422: "Invalid input: `errors[]` points at each problem; nothing was changed",
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error responses of an operation, 403 always among them."""
    return {code: {"description": _DESCRIPTIONS[code]} for code in sorted({403, *codes})}


class Body(BaseModel):
    """Request bodies refuse members they do not know (a typo is a 422, not ignored)."""

    model_config = ConfigDict(extra="forbid")
