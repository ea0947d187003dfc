"""Administration of the policy: a role's grants, named scopes, global restrictions
(superusers only).

Grants use roles.json's vocabulary (docs/permissions.md, "Roles in app
folders") and are checked as the file is, against the published form: every
problem comes back at once with its pointer into the body. Each line is
written by the policy store: audited, and the policy version bumped, so the
next request compiles access from the new policy.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from permissions import admin
from permissions.admin_queries import ConditionDef, list_conditions, role_grants
from runtime.web.deps import Ctx, Db
from runtime.web.routes.admin_common import (
    PREFIX,
    Admin,
    Body,
    FormKey,
    PolicyName,
    RoleKey,
    responses,
)

router = APIRouter(prefix=PREFIX, tags=["admin"])

FormFilter = Annotated[str | None, Query(max_length=63, description="Only this form's.")]


class Grant(BaseModel):
    actions: list[str] = Field(default=[], description="create read update delete export import")
    deny: list[str] = Field(default=[], description="Actions denied: deny wins over any allow.")
    fields: dict[str, str] = Field(
        default={}, description="Field key (or *) -> hidden, mask, read or write."
    )
    field_caps: dict[str, str] = Field(
        default={}, description="Field key (or *) -> the highest level the role may get."
    )
    scopes: dict[str, str | list[str]] = Field(
        default={}, description="Action -> own, dept, dept_tree, all or a named scope (or a list)."
    )


class GrantChange(Grant, Body):
    form: str = Field(min_length=1, max_length=63, description="A published form key, or *.")


class RoleGrants(BaseModel):
    role: str
    inherits: list[str]
    grants: dict[str, Grant] = Field(description="Form key (or *) -> what the role may do.")
    other_lines: list[str] = Field(
        description="The role's policy lines this vocabulary cannot show (e.g. a denied scope)."
    )


class GrantResult(BaseModel):
    changed: list[str] = Field(description="The policy lines added (or removed) by this request.")
    role: RoleGrants


class ConditionIn(Body):
    condition: Any = Field(
        description='A condition: {"field": "tier", "op": "in", "value": ["mass", "mid"]}, '
        '{"all": [...]}, {"any": [...]}, {"not": ...}; values may be {"user": "dept_ids"}.'
    )


class RestrictionIn(ConditionIn):
    exempt: list[str] | None = Field(
        default=None, description="Roles exempt from it (the whole list); leave out to keep."
    )


class Scope(BaseModel):
    form: str
    name: str
    condition: Any


class Restriction(Scope):
    exempt: list[str]


def _grants(conn: Db, key: str) -> RoleGrants:
    found = role_grants(conn, key)
    return RoleGrants(
        role=found.key,
        inherits=found.inherits,
        grants={form: Grant(**g) for form, g in found.grants.items()},
        other_lines=found.other_lines,
    )


def _change(user: Admin, key: str, body: GrantChange, conn: Db, ctx: Ctx, *, remove: bool) -> Any:
    grant = body.model_dump(exclude={"form"}, exclude_unset=True)
    changed = admin.change_grants(
        conn,
        role=key,
        form=body.form,
        grant=grant,
        remove=remove,
        actor_id=user.user_id,
        now=ctx.clock(),
    )
    return GrantResult(changed=[admin.format_line(x) for x in changed], role=_grants(conn, key))


@router.get(
    "/roles/{key}/grants",
    response_model=RoleGrants,
    summary="A role's grants, in roles.json's vocabulary",
    responses=responses(404),
)
def read_grants(_admin: Admin, key: RoleKey, conn: Db) -> RoleGrants:
    return _grants(conn, key)


@router.post(
    "/roles/{key}/grants",
    response_model=GrantResult,
    summary="Add grant lines to a role (lines it has already are left alone)",
    responses=responses(404, 422),
)
def add_grants(user: Admin, key: RoleKey, body: GrantChange, conn: Db, ctx: Ctx) -> Any:
    return _change(user, key, body, conn, ctx, remove=False)


@router.post(
    "/roles/{key}/grants:remove",
    response_model=GrantResult,
    summary="Remove grant lines from a role (lines it does not have are ignored)",
    responses=responses(404, 422),
)
def remove_grants(user: Admin, key: RoleKey, body: GrantChange, conn: Db, ctx: Ctx) -> Any:
    return _change(user, key, body, conn, ctx, remove=True)


# --- named scopes and restrictions ----------------------------------------------------


def _scope(c: ConditionDef) -> Scope:
    return Scope(form=c.form, name=c.name, condition=c.condition)


def _restriction(c: ConditionDef) -> Restriction:
    return Restriction(form=c.form, name=c.name, condition=c.condition, exempt=c.exempt)


@router.get(
    "/scopes", response_model=list[Scope], summary="List named data scopes", responses=responses()
)
def list_scopes(_admin: Admin, conn: Db, form: FormFilter = None) -> list[Scope]:
    return [_scope(c) for c in list_conditions(conn, "scope", form=form)]


@router.put(
    "/scopes/{form}/{name}",
    response_model=Scope,
    summary="Create or replace a named data scope of a form",
    responses=responses(404, 422),
)
def put_scope(
    user: Admin, form: FormKey, name: PolicyName, body: ConditionIn, conn: Db, ctx: Ctx
) -> Scope:
    admin.define_scope(
        conn,
        form=form,
        name=name,
        condition=body.condition,
        actor_id=user.user_id,
        now=ctx.clock(),
    )
    return next(_scope(c) for c in list_conditions(conn, "scope", form=form) if c.name == name)


@router.delete(
    "/scopes/{form}/{name}",
    status_code=204,
    summary="Delete a named data scope no role is granted",
    responses=responses(404, 409),
)
def delete_scope(user: Admin, form: FormKey, name: PolicyName, conn: Db, ctx: Ctx) -> Response:
    admin.drop_scope(conn, form=form, name=name, actor_id=user.user_id, now=ctx.clock())
    return Response(status_code=204)


@router.get(
    "/restrictions",
    response_model=list[Restriction],
    summary="List global restrictions",
    responses=responses(),
)
def list_restrictions(_admin: Admin, conn: Db, form: FormFilter = None) -> list[Restriction]:
    return [_restriction(c) for c in list_conditions(conn, "restrict", form=form)]


@router.put(
    "/restrictions/{form}/{name}",
    response_model=Restriction,
    summary="Create or replace a global restriction of a form, and who is exempt",
    responses=responses(404, 422),
)
def put_restriction(
    user: Admin, form: FormKey, name: PolicyName, body: RestrictionIn, conn: Db, ctx: Ctx
) -> Restriction:
    admin.define_restriction(
        conn,
        form=form,
        name=name,
        condition=body.condition,
        exempt=body.exempt,
        actor_id=user.user_id,
        now=ctx.clock(),
    )
    found = list_conditions(conn, "restrict", form=form)
    return next(_restriction(c) for c in found if c.name == name)


@router.delete(
    "/restrictions/{form}/{name}",
    status_code=204,
    summary="Delete a global restriction and the exemptions from it",
    responses=responses(404),
)
def delete_restriction(
    user: Admin, form: FormKey, name: PolicyName, conn: Db, ctx: Ctx
) -> Response:
    admin.drop_restriction(conn, form=form, name=name, actor_id=user.user_id, now=ctx.clock())
    return Response(status_code=204)
