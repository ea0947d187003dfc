"""Administration of the department tree (superusers only).

Every change goes through :mod:`permissions.org`: audited, and the policy
version bumped (data scopes depend on the tree), in the request's transaction.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, Field

from engine.errors import ErrorDetail, NotFoundError
from permissions import org
from runtime.web.deps import Ctx, Db
from runtime.web.routes.admin_common import PREFIX, Admin, Body, DeptCode, responses

router = APIRouter(prefix=f"{PREFIX}/departments", tags=["admin"])


class Department(BaseModel):
    id: int
    code: str
    name: str
    parent: str | None = Field(description="The parent's code; null for a root.")
    depth: int = Field(description="0 for a root, 1 below it, ...")


class DepartmentTree(BaseModel):
    items: list[Department] = Field(
        description="Every department, each parent before its children."
    )


class DepartmentCreate(Body):
    code: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    parent: str | None = Field(default=None, max_length=64, description="Parent code; null: root.")


class DepartmentChange(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200, description="Rename.")
    parent: str | None = Field(
        default=None,
        max_length=64,
        description="Move under this department (null: make it a root); leave out to stay.",
    )


def _tree(conn: Db) -> list[Department]:
    depth: dict[str, int] = {}
    out = []
    for d in org.list_departments(conn):
        depth[d.code] = 0 if d.parent_code is None else depth.get(d.parent_code, -1) + 1
        out.append(
            Department(id=d.id, code=d.code, name=d.name, parent=d.parent_code, depth=depth[d.code])
        )
    return out


def _one(conn: Db, code: str) -> Department:
    for d in _tree(conn):
        if d.code == code:
            return d
    raise NotFoundError(
        f"There is no department {code!r}.", [ErrorDetail("/code", "no such department")]
    )


@router.get(
    "", response_model=DepartmentTree, summary="List the department tree", responses=responses()
)
def list_tree(admin: Admin, conn: Db) -> DepartmentTree:
    return DepartmentTree(items=_tree(conn))


@router.get(
    "/{code}", response_model=Department, summary="Read a department", responses=responses(404)
)
def read_department(admin: Admin, code: DeptCode, conn: Db) -> Department:
    return _one(conn, code)


@router.post(
    "",
    response_model=Department,
    status_code=201,
    summary="Create a department",
    responses=responses(404, 409, 422),
)
def create_department(admin: Admin, body: DepartmentCreate, conn: Db, ctx: Ctx) -> Department:
    org.create_department(
        conn,
        code=body.code,
        name=body.name,
        parent_code=body.parent,
        actor_id=admin.user_id,
        now=ctx.clock(),
    )
    return _one(conn, body.code)


@router.patch(
    "/{code}",
    response_model=Department,
    summary="Rename a department and/or move it (with everything below it)",
    responses=responses(404, 409, 422),
)
def change_department(
    admin: Admin, code: DeptCode, body: DepartmentChange, conn: Db, ctx: Ctx
) -> Department:
    now = ctx.clock()
    if body.name is not None:
        org.rename_department(conn, code=code, name=body.name, actor_id=admin.user_id, now=now)
    if "parent" in body.model_fields_set:
        org.move_department(
            conn, code=code, new_parent_code=body.parent, actor_id=admin.user_id, now=now
        )
    return _one(conn, code)


@router.delete(
    "/{code}",
    status_code=204,
    summary="Delete a department without sub-departments, members or records",
    responses=responses(404, 409),
)
def delete_department(admin: Admin, code: DeptCode, conn: Db, ctx: Ctx) -> Response:
    org.delete_department(conn, code=code, actor_id=admin.user_id, now=ctx.clock())
    return Response(status_code=204)
