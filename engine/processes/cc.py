"""Copies (抄送): send users a read-only copy of an instance or of one of its tasks.

A copy gives no task: it lists the instance in the user's ``cc`` inbox and
lets them read it (:func:`may_see_instance`). Who may send copies: the
initiator, anyone who has, had or may claim one of its tasks, and
administrators.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from engine.errors import ErrorDetail, NotFoundError, PermissionDeniedError, RecordValidationError
from engine.processes.approval_base import ApprovalBase
from engine.processes.approval_tables import cc_table
from engine.processes.inbox import MAX_LIMIT, candidate_of
from engine.processes.instances import Actor, check_comment
from engine.processes.tables import instance_table, process_table, work_item_table

MAX_CC = 50


def _involved(conn: sa.Connection, instance_id: int, actor: Actor) -> bool:
    """Has, had or may claim one of the instance's tasks."""
    w = work_item_table
    found = conn.execute(
        sa.select(w.c.id).where(
            w.c.instance_id == instance_id,
            sa.or_(
                w.c.assignee_id == actor.user_id,
                w.c.completed_by == actor.user_id,
                candidate_of(actor),
            ),
        )
    ).first()
    return found is not None


def is_copied(conn: sa.Connection, instance_id: int, user_id: int) -> bool:
    c = cc_table
    found = conn.execute(
        sa.select(c.c.id).where(c.c.instance_id == instance_id, c.c.user_id == user_id).limit(1)
    ).first()
    return found is not None


def may_see_instance(
    conn: sa.Connection, instance_id: int, started_by: int | None, actor: Actor
) -> bool:
    """Its starter, everyone who has or had one of its tasks, who was sent a copy, admins."""
    return (
        actor.superuser
        or started_by == actor.user_id
        or _involved(conn, instance_id, actor)
        or (actor.user_id is not None and is_copied(conn, instance_id, actor.user_id))
    )


def copies(conn: sa.Connection, actor: Actor, *, limit: int = 50) -> list[dict[str, Any]]:
    """The ``cc`` inbox: copies sent to the actor, newest first (one indexed query)."""
    c, i, p, w = cc_table, instance_table, process_table, work_item_table
    rows = conn.execute(
        sa.select(
            c.c.id,
            c.c.instance_id,
            c.c.work_item_id.label("task_id"),
            w.c.name.label("task_name"),
            i.c.process_key,
            p.c.name.label("process_name"),
            i.c.status,
            i.c.record_form,
            i.c.record_id,
            i.c.started_by,
            c.c.sent_by,
            c.c.sent_at,
            c.c.comment,
        )
        .select_from(
            c.join(i, i.c.id == c.c.instance_id)
            .join(p, p.c.key == i.c.process_key)
            .outerjoin(w, w.c.id == c.c.work_item_id)
        )
        .where(c.c.user_id == actor.user_id)
        .order_by(c.c.id.desc())
        .limit(max(1, min(limit, MAX_LIMIT)))
    )
    out = []
    for row in rows:
        item = dict(row._mapping)
        item["sent_at"] = item["sent_at"].isoformat()
        form, record_id = item.pop("record_form"), item.pop("record_id")
        item["record"] = {"form": form, "id": record_id} if form else None
        out.append(item)
    return out


class CarbonCopies(ApprovalBase):
    def cc(
        self,
        instance_id: int,
        *,
        actor: Actor,
        users: Sequence[str],
        comment: str | None = None,
        work_item_id: int | None = None,
    ) -> list[int]:
        """Send a copy of the instance (or of its task ``work_item_id``); the users sent to."""
        check_comment(comment)
        if not users or len(users) > MAX_CC:
            raise RecordValidationError(
                "Name the users to send a copy to.",
                [ErrorDetail("/users", f"1 to {MAX_CC} usernames")],
            )
        instance = self._lock_instance(instance_id)
        if not (
            actor.superuser
            or instance.started_by == actor.user_id
            or _involved(self.conn, instance.id, actor)
        ):
            raise PermissionDeniedError(
                "Only people taking part in this process can send copies of it."
            )
        element = None
        if work_item_id is not None:
            w = work_item_table
            task = self.conn.execute(
                sa.select(w.c.instance_id, w.c.element_id).where(w.c.id == work_item_id)
            ).first()
            if task is None or task.instance_id != instance.id:
                raise NotFoundError(f"Process {instance.id} has no task {work_item_id}.")
            element = task.element_id
        ids: set[int] = set()
        problems: list[ErrorDetail] = []
        for n, name in enumerate(users):
            try:
                ids.add(self._user(name, f"/users/{n}"))
            except RecordValidationError as exc:
                problems += exc.errors
        if problems:
            raise RecordValidationError("Not every name is an active user.", problems)
        c = cc_table
        same_target = (
            c.c.work_item_id.is_(None) if work_item_id is None else c.c.work_item_id == work_item_id
        )
        already = set(
            self.conn.execute(
                sa.select(c.c.user_id).where(c.c.instance_id == instance.id, same_target)
            ).scalars()
        )
        new = sorted(ids - already)
        now = self.ctx.clock()
        if new:
            self.conn.execute(
                sa.insert(c),
                [
                    {
                        "instance_id": instance.id,
                        "work_item_id": work_item_id,
                        "user_id": u,
                        "sent_by": actor.user_id,
                        "sent_at": now,
                        "comment": comment,
                    }
                    for u in new
                ],
            )
        self._history(
            instance.id, actor, "cc", element, work_item_id, data={"users": new}, comment=comment
        )
        return new
