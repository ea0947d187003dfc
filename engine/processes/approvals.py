"""Approval operations as first-class commands: transfer, delegate, add signer, return,
withdraw, CC, and maker ≠ checker (docs/processes.md, "Approvals").

:class:`Approvals` is :class:`~engine.processes.instances.Processes` with
these commands; ``complete`` is extended so that added signers and
delegations hold a task until they are done. Each command runs in the
caller's transaction under the instance row lock, checks who may give it,
and writes ``ff_process_history`` (actor, comment, and before/after in
``data``).

* **transfer** (转交): the assignee (or an administrator) gives the task to
  someone else, who now has it.
* **delegate** (委派), as Flowable/Camunda: the assignee stays the *owner*;
  the delegate works on it and *resolves* it, and the task comes back to
  the owner, who completes it. A delegated task cannot be completed,
  transferred, returned or given signers until it is resolved.
* **add signer** (加签): *before* — the signer's own task opens now, and
  the assignee cannot complete until the signer has signed (their opinion
  is in the history; the assignee decides); *after* — when the assignee
  approves, the signer's task opens instead of the process moving on; the
  last signer's outcome (and data) completes the task. A rejection by the
  assignee or by a signer completes the task as rejected at once.
* **return** (退回) to an earlier step that was done, with a reason:
  SpiffWorkflow's ``reset_from_task_id``; open tasks it undoes close as
  ``returned``; the step opens again for the person who did it last.
* **withdraw** (撤回): the initiator cancels the instance until someone
  else has acted on it.
* **CC** (抄送): copies to users, a read-only inbox (:mod:`engine.processes.cc`).
* **maker ≠ checker**: the task property ``makerChecker`` — ``true`` (the
  initiator) and/or element ids, comma-separated — refuses completion by the
  initiator or by whoever completed one of those steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask
from SpiffWorkflow.util.task import TaskState

from engine.errors import ErrorDetail, PermissionDeniedError, RecordValidationError
from engine.processes.approval_base import PENDING, RESOLVED
from engine.processes.approval_tables import delegation_table
from engine.processes.cc import CarbonCopies
from engine.processes.errors import ProcessStateError
from engine.processes.instances import Actor, check_comment
from engine.processes.services import schedule_services
from engine.processes.signers import Signers
from engine.processes.state import dump, load
from engine.processes.tables import (
    CANCELLED,
    DONE,
    OPEN,
    RUNNING,
    history_table,
    instance_table,
    work_item_table,
)
from engine.processes.timers import schedule_timers

RETURNED = "returned"  # a work item closed by a return
WITHDRAWN = "cancelled"  # an instance's status after a withdrawal


class Approvals(Signers, CarbonCopies):
    """Processes with every approval operation (docs/processes.md, "Approvals")."""

    # -- transfer, delegate, resolve ------------------------------------------

    def transfer(
        self, work_item_id: int, *, actor: Actor, to: str, comment: str | None = None
    ) -> None:
        """Give the task to ``to`` (a username): they have it now, the assignee no longer."""
        self._hand_over(work_item_id, actor, to, comment, delegate=False)

    def delegate(
        self, work_item_id: int, *, actor: Actor, to: str, comment: str | None = None
    ) -> None:
        """Let ``to`` work on the task; it comes back to its assignee when they resolve it."""
        self._hand_over(work_item_id, actor, to, comment, delegate=True)

    def _hand_over(
        self, work_item_id: int, actor: Actor, to: str, comment: str | None, *, delegate: bool
    ) -> None:
        check_comment(comment)
        item, instance = self._open(work_item_id)
        self._refuse_delegated(item)
        self._check_holder(item, actor, "delegate" if delegate else "transfer")
        if delegate and item.assignee_id is None:
            raise ProcessStateError("Claim the task before you delegate it.")
        target = self._user(to, "/to")
        if target == item.assignee_id:
            raise ProcessStateError(f"The task is already with {to}.")
        if delegate:
            d = delegation_table
            self.conn.execute(sa.delete(d).where(d.c.work_item_id == item.id))
            self.conn.execute(
                sa.insert(d).values(
                    work_item_id=item.id,
                    owner_id=item.assignee_id,
                    delegate_id=target,
                    state=PENDING,
                    delegated_at=self.ctx.clock(),
                )
            )
        self._assign(item, target)
        before = "owner" if delegate else "from"
        self._history(
            instance.id,
            actor,
            "delegate" if delegate else "transfer",
            item.element_id,
            item.id,
            data={before: item.assignee_id, "to": target},
            comment=comment,
        )

    def resolve(
        self,
        work_item_id: int,
        *,
        actor: Actor,
        data: Mapping[str, Any] | None = None,
        comment: str | None = None,
    ) -> None:
        """The delegate is done: the task goes back to its owner (data: the delegate's proposal)."""
        check_comment(comment)
        item, instance = self._open(work_item_id)
        found = self._delegation(item.id)
        if found is None or found.state != PENDING:
            raise ProcessStateError("This task is not delegated: complete it instead.")
        if actor.user_id != found.delegate_id and not actor.superuser:
            raise PermissionDeniedError(
                f"Only {self._name(found.delegate_id)}, to whom it was delegated, can resolve it."
            )
        values = self._validated(item, data)
        d = delegation_table
        self.conn.execute(
            sa.update(d)
            .where(d.c.work_item_id == item.id)
            .values(state=RESOLVED, resolved_at=self.ctx.clock())
        )
        self._assign(item, found.owner_id)
        self._history(
            instance.id, actor, "resolve", item.element_id, item.id, data=values, comment=comment
        )

    def unclaim(self, work_item_id: int, *, actor: Actor) -> None:
        self._refuse_delegated(self._item(work_item_id))
        super().unclaim(work_item_id, actor=actor)

    # -- return and withdraw ---------------------------------------------------

    def returnable(self, workflow: Any) -> list[str]:
        """The steps of ``workflow`` that were done and are still in its history."""
        done = workflow.get_tasks(state=TaskState.COMPLETED, manual=True)
        return sorted({t.task_spec.bpmn_id for t in done})

    def return_to(
        self, work_item_id: int, *, actor: Actor, to_element: str, comment: str | None
    ) -> int:
        """Send the process back to the earlier step ``to_element``, saying why."""
        if not (comment or "").strip():
            raise RecordValidationError(
                "Say why you return it.", [ErrorDetail("/comment", "a reason is required")]
            )
        check_comment(comment)
        item, instance = self._open(work_item_id)
        self._refuse_delegated(item)
        if self._signer_row(item.id) is not None:
            raise ProcessStateError(
                "You were added as a signer: approve or reject; the task's assignee returns it."
            )
        self._check_holder(item, actor, "return")
        parsed = self.ctx.specs.get(self.conn, instance.process_key, instance.process_version)
        workflow = load(instance.state, parsed, self.ctx.script_engine)
        done = [
            t
            for t in workflow.get_tasks(state=TaskState.COMPLETED, manual=True)
            if t.task_spec.bpmn_id == to_element
        ]
        if not done:
            choices = ", ".join(self.returnable(workflow)) or "none yet"
            raise ProcessStateError(
                f"{to_element!r} is not an earlier step of this process that was done; "
                f"you can return to: {choices}.",
                [ErrorDetail("/to_element", "not a step that was done")],
            )
        target = max(done, key=lambda t: t.last_state_change)
        if isinstance(target.parent.task_spec, LoopTask):
            target = target.parent  # a loop or multi-instance task starts over
        workflow.reset_from_task_id(target.id)
        # Reloading drops the waiting events the reset leaves behind.
        workflow = load(dump(workflow), parsed, self.ctx.script_engine)
        self._run(workflow, None)
        ready = {str(t.id) for t in workflow.get_tasks(state=TaskState.READY, manual=True)}
        if item.task_id in ready:
            raise ProcessStateError(
                f"{to_element!r} is on another parallel branch than this task; "
                "return to a step before the branches split."
            )
        w = work_item_table
        still_open = self.conn.execute(
            sa.select(w.c.id, w.c.task_id).where(
                w.c.instance_id == instance.id, w.c.status == OPEN, w.c.id != item.id
            )
        )
        undone = [r.id for r in still_open if r.task_id not in ready]
        if undone:
            self.conn.execute(sa.update(w).where(w.c.id.in_(undone)).values(status=RETURNED))
        self._close(item, actor, RETURNED, "return")
        last_done_by = self.conn.execute(
            sa.select(w.c.completed_by)
            .where(w.c.instance_id == instance.id, w.c.element_id == to_element, w.c.status == DONE)
            .order_by(w.c.id.desc())
            .limit(1)
        ).scalar()
        self._history(
            instance.id,
            actor,
            "return",
            item.element_id,
            item.id,
            data={"from": item.element_id, "to": to_element},
            comment=comment,
        )
        self._save(instance, workflow)
        self._project(instance.id, workflow, parsed, started_by=instance.started_by)
        schedule_timers(self.conn, instance.id, workflow, self.ctx.script_engine, self.ctx.clock())
        schedule_services(self.conn, instance.id, workflow, self.ctx.clock())
        reopened = self.conn.execute(
            sa.select(w).where(
                w.c.instance_id == instance.id, w.c.element_id == to_element, w.c.status == OPEN
            )
        ).all()
        if len(reopened) == 1 and last_done_by is not None:
            self._assign(reopened[0], last_done_by)  # back to the person who did it
        return int(instance.id)

    def withdraw(self, instance_id: int, *, actor: Actor, comment: str | None = None) -> None:
        """The initiator cancels the instance, as long as nobody else has acted on it."""
        check_comment(comment)
        instance = self._lock_instance(instance_id)
        if instance.started_by != actor.user_id:
            raise PermissionDeniedError("Only the person who started this process can withdraw it.")
        if instance.status != RUNNING:
            raise ProcessStateError(f"The process is already {instance.status}.")
        h = history_table
        first = self.conn.execute(
            sa.select(h.c.actor_id, h.c.action, h.c.element_id)
            .where(
                h.c.instance_id == instance.id,
                h.c.actor_id.is_not(None),
                h.c.actor_id != instance.started_by,
            )
            .order_by(h.c.id)
            .limit(1)
        ).first()
        if first is not None:
            raise ProcessStateError(
                f"{self._name(first.actor_id)} has already acted on it ({first.action} at "
                f"{first.element_id}), so it can no longer be withdrawn; ask them to return it."
            )
        parsed = self.ctx.specs.get(self.conn, instance.process_key, instance.process_version)
        workflow = load(instance.state, parsed, self.ctx.script_engine)
        workflow.cancel()
        now = self.ctx.clock()
        i, w = instance_table, work_item_table
        saved = self.conn.execute(
            sa.update(i)
            .where(i.c.id == instance.id, i.c.row_version == instance.row_version)
            .values(
                state=dump(workflow),
                status=WITHDRAWN,
                ended_at=now,
                row_version=instance.row_version + 1,
            )
        )
        if saved.rowcount != 1:  # pragma: no cover - the row is locked
            raise ProcessStateError("Someone else acted on this process at the same time; reload.")
        self.conn.execute(
            sa.update(w)
            .where(w.c.instance_id == instance.id, w.c.status == OPEN)
            .values(status=CANCELLED)
        )
        self._history(instance.id, actor, "withdraw", None, None, comment=comment)
