"""Administration of the role catalogue, who holds which role, role inheritance,
and department memberships (superusers only).

Role keys, parents and assignments are checked by :mod:`permissions.admin`,
written by the policy store and :mod:`permissions.org`: audited, with the
policy version bumped, in the request's transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from permissions import admin, org
from permissions.admin_queries import role_members, user_role_keys
from runtime.web.deps import Ctx, Db, RowId
from runtime.web.routes.admin_common import PREFIX, Admin, Body, DeptCode, Limit, RoleKey, responses

router = APIRouter(prefix=PREFIX, tags=["admin"])


class Role(BaseModel):
    key: str
    name: str
    description: str | None
    created_at: dt.datetime


class RolePage(BaseModel):
    items: list[Role]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: done.")


class RoleDetail(Role):
    members: list[int] = Field(description="Ids of the users the role is assigned to directly.")


class RoleCreate(Body):
    key: str = Field(min_length=1, max_length=64, description="Lower case, e.g. branch_manager.")
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)


class RoleChange(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000, description="null clears it.")


class UserRoles(BaseModel):
    user_id: int
    roles: list[str] = Field(description="Roles assigned directly (not those they inherit).")


class Membership(BaseModel):
    department: str = Field(description="Department code.")
    name: str
    is_primary: bool


class MembershipCreate(Body):
    department: str = Field(min_length=1, max_length=64, description="Department code.")
    primary: bool = Field(default=False, description="Make it the user's primary department.")


class PrimaryDepartment(Body):
    department: str = Field(
        min_length=1, max_length=64, description="One of the user's departments."
    )


def _role(r: org.Role) -> Role:
    return Role(key=r.key, name=r.name, description=r.description, created_at=r.created_at)


def _find(conn: Db, key: str) -> org.Role:
    admin.require_role(conn, key, "/key")
    return next(r for r in org.list_roles(conn) if r.key == key)


# --- the catalogue --------------------------------------------------------------------


@router.get(
    "/roles", response_model=RolePage, summary="List the role catalogue", responses=responses()
)
def list_roles(
    _admin: Admin,
    conn: Db,
    limit: Limit = 100,
    cursor: Annotated[
        str | None, Query(max_length=64, description="`next_cursor` of the previous page.")
    ] = None,
) -> RolePage:
    roles = [r for r in org.list_roles(conn) if cursor is None or r.key > cursor][:limit]
    last = roles[-1].key if len(roles) == limit else None
    return RolePage(items=[_role(r) for r in roles], next_cursor=last)


@router.get(
    "/roles/{key}", response_model=RoleDetail, summary="Read a role", responses=responses(404)
)
def read_role(_admin: Admin, key: RoleKey, conn: Db) -> RoleDetail:
    role = _find(conn, key)
    return RoleDetail(**_role(role).model_dump(), members=role_members(conn, key))


@router.post(
    "/roles",
    response_model=Role,
    status_code=201,
    summary="Create a role",
    responses=responses(409, 422),
)
def create_role(user: Admin, body: RoleCreate, conn: Db, ctx: Ctx) -> Role:
    org.create_role(
        conn,
        key=body.key,
        name=body.name,
        description=body.description,
        actor_id=user.user_id,
        now=ctx.clock(),
    )
    return _role(_find(conn, body.key))


@router.patch(
    "/roles/{key}",
    response_model=Role,
    summary="Change a role's name or description",
    responses=responses(404, 422),
)
def change_role(user: Admin, key: RoleKey, body: RoleChange, conn: Db, ctx: Ctx) -> Role:
    role = _find(conn, key)
    description = body.description if "description" in body.model_fields_set else role.description
    org.update_role(
        conn,
        key=key,
        name=body.name if body.name is not None else role.name,
        description=description,
        actor_id=user.user_id,
        now=ctx.clock(),
    )
    return _role(_find(conn, key))


@router.delete(
    "/roles/{key}",
    status_code=204,
    summary="Delete a role with its grants, inheritance and assignments",
    responses=responses(404),
)
def delete_role(user: Admin, key: RoleKey, conn: Db, ctx: Ctx) -> Response:
    admin.delete_role(conn, key=key, actor_id=user.user_id, now=ctx.clock())
    return Response(status_code=204)


# --- inheritance ----------------------------------------------------------------------


@router.put(
    "/roles/{key}/parents/{parent}",
    status_code=204,
    summary="Let a role inherit every grant and deny of another",
    responses=responses(404, 409, 422),
)
def add_parent(user: Admin, key: RoleKey, parent: RoleKey, conn: Db, ctx: Ctx) -> Response:
    admin.add_parent(conn, role=key, parent=parent, actor_id=user.user_id, now=ctx.clock())
    return Response(status_code=204)


@router.delete(
    "/roles/{key}/parents/{parent}",
    status_code=204,
    summary="Stop a role inheriting from another",
    responses=responses(404),
)
def remove_parent(user: Admin, key: RoleKey, parent: RoleKey, conn: Db, ctx: Ctx) -> Response:
    admin.remove_parent(conn, role=key, parent=parent, actor_id=user.user_id, now=ctx.clock())
    return Response(status_code=204)


# --- assignments ----------------------------------------------------------------------


@router.get(
    "/users/{user_id}/roles",
    response_model=UserRoles,
    summary="A user's roles",
    responses=responses(404),
)
def read_user_roles(_admin: Admin, user_id: RowId, conn: Db) -> UserRoles:
    admin.require_user(conn, user_id)
    return UserRoles(user_id=user_id, roles=user_role_keys(conn, user_id))


@router.put(
    "/users/{user_id}/roles/{role}",
    status_code=204,
    summary="Assign a role to a user",
    responses=responses(404, 422),
)
def assign_role(user: Admin, user_id: RowId, role: RoleKey, conn: Db, ctx: Ctx) -> Response:
    admin.assign_role(conn, user_id=user_id, role=role, actor_id=user.user_id, now=ctx.clock())
    return Response(status_code=204)


@router.delete(
    "/users/{user_id}/roles/{role}",
    status_code=204,
    summary="Take a role from a user",
    responses=responses(404),
)
def unassign_role(user: Admin, user_id: RowId, role: RoleKey, conn: Db, ctx: Ctx) -> Response:
    admin.unassign_role(conn, user_id=user_id, role=role, actor_id=user.user_id, now=ctx.clock())
    return Response(status_code=204)


# --- memberships ----------------------------------------------------------------------


def _memberships(conn: Db, user_id: int) -> list[Membership]:
    return [
        Membership(department=m.code, name=m.name, is_primary=m.is_primary)
        for m in org.user_departments(conn, user_id)
    ]


@router.get(
    "/users/{user_id}/departments",
    response_model=list[Membership],
    summary="A user's departments, the primary one first",
    responses=responses(404),
)
def read_memberships(_admin: Admin, user_id: RowId, conn: Db) -> list[Membership]:
    admin.require_user(conn, user_id)
    return _memberships(conn, user_id)


@router.post(
    "/users/{user_id}/departments",
    response_model=list[Membership],
    status_code=201,
    summary="Add a user to a department",
    responses=responses(404, 409, 422),
)
def add_membership(
    user: Admin, user_id: RowId, body: MembershipCreate, conn: Db, ctx: Ctx
) -> list[Membership]:
    org.add_member(
        conn,
        user_id=user_id,
        dept_code=body.department,
        primary=body.primary,
        actor_id=user.user_id,
        now=ctx.clock(),
    )
    return _memberships(conn, user_id)


@router.put(
    "/users/{user_id}/primary-department",
    response_model=list[Membership],
    summary="Make one of a user's departments their primary one",
    responses=responses(404, 422),
)
def set_primary(
    user: Admin, user_id: RowId, body: PrimaryDepartment, conn: Db, ctx: Ctx
) -> list[Membership]:
    org.set_primary_department(
        conn, user_id=user_id, dept_code=body.department, actor_id=user.user_id, now=ctx.clock()
    )
    return _memberships(conn, user_id)


@router.delete(
    "/users/{user_id}/departments/{code}",
    status_code=204,
    summary="Remove a user from a department",
    responses=responses(404),
)
def remove_membership(user: Admin, user_id: RowId, code: DeptCode, conn: Db, ctx: Ctx) -> Response:
    org.remove_member(conn, user_id=user_id, dept_code=code, actor_id=user.user_id, now=ctx.clock())
    return Response(status_code=204)
