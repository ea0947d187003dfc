"""The jobs worker's side of processes: fire timers, remind, escalate.

``process_handlers(specs, clock)`` gives the handler of each process job
kind (:mod:`engine.processes.timers`); the runtime registers them on the
worker's registry. Each runs in the job's transaction: the instance row is
locked, the step is taken, projected, saved and recorded in the history,
and the job is marked done — all or nothing. A job for a wait that is over
(the task was completed, the instance ended) does nothing, so retries and
duplicates are harmless.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from engine.calendar import BusinessCalendar
from engine.jobs import Job
from engine.processes.definitions import SpecCache
from engine.processes.instances import RUNNING, Context, Processes, task_by_id
from engine.processes.services import schedule_services
from engine.processes.state import load
from engine.processes.timers import (
    ESCALATE,
    REMIND,
    TIMER,
    escalate,
    fire,
    open_item,
    schedule_timers,
)

Handler = Callable[[sa.Connection, Job], None]


def process_handlers(
    specs: SpecCache,
    clock: Callable[[], dt.datetime],
    calendar: BusinessCalendar | None = None,
) -> dict[str, Handler]:
    def engine(conn: sa.Connection) -> Processes:
        return Processes(Context(conn, specs, clock, calendar))

    def on_timer(conn: sa.Connection, job: Job) -> None:
        p = engine(conn)
        instance = p._lock_instance(int(job.payload["instance"]))
        if instance.status != RUNNING:
            return
        parsed = specs.get(conn, instance.process_key, instance.process_version)
        workflow = load(instance.state, parsed, p.ctx.script_engine)
        task_id = str(job.payload["task"])
        timer = task_by_id(workflow, task_id)
        element = timer.task_spec.bpmn_id if timer is not None else None
        if not fire(workflow, task_id):
            return  # completed or cancelled meanwhile: nothing to fire
        p._run(workflow, None)  # an error names its element; the job retries, then incident
        p._save(instance, workflow)
        p._history(instance.id, None, "timer", element, None)
        p._project(instance.id, workflow, parsed, started_by=instance.started_by)
        schedule_timers(conn, instance.id, workflow, p.ctx.script_engine, clock())
        schedule_services(conn, instance.id, workflow, clock())

    def on_remind(conn: sa.Connection, job: Job) -> None:
        p = engine(conn)
        item = open_item(conn, int(job.payload["work_item"]))
        if item is None:
            return
        p._lock_instance(item.instance_id, state=False)
        p._history(item.instance_id, None, "remind", item.element_id, item.id)

    def on_escalate(conn: sa.Connection, job: Job) -> None:
        p = engine(conn)
        item = open_item(conn, int(job.payload["work_item"]))
        if item is None:
            return
        instance = p._lock_instance(item.instance_id)
        parsed = specs.get(conn, instance.process_key, instance.process_version)
        data = _workflow_data(instance.state)
        added = escalate(conn, item, parsed, data, instance.started_by)
        p._history(
            item.instance_id, None, "escalate", item.element_id, item.id, data={"roles": added}
        )

    return {TIMER: on_timer, REMIND: on_remind, ESCALATE: on_escalate}


def _workflow_data(state: Any) -> dict[str, Any]:
    """The instance's process-level data (``record`` etc.) without rebuilding it."""
    data = state.get("data", {}) if isinstance(state, dict) else {}
    return data if isinstance(data, dict) else {}
