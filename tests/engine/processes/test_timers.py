"""Timers and SLAs as jobs, on a simulated clock: reminders, escalation, catch-up, once only."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from process_support import HEADER, actor, properties, publish, seed

from engine.jobs import HandlerRegistry, run_once
from engine.jobs.table import job_table
from engine.processes.definitions import SpecCache
from engine.processes.handlers import process_handlers
from engine.processes.instances import Context, Processes
from engine.processes.tables import candidate_table, history_table, work_item_table

CST = dt.timezone(dt.timedelta(hours=8))


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def boundary(cancel: bool, *, task_props: str | None = None) -> str:
    """work (user task) with a PT1H timer on its boundary leading to ``nudge``."""
    props = task_props or properties(candidateRoles="reviewer")
    return (
        HEADER
        + f"""
  <bpmn:process id="timed" name="限时任务" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="work" name="办理">{props}
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:boundaryEvent id="late" attachedToRef="work" cancelActivity="{str(cancel).lower()}">
      <bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:userTask id="nudge" name="催办">{properties(assignee="initiator")}
      <bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="done"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="nudged"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="work" />
    <bpmn:sequenceFlow id="f2" sourceRef="work" targetRef="done" />
    <bpmn:sequenceFlow id="f3" sourceRef="late" targetRef="nudge" />
    <bpmn:sequenceFlow id="f4" sourceRef="nudge" targetRef="nudged" />
  </bpmn:process>
</bpmn:definitions>
"""
    )


def setup(engine: sa.Engine, bpmn: str, clock: Clock) -> tuple[dict[str, int], int, SpecCache]:
    specs = SpecCache()
    with engine.begin() as conn:
        ids = seed(conn)
        conn.execute(
            sa.insert(
                sa.table("ff_role", sa.column("key"), sa.column("name"), sa.column("created_at"))
            ),
            {"key": "branch_head", "name": "支行行长", "created_at": clock.now},
        )
        publish(conn, bpmn)
        instance = Processes(Context(conn, specs, clock)).start("timed", actor=actor(ids["alice"]))
    return ids, instance, specs


def run_jobs(engine: sa.Engine, specs: SpecCache, clock: Clock) -> list[int]:
    registry = HandlerRegistry()
    for kind, handler in process_handlers(specs, clock).items():
        registry.register(kind, handler)
    report = run_once(engine, registry, worker_id="test", clock=clock, limit=50)
    assert not report.retrying and not report.incidents, report
    return report.done


def state(engine: sa.Engine) -> list[tuple[str, str]]:
    w = work_item_table
    with engine.connect() as conn:
        return [
            tuple(r) for r in conn.execute(sa.select(w.c.element_id, w.c.status).order_by(w.c.id))
        ]


def actions(engine: sa.Engine) -> list[Any]:
    h = history_table
    with engine.connect() as conn:
        return list(conn.execute(sa.select(h.c.action).order_by(h.c.id)).scalars())


def test_a_non_interrupting_reminder_fires_once_and_leaves_the_task_open(engine: sa.Engine) -> None:
    clock = Clock(dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC))
    _, _, specs = setup(engine, boundary(cancel=False), clock)
    assert run_jobs(engine, specs, clock) == []  # not due yet
    clock.now += dt.timedelta(minutes=61)
    assert len(run_jobs(engine, specs, clock)) == 1
    assert state(engine) == [("work", "open"), ("nudge", "open")]
    clock.now += dt.timedelta(hours=5)
    assert run_jobs(engine, specs, clock) == []  # fired once; nothing left to run
    assert actions(engine).count("timer") == 1


def test_an_interrupting_timer_takes_the_task_away(engine: sa.Engine) -> None:
    clock = Clock(dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC))
    _, _, specs = setup(engine, boundary(cancel=True), clock)
    clock.now += dt.timedelta(hours=2)
    run_jobs(engine, specs, clock)
    assert state(engine) == [("work", "cancelled"), ("nudge", "open")]


def test_a_task_done_in_time_makes_its_timer_a_no_op(engine: sa.Engine) -> None:
    clock = Clock(dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC))
    ids, _, specs = setup(engine, boundary(cancel=True), clock)
    with engine.begin() as conn:
        item = conn.execute(sa.select(work_item_table.c.id)).scalar_one()
        Processes(Context(conn, specs, clock)).complete(item, actor=actor(ids["rita"], "reviewer"))
    clock.now += dt.timedelta(hours=2)
    assert len(run_jobs(engine, specs, clock)) == 1  # the job ran, and did nothing
    assert state(engine) == [("work", "done")]
    assert "timer" not in actions(engine)


def test_timers_due_while_the_server_was_down_fire_on_restart(engine: sa.Engine) -> None:
    clock = Clock(dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC))
    setup(engine, boundary(cancel=False), clock)
    clock.now += dt.timedelta(days=3)  # nobody ran the worker for three days
    assert len(run_jobs(engine, SpecCache(), clock)) == 1  # a fresh process catches up
    assert state(engine) == [("work", "open"), ("nudge", "open")]


def test_an_sla_breach_escalates_on_the_business_calendar_skipping_the_holiday(
    engine: sa.Engine,
) -> None:
    # Wednesday 30 September 2026, 16:30 in Shanghai: National Day runs 1-7 October.
    clock = Clock(dt.datetime(2026, 9, 30, 16, 30, tzinfo=CST).astimezone(dt.UTC))
    sla = properties(
        candidateRoles="reviewer", dueIn="PT2H", remindBefore="PT30M", escalateTo="branch_head"
    )
    _, _, specs = setup(engine, boundary(cancel=False, task_props=sla), clock)
    with engine.connect() as conn:
        item = conn.execute(sa.select(work_item_table)).one()
    # One working hour on the 30th (16:30-17:30), the second from 09:00 on 8 October.
    assert item.due_at == dt.datetime(2026, 10, 8, 10, 0, tzinfo=CST)
    with engine.connect() as conn:
        runs = dict(conn.execute(sa.select(job_table.c.kind, job_table.c.run_at)).all())
    assert runs["process.remind"] == dt.datetime(2026, 10, 8, 9, 30, tzinfo=CST)
    clock.now = dt.datetime(2026, 10, 7, 23, 0, tzinfo=CST).astimezone(dt.UTC)
    run_jobs(engine, specs, clock)
    assert "escalate" not in actions(engine) and "remind" not in actions(engine)
    clock.now = dt.datetime(2026, 10, 8, 9, 45, tzinfo=CST).astimezone(dt.UTC)
    run_jobs(engine, specs, clock)
    assert "remind" in actions(engine) and "escalate" not in actions(engine)
    clock.now = dt.datetime(2026, 10, 8, 10, 1, tzinfo=CST).astimezone(dt.UTC)
    run_jobs(engine, specs, clock)
    assert actions(engine)[-1] == "escalate"
    with engine.connect() as conn:
        roles = set(
            conn.execute(
                sa.select(candidate_table.c.ref).where(candidate_table.c.work_item_id == item.id)
            ).scalars()
        )
    assert roles == {"reviewer", "branch_head"}  # now in the branch heads' group inbox
