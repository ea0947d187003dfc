"""What the approval commands share: the locked open task, who holds it, delegation,
maker ≠ checker, data checks, users by name (see :mod:`engine.processes.approvals`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from engine.errors import ErrorDetail, PermissionDeniedError, RecordValidationError
from engine.processes.approval_tables import delegation_table, signer_table
from engine.processes.errors import ProcessStateError
from engine.processes.instances import Actor, Processes, check_outcome
from engine.processes.tables import DONE, work_item_table
from engine.system import user_table

PENDING, RESOLVED = "pending", "resolved"
MAKER_CHECKER = "makerChecker"  # the maker ≠ checker task property


class ApprovalBase(Processes):
    def _check_holder(self, item: Any, actor: Actor, what: str) -> None:
        """Only the task's assignee (or an administrator) may ``what`` it."""
        if actor.superuser or item.assignee_id == actor.user_id:
            return
        if item.assignee_id is None and self._is_candidate(item.id, actor):
            raise ProcessStateError(f"Claim the task before you {what} it.")
        holder = "someone else" if item.assignee_id is None else self._name(item.assignee_id)
        raise PermissionDeniedError(f"Only {holder}, who has this task, can {what} it.")

    def _delegation(self, work_item_id: int) -> Any:
        d = delegation_table
        return self.conn.execute(sa.select(d).where(d.c.work_item_id == work_item_id)).one_or_none()

    def _refuse_delegated(self, item: Any) -> None:
        found = self._delegation(item.id)
        if found is not None and found.state == PENDING:
            raise ProcessStateError(
                f"This task is delegated to {self._name(found.delegate_id)}: they resolve it, "
                f"then it comes back to {self._name(found.owner_id)} to decide."
            )

    def _signer_row(self, work_item_id: int) -> Any:
        s = signer_table
        return self.conn.execute(
            sa.select(s).where(s.c.signer_item_id == work_item_id)
        ).one_or_none()

    def _check_maker_checker(self, instance: Any, item: Any, actor: Actor) -> None:
        """``makerChecker``: ``true`` (or ``initiator``) and/or element ids, comma-separated."""
        parsed = self.ctx.specs.get(self.conn, instance.process_key, instance.process_version)
        element = parsed.elements.get(item.element_id)
        rule = element.properties.get(MAKER_CHECKER, "") if element is not None else ""
        steps = {n.strip() for n in rule.split(",")} - {"", "false"}
        if steps & {"true", "initiator"} and actor.user_id == instance.started_by:
            raise PermissionDeniedError(
                f"Maker ≠ checker: the person who started this process cannot also do "
                f"{item.name!r}; someone else must."
            )
        steps -= {"true", "initiator"}
        if not steps:
            return
        w = work_item_table
        made = self.conn.execute(
            sa.select(w.c.element_id).where(
                w.c.instance_id == instance.id,
                w.c.element_id.in_(sorted(steps)),
                w.c.status == DONE,
                w.c.completed_by == actor.user_id,
            )
        ).first()
        if made is not None:
            raise PermissionDeniedError(
                f"Maker ≠ checker: you did step {made.element_id!r} of this process, so someone "
                f"else must do {item.name!r}."
            )

    def _validated(
        self,
        item: Any,
        data: Mapping[str, Any] | None,
        outcome: str = "submit",
        comment: str | None = None,
    ) -> dict[str, Any]:
        check_outcome(outcome, comment)
        return self._form_values(item, data)

    def _user(self, username: Any, pointer: str) -> int:
        u = user_table
        found = None
        if isinstance(username, str):
            found = self.conn.execute(
                sa.select(u.c.id).where(u.c.username == username, u.c.is_active)
            ).scalar()
        if found is None:
            raise RecordValidationError(
                f"There is no active user {username!r}.", [ErrorDetail(pointer, "no such user")]
            )
        return int(found)

    def _name(self, user_id: int | None) -> str:
        found = self.conn.execute(
            sa.select(user_table.c.username).where(user_table.c.id == user_id)
        ).scalar()
        return str(found) if found is not None else f"user {user_id}"
