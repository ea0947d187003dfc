"""The administration trail: who changed which user, department, role or policy line,
when, with the values before and after (superusers only)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from permissions.admin_queries import list_audit
from runtime.web.deps import Db
from runtime.web.routes.admin_common import PREFIX, Admin, IdCursor, Limit, responses

router = APIRouter(prefix=PREFIX, tags=["admin"])


class AuditEntry(BaseModel):
    id: int
    actor_id: int | None = Field(description="Who; null for the system (CLI, app imports).")
    actor: str | None = Field(description="The actor's username.")
    at: dt.datetime
    entity: str = Field(description="user, department, membership, role or policy")
    key: str = Field(
        description="User id, department code, role key, user_id:department or policy line."
    )
    action: str
    before: Any
    after: Any


class AuditPage(BaseModel):
    items: list[AuditEntry] = Field(description="Newest first.")
    next_cursor: int | None = Field(description="Pass as `cursor` for the next page; null: done.")


@router.get(
    "/audit",
    response_model=AuditPage,
    summary="The administration audit trail, newest first",
    responses=responses(),
)
def read_audit(
    _admin: Admin,
    conn: Db,
    entity: Annotated[str | None, Query(max_length=32)] = None,
    key: Annotated[str | None, Query(max_length=200, description="The entity's key.")] = None,
    limit: Limit = 50,
    cursor: IdCursor = None,
) -> AuditPage:
    entries = list_audit(conn, entity=entity, key=key, limit=limit, before_id=cursor)
    last = entries[-1].id if len(entries) == limit else None
    return AuditPage(items=[AuditEntry(**e.__dict__) for e in entries], next_cursor=last)
