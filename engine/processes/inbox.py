"""Task lists and instance views: SQL over the work-item projection, never the state.

``mine`` (assigned to me and open), ``group`` (open, unclaimed, and I am a
candidate by user, role or department), ``started`` (instances I started),
``done`` (tasks I completed). Each is one indexed query; no instance is
deserialised to list tasks.
"""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa

from engine.errors import NotFoundError
from engine.processes.instances import Actor
from engine.processes.tables import (
    OPEN,
    candidate_table,
    history_table,
    instance_table,
    process_table,
    work_item_table,
)

View = Literal["mine", "group", "started", "done"]
VIEWS: tuple[View, ...] = ("mine", "group", "started", "done")
MAX_LIMIT = 200


def candidate_of(actor: Actor) -> sa.ColumnElement[bool]:
    """Work items the actor is a candidate for (one EXISTS over the candidate index)."""
    c = candidate_table
    refs = [sa.and_(c.c.kind == "user", c.c.ref == str(actor.user_id))]
    if actor.roles:
        refs.append(sa.and_(c.c.kind == "role", c.c.ref.in_(sorted(actor.roles))))
    if actor.dept_ids:
        refs.append(
            sa.and_(c.c.kind == "dept", c.c.ref.in_([str(d) for d in sorted(actor.dept_ids)]))
        )
    return sa.exists().where(c.c.work_item_id == work_item_table.c.id, sa.or_(*refs))


def _item_columns() -> list[Any]:
    w, i, p = work_item_table, instance_table, process_table
    return [
        w.c.id,
        w.c.instance_id,
        w.c.element_id,
        w.c.name,
        w.c.form_key,
        w.c.status,
        w.c.assignee_id,
        w.c.due_at,
        w.c.escalated_at,  # overdue and escalated (engine.processes.escalation)
        w.c.created_at,
        w.c.completed_at,
        w.c.completed_by,
        w.c.outcome,
        i.c.process_key,
        p.c.name.label("process_name"),
        i.c.record_form,
        i.c.record_id,
        i.c.started_by,
    ]


def _item_json(row: Any) -> dict[str, Any]:
    out = dict(row._mapping)
    for key in ("due_at", "escalated_at", "created_at", "completed_at"):
        if out[key] is not None:
            out[key] = out[key].isoformat()
    form, record_id = out.pop("record_form"), out.pop("record_id")
    out["record"] = {"form": form, "id": record_id} if form else None
    return out


def _joined() -> Any:
    w, i, p = work_item_table, instance_table, process_table
    return w.join(i, i.c.id == w.c.instance_id).join(p, p.c.key == i.c.process_key)


def tasks(
    conn: sa.Connection, actor: Actor, view: View, *, limit: int = 50
) -> list[dict[str, Any]]:
    w = work_item_table
    limit = max(1, min(limit, MAX_LIMIT))
    query = sa.select(*_item_columns()).select_from(_joined())
    if view == "mine":
        query = query.where(w.c.assignee_id == actor.user_id, w.c.status == OPEN)
        order = [w.c.due_at.asc().nulls_last(), w.c.id]
    elif view == "group":
        query = query.where(w.c.status == OPEN, w.c.assignee_id.is_(None), candidate_of(actor))
        order = [w.c.due_at.asc().nulls_last(), w.c.id]
    elif view == "done":
        query = query.where(w.c.completed_by == actor.user_id)
        order = [w.c.id.desc()]
    else:
        query = query.where(instance_table.c.started_by == actor.user_id)
        order = [w.c.id.desc()]
    return [_item_json(r) for r in conn.execute(query.order_by(*order).limit(limit))]


def task(conn: sa.Connection, work_item_id: int) -> dict[str, Any]:
    row = conn.execute(
        sa.select(*_item_columns())
        .select_from(_joined())
        .where(work_item_table.c.id == work_item_id)
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"Task {work_item_id} does not exist.")
    return _item_json(row)


def may_see_task(conn: sa.Connection, item: dict[str, Any], actor: Actor) -> bool:
    """Assignee, candidate, completer, the instance's starter, or a superuser."""
    if actor.superuser or actor.user_id in (
        item["assignee_id"],
        item["completed_by"],
        item["started_by"],
    ):
        return True
    found = conn.execute(
        sa.select(work_item_table.c.id).where(
            work_item_table.c.id == item["id"], candidate_of(actor)
        )
    ).first()
    return found is not None


def instance(conn: sa.Connection, instance_id: int) -> dict[str, Any]:
    i = instance_table
    row = conn.execute(
        sa.select(
            i.c.id,
            i.c.process_key,
            i.c.process_version,
            i.c.status,
            i.c.record_form,
            i.c.record_id,
            i.c.started_by,
            i.c.started_at,
            i.c.ended_at,
        ).where(i.c.id == instance_id)
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"Process instance {instance_id} does not exist.")
    out = dict(row._mapping)
    for key in ("started_at", "ended_at"):
        if out[key] is not None:
            out[key] = out[key].isoformat()
    form, record_id = out.pop("record_form"), out.pop("record_id")
    out["record"] = {"form": form, "id": record_id} if form else None
    items = conn.execute(
        sa.select(*_item_columns())
        .select_from(_joined())
        .where(work_item_table.c.instance_id == instance_id)
        .order_by(work_item_table.c.id)
    )
    out["tasks"] = [_item_json(r) for r in items]
    h = history_table
    out["history"] = [
        {
            "at": r.at.isoformat(),
            "actor_id": r.actor_id,
            "action": r.action,
            "element_id": r.element_id,
            "task_id": r.work_item_id,
            "comment": r.comment,
            "data": r.data,
        }
        for r in conn.execute(sa.select(h).where(h.c.instance_id == instance_id).order_by(h.c.id))
    ]
    return out
