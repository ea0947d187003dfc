"""Administration of accounts: list, read, create, change (superusers only)."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter
from pydantic import BaseModel, Field

from permissions.admin_queries import user_role_keys
from permissions.org import user_departments
from runtime.auth.users import (
    UserInfo,
    create_user_audited,
    get_user,
    list_users,
    update_user,
)
from runtime.web.deps import Ctx, Db, RowId
from runtime.web.routes.admin_common import PREFIX, Admin, Body, IdCursor, Limit, responses

router = APIRouter(prefix=f"{PREFIX}/users", tags=["admin"])


class User(BaseModel):
    id: int
    username: str
    display_name: str
    is_active: bool
    is_superuser: bool
    has_password: bool = Field(description="False for service accounts (API keys only).")
    created_at: dt.datetime


class UserPage(BaseModel):
    items: list[User]
    next_cursor: int | None = Field(description="Pass as `cursor` for the next page; null: done.")


class MembershipOut(BaseModel):
    department: str = Field(description="Department code.")
    name: str
    is_primary: bool


class UserDetail(User):
    departments: list[MembershipOut] = Field(description="The primary department first.")
    roles: list[str] = Field(description="Roles assigned directly (not those they inherit).")


class UserCreate(Body):
    username: str = Field(min_length=1, max_length=150)
    password: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="Leave out for a service account that signs in with API keys only.",
    )
    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    is_superuser: bool = False


class UserChange(Body):
    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    is_active: bool | None = Field(default=None, description="False: the account cannot sign in.")
    is_superuser: bool | None = None


def _user(info: UserInfo) -> User:
    return User(**info.__dict__)


@router.get("", response_model=UserPage, summary="List accounts", responses=responses())
def list_accounts(admin: Admin, conn: Db, limit: Limit = 100, cursor: IdCursor = None) -> UserPage:
    users = list_users(conn, after_id=cursor, limit=limit)
    last = users[-1].id if len(users) == limit else None
    return UserPage(items=[_user(u) for u in users], next_cursor=last)


@router.post(
    "",
    response_model=User,
    status_code=201,
    summary="Create an account",
    responses=responses(409, 422),
)
def create_account(admin: Admin, body: UserCreate, conn: Db, ctx: Ctx) -> User:
    info = create_user_audited(
        conn,
        username=body.username,
        password=body.password,
        display_name=body.display_name,
        is_superuser=body.is_superuser,
        actor_id=admin.user_id,
        now=ctx.clock(),
    )
    return _user(info)


@router.get(
    "/{user_id}",
    response_model=UserDetail,
    summary="Read an account with its departments and roles",
    responses=responses(404),
)
def read_account(admin: Admin, user_id: RowId, conn: Db) -> UserDetail:
    info = get_user(conn, user_id)
    departments = [
        MembershipOut(department=m.code, name=m.name, is_primary=m.is_primary)
        for m in user_departments(conn, user_id)
    ]
    return UserDetail(**info.__dict__, departments=departments, roles=user_role_keys(conn, user_id))


@router.patch(
    "/{user_id}",
    response_model=User,
    summary="Change an account's display name, activity or superuser flag",
    responses=responses(404, 409, 422),
)
def change_account(admin: Admin, user_id: RowId, body: UserChange, conn: Db, ctx: Ctx) -> User:
    info = update_user(
        conn,
        user_id=user_id,
        display_name=body.display_name,
        is_active=body.is_active,
        is_superuser=body.is_superuser,
        actor_id=admin.user_id,
        now=ctx.clock(),
    )
    return _user(info)
