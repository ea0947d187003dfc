"""Timers and SLAs as jobs: durable, on Formflow's clock, fired exactly once.

SpiffWorkflow never fires a timer by itself — the host has to poll — and it
reads the wall clock. Formflow turns every wait into a row of ``ff_job``,
enqueued in the same transaction as the step that started it:

* ``process.timer``: a timer event (intermediate, boundary interrupting or
  not) becomes due. The job locks the instance, marks the timer fired if it
  is still waiting, runs the engine and re-projects — in one transaction, so
  a timer fires once even if the worker is killed and restarted (the job is
  retried; a timer no longer waiting is a no-op). Timers due while the server
  was down are simply due jobs: they run at start-up (catch-up).
* ``process.remind`` / ``process.escalate``: a user task's SLA. ``dueIn``
  sets ``due_at`` on the business calendar; ``remindBefore`` (working time
  before it) writes a reminder to the history; at ``due_at`` an open task is
  escalated: the roles in ``escalateTo`` become candidates too (the task
  shows in their group inbox) and the history says so.

Each job has a dedupe key (instance + task, or work item), so scheduling the
same wait twice — a command retried, a step re-projected — makes one job.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.util.task import TaskState

from engine.calendar import BusinessCalendar, parse_duration
from engine.errors import ErrorDetail
from engine.jobs import enqueue
from engine.processes.assignment import role_candidates
from engine.processes.bpmn import ParsedBpmn
from engine.processes.errors import ProcessRuntimeError
from engine.processes.tables import candidate_table, work_item_table

TIMER, REMIND, ESCALATE = "process.timer", "process.remind", "process.escalate"


def timer_tasks(workflow: Any) -> list[Any]:
    """The instance's timer events that are waiting to fire."""
    return [
        t
        for t in workflow.get_tasks(state=TaskState.WAITING)
        if isinstance(getattr(t.task_spec, "event_definition", None), TimerEventDefinition)
    ]


def due_time(task: Any, script_engine: Any, now: dt.datetime) -> dt.datetime:
    """When a waiting timer is due, on Formflow's clock (timers count wall time)."""
    definition = task.task_spec.event_definition
    try:
        value = script_engine.evaluate(task, definition.expression)
        if isinstance(definition, TimeDateEventDefinition):
            due: dt.datetime = TimerEventDefinition.get_datetime(value)
            return due if due.tzinfo else due.replace(tzinfo=dt.UTC)
        if isinstance(definition, DurationTimerEventDefinition):
            parsed = TimerEventDefinition.parse_iso_duration(value)
            delta: dt.timedelta = TimerEventDefinition.get_timedelta_from_start(parsed, now)
            return now + delta
    except (ValueError, TypeError) as exc:
        where = task.task_spec.bpmn_id
        raise ProcessRuntimeError(
            f"The timer {where} could not be set: {exc}", [ErrorDetail(f"#{where}", str(exc))]
        ) from None
    kind = "cycle" if isinstance(definition, CycleTimerEventDefinition) else "this kind of"
    raise ProcessRuntimeError(f"{kind} timer is not supported yet ({task.task_spec.bpmn_id}).")


def schedule_timers(
    conn: sa.Connection,
    instance_id: int,
    workflow: Any,
    script_engine: Any,
    now: dt.datetime,
) -> None:
    for task in timer_tasks(workflow):
        enqueue(
            conn,
            TIMER,
            {"instance": instance_id, "task": str(task.id)},
            run_at=due_time(task, script_engine, now),
            dedupe_key=f"timer:{instance_id}:{task.id}",
            now=now,
        )


def schedule_sla(
    conn: sa.Connection,
    work_item_id: int,
    properties: Any,
    created: dt.datetime,
    due: dt.datetime | None,
    calendar: BusinessCalendar,
) -> None:
    if due is None:
        return
    before = properties.get("remindBefore")
    if before:
        window = calendar.working_time_between(created, due) - parse_duration(before).time
        remind_at = calendar.add_working_time(created, max(window, dt.timedelta(0)))
        enqueue(
            conn,
            REMIND,
            {"work_item": work_item_id},
            run_at=remind_at,
            dedupe_key=f"remind:{work_item_id}",
            now=created,
        )
    enqueue(
        conn,
        ESCALATE,
        {"work_item": work_item_id},
        run_at=due,
        dedupe_key=f"escalate:{work_item_id}",
        now=created,
    )


def fire(workflow: Any, task_id: str) -> bool:
    """Mark the waiting timer ``task_id`` fired (the caller runs the engine on).

    False if it no longer waits. SpiffWorkflow compares its own timers with
    the wall clock; marking the event fired makes Formflow's clock the one
    that counts.
    """
    task = next((t for t in timer_tasks(workflow) if str(t.id) == task_id), None)
    if task is None:
        return False
    task._set_internal_data(event_fired=True)
    workflow.refresh_timers()
    return True


def escalate(
    conn: sa.Connection, item: Any, parsed: ParsedBpmn, data: Any, initiator: int | None
) -> list[str]:
    """Add the ``escalateTo`` roles as candidates of an open work item; the roles added.

    With a ``candidateScope`` the nearest holders of those roles become user
    candidates instead, as for ``candidateRoles`` (:mod:`engine.processes.assignment`).
    """
    element = parsed.elements.get(item.element_id)
    if element is None:
        return []
    roles = _names(element.properties.get("escalateTo", ""))
    rows = role_candidates(
        conn, roles, element.properties.get("candidateScope"), element.id, data, initiator
    )
    c = candidate_table
    have = {
        (r.kind, r.ref)
        for r in conn.execute(sa.select(c.c.kind, c.c.ref).where(c.c.work_item_id == item.id))
    }
    new = [r for r in rows if r not in have]
    if new:
        conn.execute(
            sa.insert(c), [{"work_item_id": item.id, "kind": k, "ref": ref} for k, ref in new]
        )
    return roles if rows else []  # the escalation reached them, new candidates or not


def open_item(conn: sa.Connection, work_item_id: int) -> Any:
    return conn.execute(
        sa.select(work_item_table).where(
            work_item_table.c.id == work_item_id, work_item_table.c.status == "open"
        )
    ).one_or_none()


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]
