"""Timers and SLAs as jobs: durable, on Formflow's clock, fired exactly once.

SpiffWorkflow never fires a timer by itself — the host has to poll — and it
reads the wall clock. Formflow turns every wait into a row of ``ff_job``,
enqueued in the same transaction as the step that started it:

* ``process.timer``: a timer event (intermediate, boundary interrupting or
  not) becomes due. The job locks the instance, marks the timer fired if it
  is still waiting, runs the engine and re-projects — in one transaction, so
  a timer fires once even if the worker is killed and restarted (the job is
  retried; a timer no longer waiting is a no-op). Timers due while the server
  was down are simply due jobs: they run at start-up (catch-up). A repeating
  boundary timer (``timeCycle``, e.g. a chase every four hours, ``R3/PT4H``)
  has one job per occurrence: each fires the boundary path once and enqueues
  the next, until the repetitions run out or the task is done; occurrences
  missed while the server was down fire once (:mod:`engine.processes.cycles`).
* ``process.remind`` / ``process.escalate``: a user task's SLA. ``dueIn``
  sets ``due_at`` on the business calendar; ``remindBefore`` (working time
  before it) writes a reminder to the history; at ``due_at`` an open task is
  escalated: the roles in ``escalateTo`` become candidates too (the task
  shows in their group inbox) and the history says so. A task's
  ``escalation`` property replaces that with steps of its own, one job each
  (:mod:`engine.processes.escalation`).

Each job has a dedupe key (instance + task [+ occurrence], or work item [+
step]), so scheduling the same wait twice — a command retried, a step
re-projected — makes one job.
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
from engine.processes.bpmn import ParsedBpmn, property_names
from engine.processes.cycles import DUE, SINCE, FormflowCycle, Schedule, parse_cycle
from engine.processes.errors import ProcessRuntimeError
from engine.processes.escalation import escalation_steps
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
        if isinstance(task.task_spec.event_definition, FormflowCycle):
            _schedule_first_occurrence(conn, instance_id, task, now)
            continue
        enqueue(
            conn,
            TIMER,
            {"instance": instance_id, "task": str(task.id)},
            run_at=due_time(task, script_engine, now),
            dedupe_key=f"timer:{instance_id}:{task.id}",
            now=now,
        )


def cycle_schedule(task: Any) -> Schedule:
    """The occurrences of a waiting repeating timer, counted from when it began to wait."""
    return parse_cycle(task.task_spec.event_definition.expression, _since(task))


def schedule_occurrence(
    conn: sa.Connection,
    instance_id: int,
    task: Any,
    schedule: Schedule,
    index: int,
    now: dt.datetime,
) -> None:
    enqueue(
        conn,
        TIMER,
        {"instance": instance_id, "task": str(task.id), "occurrence": index},
        run_at=schedule.at(index),
        dedupe_key=f"timer:{instance_id}:{task.id}:{index}",
        now=now,
    )


def _schedule_first_occurrence(
    conn: sa.Connection, instance_id: int, task: Any, now: dt.datetime
) -> None:
    # Always the first occurrence after the timer began to wait, whenever this
    # runs: later ones are enqueued by the job of the one before (handlers),
    # so a command re-scheduling the instance never starts a second chain.
    schedule = cycle_schedule(task)
    index = schedule.upcoming(_since(task))
    if index is not None:
        schedule_occurrence(conn, instance_id, task, schedule, index, now)


def _since(task: Any) -> dt.datetime:
    return dt.datetime.fromisoformat(task._get_internal_data(SINCE))


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
    steps = escalation_steps(properties)
    if steps is None:  # no ``escalation`` property: escalateTo at the due time, as always
        enqueue(
            conn,
            ESCALATE,
            {"work_item": work_item_id},
            run_at=due,
            dedupe_key=f"escalate:{work_item_id}",
            now=created,
        )
        return
    for index, step in enumerate(steps):
        enqueue(
            conn,
            ESCALATE,
            {"work_item": work_item_id, "step": index},
            run_at=calendar.add(due, step.after) if step.after else due,
            dedupe_key=f"escalate:{work_item_id}:{index}",
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
    if isinstance(task.task_spec.event_definition, FormflowCycle):
        task._set_internal_data(**{DUE: True})  # one occurrence; the timer keeps waiting
    else:
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
    roles = property_names(element.properties.get("escalateTo", ""))
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
