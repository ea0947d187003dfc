"""Accounts as an administrator manages them: listed, created and changed, audited.

:func:`runtime.auth.service.create_user` makes the row; this module adds the
administration trail (``ff_admin_audit``, entity ``user``, keyed by the
user's id) in the caller's transaction, and the changes an administrator
makes afterwards: the display name, whether the account may sign in, and
whether it is a superuser. Passwords never reach the trail.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from engine.errors import ConflictError, ErrorDetail, NotFoundError, RecordValidationError
from engine.system import user_table
from permissions.org import bump_policy_version, write_audit
from runtime.auth.service import create_user

__all__ = ["UserInfo", "create_user_audited", "get_user", "list_users", "update_user"]

_u = user_table


@dataclass(frozen=True)
class UserInfo:
    id: int
    username: str
    display_name: str
    is_active: bool
    is_superuser: bool
    has_password: bool
    created_at: dt.datetime

    def snapshot(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "display_name": self.display_name,
            "is_active": self.is_active,
            "is_superuser": self.is_superuser,
        }


def _select() -> sa.Select[Any]:
    return sa.select(
        _u.c.id,
        _u.c.username,
        _u.c.display_name,
        _u.c.is_active,
        _u.c.is_superuser,
        _u.c.password_hash.is_not(None).label("has_password"),
        _u.c.created_at,
    )


def _info(row: Any) -> UserInfo:
    return UserInfo(
        int(row.id),
        row.username,
        row.display_name,
        bool(row.is_active),
        bool(row.is_superuser),
        bool(row.has_password),
        row.created_at,
    )


def get_user(conn: sa.Connection, user_id: int) -> UserInfo:
    row = conn.execute(_select().where(_u.c.id == user_id)).one_or_none()
    if row is None:
        raise NotFoundError(f"There is no user {user_id}.", [ErrorDetail("/id", "no such user")])
    return _info(row)


def list_users(conn: sa.Connection, *, after_id: int | None, limit: int) -> list[UserInfo]:
    """By id; ``after_id`` continues from the last id of the previous page."""
    query = _select().order_by(_u.c.id).limit(limit)
    if after_id is not None:
        query = query.where(_u.c.id > after_id)
    return [_info(r) for r in conn.execute(query)]


def create_user_audited(
    conn: sa.Connection,
    *,
    username: str,
    password: str | None,
    display_name: str | None,
    is_superuser: bool,
    actor_id: int | None,
    now: dt.datetime,
) -> UserInfo:
    user_id = create_user(
        conn,
        username=username,
        password=password,
        display_name=display_name,
        is_superuser=is_superuser,
        now=now,
    )
    created = get_user(conn, user_id)
    write_audit(
        conn,
        actor_id=actor_id,
        now=now,
        entity="user",
        rows=[(str(user_id), "create", None, created.snapshot())],
    )
    return created


def update_user(
    conn: sa.Connection,
    *,
    user_id: int,
    display_name: str | None = None,
    is_active: bool | None = None,
    is_superuser: bool | None = None,
    actor_id: int | None,
    now: dt.datetime,
) -> UserInfo:
    """Change what is given (None: leave as it is); a change that changes nothing is not audited.

    Administrators cannot deactivate or demote themselves: the last one
    would lock everyone out of administration.
    """
    if display_name is not None and (not display_name.strip() or len(display_name) > 200):
        raise RecordValidationError(
            "The user cannot be changed.",
            [ErrorDetail("/display_name", "a display name needs 1..200 characters")],
        )
    if user_id == actor_id and (is_active is False or is_superuser is False):
        raise ConflictError(
            "Administrators cannot deactivate or demote their own account.",
            [ErrorDetail("/is_active" if is_active is False else "/is_superuser", "your own")],
        )
    before = get_user(conn, user_id)
    changes: dict[str, Any] = {
        k: v
        for k, v in (
            ("display_name", display_name),
            ("is_active", is_active),
            ("is_superuser", is_superuser),
        )
        if v is not None and getattr(before, k) != v
    }
    if not changes:
        return before
    conn.execute(sa.update(_u).where(_u.c.id == user_id).values(**changes))
    after = get_user(conn, user_id)
    write_audit(
        conn,
        actor_id=actor_id,
        now=now,
        entity="user",
        rows=[(str(user_id), "update", before.snapshot(), after.snapshot())],
    )
    if "is_active" in changes or "is_superuser" in changes:
        # Who may do what changed: compiled access cached for the old flags is stale.
        bump_policy_version(conn)
    return after
