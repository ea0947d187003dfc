"""Repeating boundary timers (timeCycle): a chase every few hours, N times or until done."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from process_support import HEADER, actor, properties, publish, seed
from test_timers import Clock, actions, run_jobs, state

from engine.jobs.table import job_table
from engine.processes.definitions import SpecCache, publish_process
from engine.processes.errors import ProcessDefinitionError
from engine.processes.instances import Context, Processes
from engine.processes.tables import history_table, work_item_table

START = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)


def chased(cycle: str = "R3/PT4H", *, cancel: bool = False, event: str = "boundary") -> str:
    """work (reviewer) with a repeating timer on its boundary opening ``chase`` each time."""
    timer = (
        f"<bpmn:timerEventDefinition><bpmn:timeCycle>{cycle}</bpmn:timeCycle>"
        "</bpmn:timerEventDefinition>"
    )
    if event == "boundary":
        waiting = (
            f'<bpmn:boundaryEvent id="remind" attachedToRef="work" '
            f'cancelActivity="{str(cancel).lower()}"><bpmn:outgoing>f3</bpmn:outgoing>{timer}'
            "</bpmn:boundaryEvent>"
        )
        flows = '<bpmn:sequenceFlow id="f3" sourceRef="remind" targetRef="chase" />'
    else:  # an intermediate event after the task
        waiting = (
            '<bpmn:intermediateCatchEvent id="remind"><bpmn:incoming>f5</bpmn:incoming>'
            f"<bpmn:outgoing>f3</bpmn:outgoing>{timer}</bpmn:intermediateCatchEvent>"
        )
        flows = (
            '<bpmn:sequenceFlow id="f3" sourceRef="remind" targetRef="chase" />'
            '<bpmn:startEvent id="s2"><bpmn:outgoing>f5</bpmn:outgoing></bpmn:startEvent>'
            '<bpmn:sequenceFlow id="f5" sourceRef="s2" targetRef="remind" />'
        )
    return (
        HEADER
        + f"""
  <bpmn:process id="timed" name="催办" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="work" name="办理">{properties(candidateRoles="reviewer")}
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    {waiting}
    <bpmn:userTask id="chase" name="催办">{properties(assignee="initiator")}
      <bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="done"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="chased"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="work" />
    <bpmn:sequenceFlow id="f2" sourceRef="work" targetRef="done" />
    <bpmn:sequenceFlow id="f4" sourceRef="chase" targetRef="chased" />
    {flows}
  </bpmn:process>
</bpmn:definitions>
"""
    )


def started(engine: sa.Engine, bpmn: str, clock: Clock) -> tuple[dict[str, int], SpecCache]:
    specs = SpecCache()
    with engine.begin() as conn:
        ids = seed(conn)
        publish(conn, bpmn)
        Processes(Context(conn, specs, clock)).start("timed", actor=actor(ids["alice"]))
    return ids, specs


def chases(engine: sa.Engine) -> int:
    return sum(1 for element, _ in state(engine) if element == "chase")


def pending_timers(engine: sa.Engine) -> list[dt.datetime]:
    j = job_table
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(j.c.run_at).where(j.c.kind == "process.timer", j.c.status == "pending")
        )
        return list(rows.scalars())


def test_a_repeating_boundary_timer_chases_n_times_then_stops(engine: sa.Engine) -> None:
    clock = Clock(START)
    _, specs = started(engine, chased("R3/PT4H"), clock)
    assert pending_timers(engine) == [START + dt.timedelta(hours=4)]
    for hours in range(1, 6):  # every four hours for twenty
        clock.now = START + dt.timedelta(hours=4 * hours)
        run_jobs(engine, specs, clock)
        assert chases(engine) == min(hours, 3)
    assert pending_timers(engine) == []
    assert ("work", "open") in state(engine)  # the task itself is untouched
    with engine.connect() as conn:
        data = conn.execute(
            sa.select(history_table.c.data)
            .where(history_table.c.action == "timer")
            .order_by(history_table.c.id)
        ).scalars()
        assert [d["occurrence"] for d in data] == [1, 2, 3]


def test_completing_the_task_ends_the_chase(engine: sa.Engine) -> None:
    clock = Clock(START)
    ids, specs = started(engine, chased("R/PT4H"), clock)  # no end of its own
    clock.now += dt.timedelta(hours=4)
    run_jobs(engine, specs, clock)
    assert chases(engine) == 1
    with engine.begin() as conn:
        item = conn.execute(
            sa.select(work_item_table.c.id).where(work_item_table.c.element_id == "work")
        ).scalar_one()
        Processes(Context(conn, specs, clock)).complete(item, actor=actor(ids["rita"], "reviewer"))
    clock.now += dt.timedelta(hours=4)
    assert len(run_jobs(engine, specs, clock)) == 1  # the next occurrence ran and did nothing
    assert actions(engine).count("timer") == 1
    assert pending_timers(engine) == []  # and scheduled nothing after it


def test_occurrences_missed_while_down_chase_once(engine: sa.Engine) -> None:
    clock = Clock(START)
    started(engine, chased("R5/PT4H"), clock)
    clock.now += dt.timedelta(hours=9)  # the 4th and 8th hours passed unseen
    assert len(run_jobs(engine, SpecCache(), clock)) == 1
    assert chases(engine) == 1
    assert pending_timers(engine) == [START + dt.timedelta(hours=12)]
    with engine.connect() as conn:
        data = conn.execute(
            sa.select(history_table.c.data).where(history_table.c.action == "timer")
        ).scalar_one()
    assert data == {"occurrence": 1, "of": 5, "missed": 1}


@pytest.mark.parametrize(
    ("bpmn", "message"),
    [
        (chased(cancel=True), "an interrupting boundary timer fires once"),
        (chased(event="intermediate"), "this event fires once"),
        (chased("R3/${hours}"), "is not an ISO 8601 duration"),
    ],
)
def test_unsupported_repeating_timers_are_refused_naming_the_event(
    connection: sa.Connection, bpmn: str, message: str
) -> None:
    seed(connection)
    with pytest.raises(ProcessDefinitionError) as caught:
        publish_process(connection, bpmn, actor_id=None, now=START)
    assert [e.pointer for e in caught.value.errors] == ["#remind"]
    assert message in caught.value.errors[0].message
