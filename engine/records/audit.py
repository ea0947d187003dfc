"""The append-only audit trail: one row per change, in the same transaction."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from engine.system import audit_table

AuditAction = Literal["create", "update", "delete"]


def field_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{field: {"before": x, "after": y}}`` for every field whose JSON value differs."""
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: {"before": before.get(k), "after": after.get(k)} for k in keys}


@dataclass(frozen=True)
class AuditEntry:
    form_key: str
    record_id: int
    action: AuditAction
    actor_id: int | None
    at: dt.datetime
    record_version: int
    changes: Mapping[str, Mapping[str, Any]]


def write_audits(conn: sa.Connection, entries: list[AuditEntry]) -> None:
    """Many audit rows in one statement (an executemany)."""
    if entries:
        conn.execute(
            sa.insert(audit_table),
            [{**e.__dict__, "changes": dict(e.changes)} for e in entries],
        )


def write_audit(
    conn: sa.Connection,
    *,
    form_key: str,
    record_id: int,
    action: AuditAction,
    actor_id: int | None,
    at: dt.datetime,
    record_version: int,
    changes: Mapping[str, Mapping[str, Any]],
) -> None:
    conn.execute(
        sa.insert(audit_table).values(
            form_key=form_key,
            record_id=record_id,
            action=action,
            actor_id=actor_id,
            at=at,
            record_version=record_version,
            changes=dict(changes),
        )
    )


def read_audit(conn: sa.Connection, form_key: str, record_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.select(audit_table)
        .where(audit_table.c.form_key == form_key, audit_table.c.record_id == record_id)
        .order_by(audit_table.c.id)
    )
    return [dict(r._mapping) for r in rows]


MAX_HISTORY = 500


def record_history(
    conn: sa.Connection, form_key: str, record_id: int, *, limit: int = MAX_HISTORY
) -> list[dict[str, Any]]:
    """A record's audit entries, oldest first: one indexed query."""
    t = audit_table
    rows = conn.execute(
        sa.select(t.c.id, t.c.action, t.c.actor_id, t.c.at, t.c.record_version, t.c.changes)
        .where(t.c.form_key == form_key, t.c.record_id == record_id)
        .order_by(t.c.id)
        .limit(limit)
    )
    return [
        {
            "id": r.id,
            "action": r.action,
            "actor_id": r.actor_id,
            "at": r.at.isoformat(),
            "version": r.record_version,
            "changes": dict(r.changes),
        }
        for r in rows
    ]
