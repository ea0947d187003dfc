"""Helpers of the administration API tests (test_admin_*.py): the audit trail, counts."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from web_support import Api

from engine.system import admin_audit_table
from permissions.org import policy_version

ADMIN = "/api/v1/admin"


def last_audit_id(api: Api) -> int:
    """Where the trail stands: pass it to :func:`audit_since` after a change."""
    a = admin_audit_table
    with api.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(a.c.id), 0))).scalar_one())


def audit_since(api: Api, after_id: int, entity: str | None = None) -> list[dict[str, Any]]:
    a = admin_audit_table
    query = sa.select(a).where(a.c.id > after_id).order_by(a.c.id)
    if entity is not None:
        query = query.where(a.c.entity == entity)
    with api.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def version(api: Api) -> int:
    with api.engine.connect() as conn:
        return policy_version(conn)


def count(api: Api, table: sa.Table) -> int:
    with api.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
