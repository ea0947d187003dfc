"""Instances at a glance, for operators: plain SQL over the instance and work-item tables.

Unlike :mod:`engine.processes.inbox`, nothing here is filtered to what one
person may see; an edge acting for a person must check
:func:`engine.processes.cc.may_see_instance` itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from engine.processes.approvals import WITHDRAWN
from engine.processes.inbox import MAX_LIMIT
from engine.processes.tables import (
    COMPLETED,
    OPEN,
    RUNNING,
    candidate_table,
    instance_table,
    work_item_table,
)
from engine.system import department_table, user_table

INSTANCE_STATUSES = (RUNNING, COMPLETED, WITHDRAWN)


def instances(
    conn: sa.Connection, *, key: str | None = None, status: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Instances, newest first, with their starter's username and open task count.

    Times stay datetimes (UTC): each edge shows them its own way.
    """
    i, w, u = instance_table, work_item_table, user_table
    open_tasks = (
        sa.select(sa.func.count())
        .where(w.c.instance_id == i.c.id, w.c.status == OPEN)
        .scalar_subquery()
    )
    query = (
        sa.select(
            i.c.id,
            i.c.process_key,
            i.c.process_version,
            i.c.status,
            i.c.started_by,
            u.c.username.label("started_by_name"),
            i.c.started_at,
            i.c.ended_at,
            i.c.record_form,
            i.c.record_id,
            open_tasks.label("open_tasks"),
        )
        .select_from(i.outerjoin(u, u.c.id == i.c.started_by))
        .order_by(i.c.id.desc())
        .limit(max(1, min(limit, MAX_LIMIT)))
    )
    if key is not None:
        query = query.where(i.c.process_key == key)
    if status is not None:
        query = query.where(i.c.status == status)
    out = []
    for row in conn.execute(query):
        item = dict(row._mapping)
        form, record_id = item.pop("record_form"), item.pop("record_id")
        item["record"] = {"form": form, "id": record_id} if form else None
        out.append(item)
    return out


def usernames(conn: sa.Connection, user_ids: Iterable[int]) -> dict[int, str]:
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    u = user_table
    rows = conn.execute(sa.select(u.c.id, u.c.username).where(u.c.id.in_(ids)))
    return {int(r.id): str(r.username) for r in rows}


def candidates(conn: sa.Connection, work_item_ids: Iterable[int]) -> dict[int, list[str]]:
    """Each work item's candidates, named: ``user:alice``, ``role:reviewer``, ``dept:hz``.

    Users and departments are stored by id (as text); their names are looked
    up by primary key rather than joined, since casting the text refs back to
    ids in SQL is not safe on PostgreSQL when role keys share the column.
    """
    ids = sorted(set(work_item_ids))
    if not ids:
        return {}
    c = candidate_table
    rows = conn.execute(
        sa.select(c.c.work_item_id, c.c.kind, c.c.ref)
        .where(c.c.work_item_id.in_(ids))
        .order_by(c.c.work_item_id, c.c.kind, c.c.ref)
    ).all()
    users = usernames(conn, (int(r.ref) for r in rows if r.kind == "user"))
    dept_ids = sorted({int(r.ref) for r in rows if r.kind == "dept"})
    d = department_table
    codes = (
        {
            str(r.id): str(r.code)
            for r in conn.execute(sa.select(d.c.id, d.c.code).where(d.c.id.in_(dept_ids)))
        }
        if dept_ids
        else {}
    )
    names = {"user": {str(k): v for k, v in users.items()}, "dept": codes}
    out: dict[int, list[str]] = {i: [] for i in ids}
    for r in rows:
        out[int(r.work_item_id)].append(f"{r.kind}:{names.get(r.kind, {}).get(r.ref, r.ref)}")
    return out
