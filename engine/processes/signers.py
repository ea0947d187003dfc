"""Added signers (加签) — before or after the assignee — on top of the projection.

SpiffWorkflow cannot add an approver to a running task, so a signer is a
work item of its own on the *same* SpiffWorkflow task as the assignee's
(the projection keeps it open while that task is ready). ``complete``
decides what a completion means:

* a signer added **before**: their item closes with their outcome (an
  opinion, kept in the history); the assignee, blocked until then, decides;
* the assignee, with signers added **after**: approving records the
  assignee's data and outcome on the task without running it, and opens the
  first signer's item; each signer's approval opens the next, the last one
  runs the task with their outcome. A rejection (assignee or signer) runs
  the task as rejected at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from engine.errors import ErrorDetail, PermissionDeniedError, RecordValidationError
from engine.processes.approval_base import ApprovalBase
from engine.processes.approval_tables import signer_table
from engine.processes.errors import ProcessStateError
from engine.processes.instances import Actor, check_comment, check_outcome
from engine.processes.tables import DONE, OPEN, work_item_table

POSITIONS = ("before", "after")


class Signers(ApprovalBase):
    def add_signer(
        self,
        work_item_id: int,
        *,
        actor: Actor,
        user: str,
        position: str,
        comment: str | None = None,
    ) -> None:
        """``user`` signs before the assignee decides, or after the assignee approves."""
        check_comment(comment)
        if position not in POSITIONS:
            raise RecordValidationError(
                "position is before or after.", [ErrorDetail("/position", "before or after")]
            )
        item, instance = self._open(work_item_id)
        self._refuse_delegated(item)
        if self._signer_row(item.id) is not None:
            raise ProcessStateError(
                "You were added as a signer: approve or reject; the task's assignee adds signers."
            )
        self._check_holder(item, actor, "add a signer to")
        target = self._user(user, "/user")
        if target == item.assignee_id:
            raise ProcessStateError(f"{user} already has this task.")
        s, w = signer_table, work_item_table
        waiting = self.conn.execute(
            sa.select(s.c.id)
            .select_from(s.outerjoin(w, w.c.id == s.c.signer_item_id))
            .where(
                s.c.work_item_id == item.id,
                s.c.user_id == target,
                sa.or_(s.c.signer_item_id.is_(None), w.c.status == OPEN),
            )
        ).first()
        if waiting is not None:
            raise ProcessStateError(f"{user} is already a signer of this task.")
        signer_id = int(
            self.conn.execute(
                sa.insert(s)
                .values(
                    work_item_id=item.id,
                    position=position,
                    user_id=target,
                    added_by=actor.user_id,
                    added_at=self.ctx.clock(),
                )
                .returning(s.c.id)
            ).scalar_one()
        )
        if position == "before":
            self._open_signer_item(item, signer_id, target)
        self._history(
            instance.id,
            actor,
            "add_signer",
            item.element_id,
            item.id,
            data={"user": target, "position": position},
            comment=comment,
        )

    def complete(
        self,
        work_item_id: int,
        *,
        actor: Actor,
        data: Mapping[str, Any] | None = None,
        outcome: str = "submit",
        comment: str | None = None,
    ) -> int:
        """Complete a task, unless delegated, waiting for signers, or refused by ``notBy``."""
        check_outcome(outcome, comment)
        item, instance = self._open(work_item_id)
        if not self._may_act(item, actor):
            raise PermissionDeniedError("This task is not yours to complete: claim it first.")
        self._refuse_delegated(item)
        self._check_maker_checker(instance, item, actor)
        signer = self._signer_row(item.id)
        if signer is not None:
            return self._sign(item, instance, signer, actor, data, outcome, comment)
        s, w = signer_table, work_item_table
        before = self.conn.execute(
            sa.select(s.c.user_id)
            .join(w, w.c.id == s.c.signer_item_id)
            .where(s.c.work_item_id == item.id, w.c.status == OPEN)
        ).scalars()
        names = [self._name(u) for u in before]
        if names:
            raise ProcessStateError(f"Waiting for {', '.join(names)} to sign first.")
        # Approved with signers added after the assignee: the process waits for them.
        after = None if outcome == "reject" else self._next_after(item.id)
        self._finish(instance, item, actor, data, outcome, comment, run=after is None)
        if after is not None:
            self._open_signer_item(item, after.id, after.user_id)
        return int(instance.id)

    def _sign(
        self,
        item: Any,
        instance: Any,
        signer: Any,
        actor: Actor,
        data: Mapping[str, Any] | None,
        outcome: str,
        comment: str | None,
    ) -> int:
        if signer.position == "before":  # an opinion: the assignee decides
            values = self._validated(item, data, outcome, comment)
            self._close(item, actor, DONE, outcome)
            self._history(
                instance.id, actor, outcome, item.element_id, item.id, data=values, comment=comment
            )
            return int(instance.id)
        after = None if outcome == "reject" else self._next_after(signer.work_item_id)
        self._finish(instance, item, actor, data, outcome, comment, run=after is None)
        if after is not None:
            self._open_signer_item(item, after.id, after.user_id)
        return int(instance.id)

    def _next_after(self, work_item_id: int) -> Any:
        s = signer_table
        return self.conn.execute(
            sa.select(s)
            .where(
                s.c.work_item_id == work_item_id,
                s.c.position == "after",
                s.c.signer_item_id.is_(None),
            )
            .order_by(s.c.id)
            .limit(1)
        ).one_or_none()

    def _open_signer_item(self, item: Any, signer_id: int, user_id: int) -> None:
        """The signer's own work item, on the same SpiffWorkflow task as ``item``."""
        w = work_item_table
        signer_item = self.conn.execute(
            sa.insert(w)
            .values(
                instance_id=item.instance_id,
                task_id=item.task_id,
                element_id=item.element_id,
                name=item.name,
                form_key=item.form_key,
                status=OPEN,
                assignee_id=user_id,
                due_at=item.due_at,
                created_at=self.ctx.clock(),
            )
            .returning(w.c.id)
        ).scalar_one()
        self.conn.execute(
            sa.update(signer_table)
            .where(signer_table.c.id == signer_id)
            .values(signer_item_id=signer_item)
        )
