"""Timer start events: instances started by the worker on a schedule, on a simulated clock."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from process_support import HEADER, actor, properties, seed
from test_timers import Clock, run_jobs

from engine.jobs.table import job_table
from engine.processes.cycles import TimerValueError, parse_cycle, schedule_of
from engine.processes.definitions import SpecCache, publish_process
from engine.processes.errors import ProcessDefinitionError
from engine.processes.instances import Context, Processes
from engine.processes.tables import history_table, instance_table, work_item_table

CST = dt.timezone(dt.timedelta(hours=8))
# Sunday 1 March 2026, 10:00 in Shanghai: the reviews below start on Monday at 09:00.
PUBLISHED = dt.datetime(2026, 3, 1, 10, 0, tzinfo=CST).astimezone(dt.UTC)
MONDAY_9 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=CST)


def timed_start(timer: str, *, kind: str = "timeCycle", name: str = "定期回访") -> str:
    return (
        HEADER
        + f"""
  <bpmn:process id="review" name="{name}" isExecutable="true">
    <bpmn:startEvent id="every_day"><bpmn:outgoing>s1</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:{kind}>{timer}</bpmn:{kind}></bpmn:timerEventDefinition>
    </bpmn:startEvent>
    <bpmn:userTask id="call" name="回访">{properties(candidateRoles="reviewer")}
      <bpmn:incoming>s1</bpmn:incoming><bpmn:outgoing>s2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>s2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="s1" sourceRef="every_day" targetRef="call" />
    <bpmn:sequenceFlow id="s2" sourceRef="call" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""
    )


DAILY = timed_start("R/2026-03-02T09:00:00+08:00/P1D")


def publish_at(engine: sa.Engine, bpmn: str, clock: Clock, *, first: bool = True) -> Any:
    with engine.begin() as conn:
        if first:
            seed(conn)
        return publish_process(conn, bpmn, actor_id=None, now=clock.now)


def started(engine: sa.Engine) -> list[tuple[int, int | None, dt.datetime]]:
    """(version, started_by, started_at) of every instance."""
    i = instance_table
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(i.c.process_version, i.c.started_by, i.c.started_at).order_by(i.c.id)
        )
        return [(r.process_version, r.started_by, r.started_at) for r in rows]


def pending_starts(engine: sa.Engine) -> list[dt.datetime]:
    j = job_table
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(j.c.run_at)
            .where(j.c.kind == "process.timer_start", j.c.status == "pending")
            .order_by(j.c.run_at)
        )
        return list(rows.scalars())


def test_a_cycle_starts_an_instance_at_each_occurrence_as_the_system(engine: sa.Engine) -> None:
    clock, specs = Clock(PUBLISHED), SpecCache()
    publish_at(engine, DAILY, clock)
    assert pending_starts(engine) == [MONDAY_9]
    assert run_jobs(engine, specs, clock) == []  # Sunday: not yet
    clock.now = MONDAY_9.astimezone(dt.UTC)
    assert len(run_jobs(engine, specs, clock)) == 1
    assert started(engine) == [(1, None, clock.now)]  # no human started it
    assert pending_starts(engine) == [MONDAY_9 + dt.timedelta(days=1)]  # the next, same commit
    h = history_table
    with engine.connect() as conn:
        history = conn.execute(
            sa.select(h.c.action, h.c.actor_id, h.c.element_id, h.c.data).order_by(h.c.id)
        ).all()
        item = conn.execute(sa.select(work_item_table)).one()
    assert [tuple(r[:3]) for r in history] == [("start", None, None), ("timer", None, "every_day")]
    assert history[1].data == {"occurrence": clock.now.isoformat(), "missed": 0}
    assert item.element_id == "call" and item.status == "open"
    clock.now += dt.timedelta(days=1)
    assert len(run_jobs(engine, specs, clock)) == 1
    assert [v for v, _, _ in started(engine)] == [1, 1]


def test_a_newer_version_supersedes_the_schedule(engine: sa.Engine) -> None:
    clock, specs = Clock(PUBLISHED), SpecCache()
    publish_at(engine, DAILY, clock)
    clock.now += dt.timedelta(hours=1)
    v2 = publish_at(
        engine, timed_start("R/2026-03-02T09:00:00+08:00/P1D", name="回访"), clock, first=False
    )
    assert v2.version == 2
    assert pending_starts(engine) == [MONDAY_9, MONDAY_9]  # one job per version
    clock.now = MONDAY_9.astimezone(dt.UTC)
    assert len(run_jobs(engine, specs, clock)) == 2  # both ran ...
    assert [v for v, _, _ in started(engine)] == [2]  # ... and only the current version started
    assert pending_starts(engine) == [MONDAY_9 + dt.timedelta(days=1)]  # v1 scheduled nothing
    with engine.connect() as conn:
        payload = conn.execute(
            sa.select(job_table.c.payload).where(job_table.c.status == "pending")
        ).scalar_one()
    assert payload["version"] == 2


def test_missed_occurrences_start_one_instance_on_restart(engine: sa.Engine) -> None:
    clock = Clock(PUBLISHED)
    publish_at(engine, DAILY, clock)
    # Nobody ran a worker from Sunday to Friday noon: five occurrences passed.
    clock.now = dt.datetime(2026, 3, 6, 12, 0, tzinfo=CST).astimezone(dt.UTC)
    assert len(run_jobs(engine, SpecCache(), clock)) == 1
    assert len(started(engine)) == 1  # one catch-up start, not a burst of five
    with engine.connect() as conn:
        data = conn.execute(
            sa.select(history_table.c.data).where(history_table.c.action == "timer")
        ).scalar_one()
    assert data == {"occurrence": MONDAY_9.astimezone(dt.UTC).isoformat(), "missed": 4}
    assert pending_starts(engine) == [dt.datetime(2026, 3, 7, 9, 0, tzinfo=CST)]
    assert run_jobs(engine, SpecCache(), clock) == []  # and nothing more until Saturday


