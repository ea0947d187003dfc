"""Running process instances: start, claim, complete, and the work-item projection.

Every command follows one shape, in the caller's transaction:

1. lock the instance row (``FOR UPDATE`` on PostgreSQL; SQLite writers are
   serialised, and the final UPDATE is guarded by ``row_version`` anyway);
2. rebuild the SpiffWorkflow instance from its state and the cached spec;
3. act on the task, run the engine to the next wait;
4. project: open a work item for every new ready user task (assignee,
   candidates and due time resolved now), close the ones no longer ready;
5. save the state with ``row_version + 1`` and write the history.

Two people completing the same task at once: the second finds its work
item done and gets a :class:`ProcessStateError` (409), whichever database.
Inboxes (:mod:`engine.processes.inbox`) read only the projection.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import TaskNotFoundException, WorkflowException
from SpiffWorkflow.util.task import TaskState

from engine.calendar import BusinessCalendar
from engine.errors import ErrorDetail, NotFoundError, PermissionDeniedError, RecordValidationError
from engine.processes import statements as sql
from engine.processes.assignment import resolve_assignee, task_candidates
from engine.processes.bpmn import Element, ParsedBpmn
from engine.processes.definitions import SpecCache, current_version
from engine.processes.errors import ProcessRuntimeError, ProcessStateError
from engine.processes.multi_instance import ApprovalScriptEngine, drop_element_variable
from engine.processes.scripting import ExpressionScriptEngine, to_data
from engine.processes.services import schedule_services
from engine.processes.starters import require_starter
from engine.processes.state import dump, load
from engine.processes.tables import COMPLETED, DONE, OPEN, RUNNING, instance_table
from engine.processes.timers import schedule_sla, schedule_timers

OUTCOMES = frozenset({"approve", "reject", "submit"})
MAX_COMMENT = 2_000


@dataclass(frozen=True)
class Actor:
    """Who gives the command, as processes see them (resolved by the caller)."""

    user_id: int | None  # None: the system (job handlers), never a request
    roles: frozenset[str] = frozenset()
    dept_ids: frozenset[int] = frozenset()
    superuser: bool = False


@dataclass
class Context:
    conn: sa.Connection
    specs: SpecCache
    clock: Callable[[], dt.datetime]
    calendar: BusinessCalendar | None = None
    # Checks submitted data against a task's form (runtime: the record codec).
    validate_form: Callable[[str, Any], dict[str, Any]] | None = None
    # The values of a bound record (form, id) -> {field: value}, for conditions
    # and assignees (``record.amount``, ``record.owner_id``); read at start.
    record_values: Callable[[str, int], Mapping[str, Any]] | None = None
    # SpiffWorkflow 3.2.0 ends an instance silently when its task tree is
    # 1,000 levels deep (a back-edge loop adds levels every round): a command
    # that would take a task this deep is refused instead, naming the step.
    max_depth: int = 900
    # Writes a task's data back to the bound record (runtime: GuardedRecords).
    write_record: Callable[[str, int, Mapping[str, Any]], None] | None = None
    _engine: ExpressionScriptEngine | None = field(default=None, repr=False)

    @property
    def script_engine(self) -> ExpressionScriptEngine:
        if self._engine is None:
            # With the multi-instance counters (nrOfApprovals, ...) wherever they
            # apply, so timer jobs and commands evaluate alike.
            self._engine = ApprovalScriptEngine(self.clock)
        return self._engine


class Processes:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.conn = ctx.conn

    # -- commands ------------------------------------------------------------

    def start(
        self,
        key: str,
        *,
        actor: Actor,
        data: Mapping[str, Any] | None = None,
        record: tuple[str, int] | None = None,
    ) -> int:
        """Start the current version of ``key``; run it to its first wait; the instance id."""
        version = current_version(self.conn, key)
        parsed = self.ctx.specs.get(self.conn, key, version)
        require_starter(self.conn, parsed, actor)
        now = self.ctx.clock()
        workflow = BpmnWorkflow(
            parsed.spec, parsed.subprocess_specs, script_engine=self.ctx.script_engine
        )
        initial = {**to_data(dict(data or {})), "initiator": actor.user_id}
        if record is not None:
            values = self.ctx.record_values(*record) if self.ctx.record_values else {}
            initial["record"] = {**to_data(dict(values)), "form": record[0], "id": record[1]}
        workflow.data.update(initial)
        start_task = workflow.task_tree
        start_task.data.update(initial)
        self._run(workflow, None)
        instance_id = int(
            self.conn.execute(
                sa.insert(instance_table)
                .values(
                    process_key=key,
                    process_version=version,
                    status=COMPLETED if workflow.is_completed() else RUNNING,
                    state=dump(workflow),
                    record_form=record[0] if record else None,
                    record_id=record[1] if record else None,
                    started_by=actor.user_id,
                    started_at=now,
                    ended_at=now if workflow.is_completed() else None,
                    row_version=1,
                )
                .returning(instance_table.c.id)
            ).scalar_one()
        )
        self._history(instance_id, actor, "start", None, None, data=dict(data or {}))
        self._project(instance_id, workflow, parsed, started_by=actor.user_id)
        schedule_timers(self.conn, instance_id, workflow, self.ctx.script_engine, now)
        schedule_services(self.conn, instance_id, workflow, now)
        return instance_id

    def complete(
        self,
        work_item_id: int,
        *,
        actor: Actor,
        data: Mapping[str, Any] | None = None,
        outcome: str = "submit",
        comment: str | None = None,
    ) -> int:
        """Complete an open work item with ``data`` and an outcome; the instance id."""
        check_outcome(outcome, comment)
        item, instance = self._open(work_item_id)
        if not self._may_act(item, actor):
            raise PermissionDeniedError("This task is not yours to complete: claim it first.")
        self._finish(instance, item, actor, data, outcome, comment, run=True)
        return int(instance.id)

    def _finish(
        self,
        instance: Any,
        item: Any,
        actor: Actor,
        data: Mapping[str, Any] | None,
        outcome: str,
        comment: str | None,
        *,
        run: bool,
    ) -> None:
        """Record ``item``'s outcome on its SpiffWorkflow task and close it; ``run``: go on.

        Without ``run`` the task keeps waiting (signers added after the
        assignee still have to sign: :mod:`engine.processes.signers`).
        """
        values = self._form_values(item, data)
        bound = instance.record_form is not None and instance.record_form == item.form_key
        if bound and values and self.ctx.write_record is not None:
            # The task's form is the record's form: its data is a change of the
            # record, made with the actor's own rights (field levels, scope).
            self.ctx.write_record(instance.record_form, instance.record_id, values)
        parsed = self.ctx.specs.get(self.conn, instance.process_key, instance.process_version)
        workflow = load(instance.state, parsed, self.ctx.script_engine)
        task = task_by_id(workflow, item.task_id)
        if task is None or not task.has_state(TaskState.READY):  # pragma: no cover
            raise ProcessStateError("The task is no longer ready; reload it.")
        task.data.update(to_data({**values, "outcome": outcome, "comment": comment}))
        task.data[f"{item.element_id}_outcome"] = outcome
        if run:
            self._check_depth(task, item.element_id)
            self._run(workflow, task)
        self._close(item, actor, DONE, outcome)
        self._history(
            instance.id, actor, outcome, item.element_id, item.id, data=values, comment=comment
        )
        self._save(instance, workflow)
        if run:
            now = self.ctx.clock()
            self._project(instance.id, workflow, parsed, started_by=instance.started_by)
            schedule_timers(self.conn, instance.id, workflow, self.ctx.script_engine, now)
            schedule_services(self.conn, instance.id, workflow, now)

    def _form_values(self, item: Any, data: Mapping[str, Any] | None) -> dict[str, Any]:
        """The submitted data, checked against the task's form (all problems at once)."""
        values = dict(data or {})
        if item.form_key and self.ctx.validate_form is not None:
            values = self.ctx.validate_form(item.form_key, values)
        return values

    def _close(self, item: Any, actor: Actor, status: str, outcome: str) -> None:
        self.conn.execute(
            sql.CLOSE_ITEM,
            {
                "b_id": item.id,
                "b_status": status,
                "b_at": self.ctx.clock(),
                "b_by": actor.user_id,
                "b_outcome": outcome,
                # Completing an unclaimed task claims it.
                "b_assignee": item.assignee_id if item.assignee_id is not None else actor.user_id,
            },
        )

    def claim(self, work_item_id: int, *, actor: Actor) -> None:
        item, _ = self._open(work_item_id, state=False)
        if item.assignee_id == actor.user_id:
            return
        if item.assignee_id is not None:
            raise ProcessStateError("Someone else has claimed this task.")
        if not (actor.superuser or self._is_candidate(item.id, actor)):
            raise PermissionDeniedError("You are not a candidate for this task.")
        self._assign(item, actor.user_id)
        self._history(item.instance_id, actor, "claim", item.element_id, item.id)

    def unclaim(self, work_item_id: int, *, actor: Actor) -> None:
        item, _ = self._open(work_item_id, state=False)
        if item.assignee_id != actor.user_id and not actor.superuser:
            raise ProcessStateError("Only the person who claimed a task can give it back.")
        self._assign(item, None)
        self._history(item.instance_id, actor, "unclaim", item.element_id, item.id)

    # -- engine --------------------------------------------------------------

    def _run(self, workflow: Any, task: Any) -> None:
        try:
            if task is not None:
                drop_element_variable(task)  # a multi-instance item's own variable
                task.run()
            workflow.do_engine_steps()
        except (WorkflowTaskException, WorkflowException) as exc:
            where = getattr(getattr(exc, "task_spec", None), "bpmn_id", None) or ""
            raise ProcessRuntimeError(
                f"The process stopped at {where or 'a step'}: {exc}",
                [ErrorDetail(f"#{where}" if where else "", str(exc))],
            ) from None

    def _check_depth(self, task: Any, element_id: str) -> None:
        depth, node = 0, task
        while node is not None:
            depth, node = depth + 1, node.parent
        if depth >= self.ctx.max_depth:
            raise ProcessRuntimeError(
                f"Step {element_id} has come round too many times for this instance to go on "
                "safely; model repeated rework as a loop on the task (standardLoopCharacteristics)"
                " instead of a flow back to it.",
                [ErrorDetail(f"#{element_id}", f"the instance's task tree is {depth} deep")],
            )

    def _save(self, instance: Any, workflow: Any) -> None:
        done = workflow.is_completed()
        result = self.conn.execute(
            sql.SAVE,
            {
                "b_id": instance.id,
                "b_version": instance.row_version,
                "b_state": dump(workflow),
                "b_status": COMPLETED if done else RUNNING,
                "b_ended": self.ctx.clock() if done else None,
            },
        )
        if result.rowcount != 1:
            raise ProcessStateError("Someone else acted on this process at the same time; reload.")

    def _project(
        self, instance_id: int, workflow: Any, parsed: ParsedBpmn, *, started_by: int | None
    ) -> None:
        ready = {str(t.id): t for t in workflow.get_tasks(state=TaskState.READY, manual=True)}
        open_ids = {
            r.task_id: r.id for r in self.conn.execute(sql.OPEN_ITEMS, {"instance_id": instance_id})
        }
        gone = [item for task_id, item in open_ids.items() if task_id not in ready]
        if gone:
            self.conn.execute(sql.CANCEL_ITEMS, {"ids": gone})
        now = self.ctx.clock()
        for task_id, task in ready.items():
            if task_id in open_ids:
                continue
            element = parsed.elements.get(task.task_spec.bpmn_id)
            if element is None:  # pragma: no cover - every manual task is an element
                continue
            context = {**task.data, "initiator": started_by}
            assignee = resolve_assignee(self.conn, element, context, now)
            due = self._due(element, now)
            item_id = int(
                self.conn.execute(
                    sql.NEW_ITEM,
                    {
                        "instance_id": instance_id,
                        "task_id": task_id,
                        "element_id": element.id,
                        "name": element.name,
                        "form_key": element.properties.get("form"),
                        "status": OPEN,
                        "assignee_id": assignee,
                        "due_at": due,
                        "created_at": now,
                    },
                ).scalar_one()
            )
            candidates = task_candidates(self.conn, element, context, started_by)
            if candidates:
                self.conn.execute(
                    sql.NEW_CANDIDATES,
                    [{"work_item_id": item_id, "kind": k, "ref": r} for k, r in candidates],
                )
            schedule_sla(self.conn, item_id, element.properties, now, due, self.calendar)

    @property
    def calendar(self) -> BusinessCalendar:
        # Years the holiday data does not cover yet count weekends only
        # (docs/calendar.md), rather than refusing to compute a due time.
        return self.ctx.calendar or default_calendar()

    def _due(self, element: Element, now: dt.datetime) -> dt.datetime | None:
        text = element.properties.get("dueIn")
        return self.calendar.add(now, text) if text else None

    # -- rows ----------------------------------------------------------------

    def _item(self, work_item_id: int) -> Any:
        row = self.conn.execute(sql.ITEM, {"item_id": work_item_id}).one_or_none()
        if row is None:
            raise NotFoundError(f"Task {work_item_id} does not exist.")
        return row

    def _open(self, work_item_id: int, *, state: bool = True) -> tuple[Any, Any]:
        """The open work item, read under its instance's lock, and the locked instance.

        The lock comes first, so a command that closed the item meanwhile is
        seen; ``state=False`` leaves the instance's state unread.
        """
        lock = sql.LOCK_OF_ITEM if state else sql.LOCK_OF_ITEM_NO_STATE
        instance = self.conn.execute(lock, {"item_id": work_item_id}).one_or_none()
        if instance is None:
            raise NotFoundError(f"Task {work_item_id} does not exist.")
        item = self._item(work_item_id)
        _require_open(item.id, item.status)
        return item, instance

    def _lock_instance(self, instance_id: int, *, state: bool = True) -> Any:
        """Lock the instance row; ``state=False`` leaves the (large) state unread."""
        lock = sql.LOCK if state else sql.LOCK_NO_STATE
        row = self.conn.execute(lock, {"instance_id": instance_id}).one_or_none()
        if row is None:  # pragma: no cover - work items reference their instance
            raise NotFoundError(f"Process instance {instance_id} does not exist.")
        return row

    def _check_open(self, item: Any) -> None:
        # Re-read under the instance lock: a concurrent command may have closed it.
        status = self.conn.execute(sql.ITEM_STATUS, {"item_id": item.id}).scalar_one()
        _require_open(item.id, status)

    def _may_act(self, item: Any, actor: Actor) -> bool:
        if actor.superuser or item.assignee_id == actor.user_id:
            return True
        return item.assignee_id is None and self._is_candidate(item.id, actor)

    def _is_candidate(self, item_id: int, actor: Actor) -> bool:
        found = self.conn.execute(
            sql.IS_CANDIDATE,
            {
                "item_id": item_id,
                "user": str(actor.user_id),
                "roles": sorted(actor.roles),
                "depts": [str(d) for d in sorted(actor.dept_ids)],
            },
        ).first()
        return found is not None

    def _assign(self, item: Any, user_id: int | None) -> None:
        self.conn.execute(sql.ASSIGN, {"b_id": item.id, "b_assignee": user_id})

    def _history(
        self,
        instance_id: int,
        actor: Actor | None,
        action: str,
        element_id: str | None,
        work_item_id: int | None,
        *,
        data: Mapping[str, Any] | None = None,
        comment: str | None = None,
    ) -> None:
        self.conn.execute(
            sql.HISTORY,
            {
                "instance_id": instance_id,
                "at": self.ctx.clock(),
                "actor_id": actor.user_id if actor is not None else None,  # None: the system
                "action": action,
                "element_id": element_id,
                "work_item_id": work_item_id,
                "outcome": action if action in OUTCOMES else None,
                "comment": comment,
                "data": _json(data) if data else None,
            },
        )


