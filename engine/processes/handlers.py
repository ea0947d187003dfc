"""The jobs worker's side of processes: fire timers, remind, escalate, start on a timer.

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

import sqlalchemy as sa

from engine.calendar import BusinessCalendar
from engine.jobs import Job
from engine.processes.approvals import Approvals
from engine.processes.cycles import FormflowCycle
from engine.processes.definitions import SpecCache
from engine.processes.escalation_actions import mark_escalated, run_step, workflow_data
from engine.processes.instances import Context, task_by_id
from engine.processes.services import schedule_services
from engine.processes.state import load
from engine.processes.system_actor import SYSTEM
from engine.processes.tables import RUNNING, process_table
from engine.processes.timer_start import START, enqueue_start, start_schedule, start_timer
from engine.processes.timers import (
    ESCALATE,
    REMIND,
    TIMER,
    cycle_schedule,
    escalate,
    fire,
    open_item,
    schedule_occurrence,
    schedule_timers,
)

Handler = Callable[[sa.Connection, Job], None]


def process_handlers(
    specs: SpecCache,
    clock: Callable[[], dt.datetime],
    calendar: BusinessCalendar | None = None,
) -> dict[str, Handler]:
    def engine(conn: sa.Connection) -> Approvals:
        # Approvals: an escalation step may return the task (Approvals.return_to).
        return Approvals(Context(conn, specs, clock, calendar))

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
        cycle = timer is not None and isinstance(timer.task_spec.event_definition, FormflowCycle)
        schedule = cycle_schedule(timer) if cycle else None
        if not fire(workflow, task_id):
            return  # completed or cancelled meanwhile: nothing to fire
        p._run(workflow, None)  # an error names its element; the job retries, then incident
        p._save(instance, workflow)
        now, following, data = clock(), None, None
        if schedule is not None:  # one occurrence of a repeating timer
            index = int(job.payload["occurrence"])
            following, missed = schedule.after(index, now)
            data = {"occurrence": index + 1, "of": schedule.count, "missed": missed}
        p._history(instance.id, None, "timer", element, None, data=data)
        p._project(instance.id, workflow, parsed, started_by=instance.started_by)
        schedule_timers(conn, instance.id, workflow, p.ctx.script_engine, now)
        schedule_services(conn, instance.id, workflow, now)
        if schedule is not None and following is not None:
            schedule_occurrence(conn, instance.id, timer, schedule, following, now)

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
        if "step" in job.payload:  # the task's ``escalation`` property
            run_step(p, instance, item, parsed, int(job.payload["step"]))
            return
        data = workflow_data(instance.state)
        added = escalate(conn, item, parsed, data, instance.started_by)
        mark_escalated(conn, item.id, clock())
        p._history(
            item.instance_id, None, "escalate", item.element_id, item.id, data={"roles": added}
        )

    def on_timer_start(conn: sa.Connection, job: Job) -> None:
        key, version = str(job.payload["process"]), int(job.payload["version"])
        p = process_table
        # Publishing locks this row too: a version published meanwhile either
        # committed first (this start is superseded) or waits for this one.
        current = conn.execute(
            sa.select(p.c.current_version).where(p.c.key == key).with_for_update()
        ).scalar_one_or_none()
        if current != version:
            return  # superseded: the newer version runs a schedule of its own
        parsed = specs.get(conn, key, version)
        published = dt.datetime.fromisoformat(str(job.payload["published_at"]))
        event, schedule = start_timer(parsed), start_schedule(parsed, published)
        if event is None or schedule is None:  # pragma: no cover - versions never change
            return
        now, index = clock(), int(job.payload["occurrence"])
        following, missed = schedule.after(index, now)
        starter = engine(conn)
        instance_id = starter.start(key, actor=SYSTEM)  # no human actor: the timer did it
        when = {"occurrence": schedule.at(index).isoformat(), "missed": missed}
        starter._history(instance_id, None, "timer", event[0], None, data=when)
        if following is not None:
            enqueue_start(conn, key, version, published, schedule, following, now)

    return {
        TIMER: on_timer,
        REMIND: on_remind,
        ESCALATE: on_escalate,
        START: on_timer_start,
    }