def test_a_bounded_cycle_relative_to_publishing_stops_after_its_repetitions(
    engine: sa.Engine,
) -> None:
    clock, specs = Clock(PUBLISHED), SpecCache()
    publish_at(engine, timed_start("R2/PT1H"), clock)
    for _ in range(3):
        clock.now += dt.timedelta(hours=1)
        run_jobs(engine, specs, clock)
    assert [at for _, _, at in started(engine)] == [
        PUBLISHED + dt.timedelta(hours=1),
        PUBLISHED + dt.timedelta(hours=2),
    ]
    assert pending_starts(engine) == []


def test_a_duration_starts_once_that_long_after_publishing(engine: sa.Engine) -> None:
    clock, specs = Clock(PUBLISHED), SpecCache()
    publish_at(engine, timed_start("PT2H", kind="timeDuration"), clock)
    assert pending_starts(engine) == [PUBLISHED + dt.timedelta(hours=2)]
    clock.now += dt.timedelta(days=2)
    run_jobs(engine, specs, clock)
    assert len(started(engine)) == 1 and pending_starts(engine) == []


def test_a_date_in_the_past_is_published_with_a_warning_and_never_starts(
    engine: sa.Engine,
) -> None:
    clock = Clock(PUBLISHED)
    published = publish_at(engine, timed_start("2026-02-01T09:00:00+08:00", kind="timeDate"), clock)
    assert [(w.pointer, w.message) for w in published.warnings] == [
        ("#every_day", "every occurrence of this timer is past: it never starts")
    ]
    assert pending_starts(engine) == []


def test_a_person_may_still_start_a_timer_process_by_hand(engine: sa.Engine) -> None:
    clock = Clock(PUBLISHED)
    publish_at(engine, DAILY, clock)
    with engine.begin() as conn:
        alice = conn.execute(sa.text("SELECT id FROM ff_user WHERE username = 'alice'")).scalar()
        Processes(Context(conn, SpecCache(), clock)).start("review", actor=actor(alice))
        opened = conn.execute(sa.select(work_item_table.c.element_id)).scalars().all()
    assert opened == ["call"]  # the start event does not wait for its timer


@pytest.mark.parametrize(
    ("timer", "message"),
    [
        ("R/PT1H", None),
        ("0 0 9 * * ?", "cron expressions are not supported"),
        ("R/2026-03-02T09:00:00/P1D", "needs a time and an offset"),
        ("R0/PT1H", "repeats zero times"),
        ("R3/PT1H/2026-03-02T09:00:00+08:00", "a cycle ending at an instant is not supported"),
        ("R/P1X", "is not an ISO 8601 duration"),
    ],
)
def test_start_timers_are_checked_at_publish(
    connection: sa.Connection, timer: str, message: str | None
) -> None:
    seed(connection)
    if message is None:
        publish_process(connection, timed_start(timer), actor_id=None, now=PUBLISHED)
        return
    with pytest.raises(ProcessDefinitionError) as caught:
        publish_process(connection, timed_start(timer), actor_id=None, now=PUBLISHED)
    assert [e.pointer for e in caught.value.errors] == ["#every_day"]
    assert message in caught.value.errors[0].message


def test_a_timer_start_needs_to_be_the_only_start_event(connection: sa.Connection) -> None:
    bpmn = DAILY.replace(
        '<bpmn:endEvent id="end">',
        '<bpmn:startEvent id="by_hand"><bpmn:outgoing>s3</bpmn:outgoing></bpmn:startEvent>'
        '<bpmn:sequenceFlow id="s3" sourceRef="by_hand" targetRef="call" />'
        '<bpmn:endEvent id="end">',
    )
    with pytest.raises(ProcessDefinitionError) as caught:
        publish_process(connection, bpmn, actor_id=None, now=PUBLISHED)
    assert caught.value.errors[0].pointer == "#every_day"
    assert "exactly one start event (found 2)" in caught.value.errors[0].message


def test_schedules_count_calendar_months_and_skip_missed_occurrences() -> None:
    monthly = parse_cycle("R/2026-01-31T09:00:00+08:00/P1M", PUBLISHED)
    assert [monthly.at(i).astimezone(CST).date().isoformat() for i in range(3)] == [
        "2026-01-31",
        "2026-02-28",
        "2026-03-31",
    ]
    hourly = parse_cycle("R100/PT1H", PUBLISHED)
    assert hourly.at(0) == PUBLISHED + dt.timedelta(hours=1)
    # Occurrence 0 fired fifty hours late: 49 missed, the next is the 51st hour.
    assert hourly.after(0, PUBLISHED + dt.timedelta(hours=50, minutes=30)) == (50, 49)
    assert hourly.after(98, PUBLISHED + dt.timedelta(days=30)) == (None, 1)
    assert hourly.upcoming(PUBLISHED + dt.timedelta(hours=3)) == 2
    once = schedule_of("timeDate", "2026-03-02T09:00:00+08:00", PUBLISHED)
    assert once.after(0, MONDAY_9) == (None, 0)
    with pytest.raises(TimerValueError):
        parse_cycle("R/P", PUBLISHED)