@functools.cache
def default_calendar() -> BusinessCalendar:
    """The national calendar with default hours: immutable, so built once, not per command."""
    return BusinessCalendar(unknown_years="weekends")


def check_outcome(outcome: str, comment: str | None) -> None:
    if outcome not in OUTCOMES:
        raise ProcessStateError(
            "Unknown outcome.", [ErrorDetail("/outcome", f"one of {sorted(OUTCOMES)}")]
        )
    check_comment(comment)


def check_comment(comment: str | None) -> None:
    if comment is not None and len(comment) > MAX_COMMENT:
        raise RecordValidationError(
            "The comment is too long.", [ErrorDetail("/comment", f"at most {MAX_COMMENT}")]
        )


def _require_open(item_id: int, status: str) -> None:
    if status != OPEN:
        raise ProcessStateError(f"Task {item_id} is already {status}; reload your task list.")


def task_by_id(workflow: Any, task_id: str) -> Any:
    """A task by its id: a dictionary lookup, not a walk of the task tree; None if gone."""
    try:
        return workflow.get_task_from_id(UUID(task_id))
    except TaskNotFoundException:
        return None


def _json(data: Mapping[str, Any]) -> dict[str, Any]:
    """History data as JSON (decimals as exact strings)."""
    out = to_data(dict(data))
    return {
        k: (str(v) if not isinstance(v, str | int | bool | type(None) | list | dict) else v)
        for k, v in out.items()
    }
