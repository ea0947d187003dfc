"""The ``escalation`` property: notify, head, reassign, return — step by step after the due time."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from process_support import HEADER, actor, chain, properties, property_line, publish
from process_support import organisation as support_organisation
from test_timers import Clock, run_jobs

from engine.processes import inbox
from engine.processes.definitions import SpecCache, publish_process
from engine.processes.errors import ProcessDefinitionError
from engine.processes.instances import Context, Processes
from engine.processes.tables import candidate_table, history_table, work_item_table
from engine.system import role_table
from permissions.policy import PolicyStore

CST = dt.timezone(dt.timedelta(hours=8))
MONDAY_9 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=CST).astimezone(dt.UTC)


def at(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 3, 2, hour, minute, tzinfo=CST).astimezone(dt.UTC)


def single(escalation: str, **extra: str) -> str:
    props = properties(assignee="'rm'", dueIn="PT2H", escalation=escalation, **extra)
    return (
        HEADER
        + f"""
  <bpmn:process id="sla" name="限时办理" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="work" name="办理">{props}
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="done"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="work" />
    <bpmn:sequenceFlow id="f2" sourceRef="work" targetRef="done" />
  </bpmn:process>
</bpmn:definitions>
"""
    )


def organisation(conn: sa.Connection) -> dict[str, int]:
    """BANK > HZ (branch, head: head_hz) > TEAM (rm; its lead: team_lead, also a branch head)."""
    for key in ("reviewer", "branch_head"):
        conn.execute(sa.insert(role_table).values(key=key, name=key, created_at=MONDAY_9))
    users = support_organisation(
        conn,
        [("BANK", None), ("HZ", "BANK"), ("TEAM", "HZ")],
        [("alice", "TEAM"), ("rm", "TEAM"), ("head_hz", "HZ"), ("rita", "TEAM")],
        MONDAY_9,
    )
    store = PolicyStore(conn, actor_id=None, now=MONDAY_9)
    store.assign_role(users["head_hz"], "branch_head")
    store.assign_role(users["rita"], "reviewer")
    return users


def start(engine: sa.Engine, bpmn: str, clock: Clock, key: str) -> tuple[dict[str, int], SpecCache]:
    specs = SpecCache()
    with engine.begin() as conn:
        users = organisation(conn)
        publish(conn, bpmn)
        Processes(Context(conn, specs, clock)).start(key, actor=actor(users["alice"]))
    return users, specs


def escalations(engine: sa.Engine) -> list[Any]:
    h = history_table
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(h.c.actor_id, h.c.data).where(h.c.action == "escalate").order_by(h.c.id)
        )
        assert all(r.actor_id is None for r in rows)  # the system escalates
        return list(
            conn.execute(
                sa.select(h.c.data).where(h.c.action == "escalate").order_by(h.c.id)
            ).scalars()
        )


def work(engine: sa.Engine) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.select(work_item_table).order_by(work_item_table.c.id)).first()


def candidates(engine: sa.Engine, item_id: int) -> set[str]:
    c = candidate_table
    with engine.connect() as conn:
        rows = conn.execute(sa.select(c.c.kind, c.c.ref).where(c.c.work_item_id == item_id))
        return {f"{kind}:{ref}" for kind, ref in rows}


def test_notify_then_the_head_then_reassign(engine: sa.Engine) -> None:
    clock = Clock(MONDAY_9)
    bpmn = single("notify, head after PT1H, reassign after PT2H", escalateTo="branch_head")
    users, specs = start(engine, bpmn, clock, "sla")
    rm, head = users["rm"], users["head_hz"]
    item = work(engine)
    assert item.due_at == at(11) and item.escalated_at is None

    clock.now = at(11, 1)  # due: the assignee is told, the inbox says escalated
    run_jobs(engine, specs, clock)
    assert escalations(engine) == [{"action": "notify", "assignee": rm}]
    with engine.connect() as conn:
        mine = inbox.tasks(conn, actor(rm), "mine")
    assert mine[0]["escalated_at"] == clock.now.isoformat()

    clock.now = at(12, 1)  # an hour of working time later: the head of rm's branch
    run_jobs(engine, specs, clock)
    assert escalations(engine)[-1] == {"action": "head", "to": [f"user:{head}"]}
    assert candidates(engine, item.id) == {f"user:{head}"}
    assert work(engine).assignee_id == rm  # still rm's task

    clock.now = at(14, 31)  # two working hours after the due time (lunch does not count)
    run_jobs(engine, specs, clock)
    assert escalations(engine)[-1] == {"action": "reassign", "from": rm, "to": [f"user:{head}"]}
    assert work(engine).assignee_id == head and work(engine).status == "open"


def test_the_head_is_looked_for_above_an_assignee_who_is_a_head(engine: sa.Engine) -> None:
    clock = Clock(MONDAY_9)
    bpmn = single("head", escalateTo="reviewer")  # rita is TEAM's "head" here ...
    bpmn = bpmn.replace("'rm'", "'rita'")  # ... and the assignee: look further up
    _users, specs = start(engine, bpmn, clock, "sla")
    clock.now = at(11, 1)
    run_jobs(engine, specs, clock)
    # Nobody above TEAM holds the reviewer role: the role itself, as candidateScope does.
    assert escalations(engine) == [{"action": "head", "to": ["role:reviewer"]}]


def test_candidates_is_the_default_escalation_as_a_step(engine: sa.Engine) -> None:
    clock = Clock(MONDAY_9)
    _users, specs = start(engine, single("candidates", escalateTo="branch_head"), clock, "sla")
    clock.now = at(11, 1)
    run_jobs(engine, specs, clock)
    assert escalations(engine) == [{"action": "candidates", "roles": ["branch_head"]}]
    assert candidates(engine, work(engine).id) == {"role:branch_head"}


def test_return_sends_an_overdue_task_back_to_the_step_before(engine: sa.Engine) -> None:
    clock = Clock(MONDAY_9)
    review = property_line("dueIn", "PT2H") + property_line(
        "escalation", "notify, return after PT1H"
    )
    users, specs = start(engine, chain("chain", review=review), clock, "chain")
    with engine.begin() as conn:
        draft = conn.execute(sa.select(work_item_table.c.id)).scalar_one()
        Processes(Context(conn, specs, clock)).complete(draft, actor=actor(users["alice"]))
    clock.now = at(11, 1)
    run_jobs(engine, specs, clock)
    assert escalations(engine) == [{"action": "notify", "assignee": None}]
    clock.now = at(12, 1)
    run_jobs(engine, specs, clock)
    assert escalations(engine)[-1] == {"action": "return", "to": "draft"}
    w = work_item_table
    with engine.connect() as conn:
        rows = conn.execute(sa.select(w.c.element_id, w.c.status, w.c.assignee_id).order_by(w.c.id))
        assert [tuple(r) for r in rows] == [
            ("draft", "done", users["alice"]),
            ("review", "returned", None),
            ("draft", "open", users["alice"]),  # back to who did it
        ]
        returned = conn.execute(
            sa.select(history_table.c.actor_id, history_table.c.comment).where(
                history_table.c.action == "return"
            )
        ).one()
    assert returned.actor_id is None and "Overdue" in returned.comment


def test_return_without_an_earlier_step_is_recorded_not_retried(engine: sa.Engine) -> None:
    clock = Clock(MONDAY_9)
    _users, specs = start(engine, single("return"), clock, "sla")
    clock.now = at(11, 1)
    run_jobs(engine, specs, clock)  # run_jobs asserts no retry and no incident
    assert escalations(engine) == [
        {"action": "return", "to": None, "refused": "there is no earlier step to return to"}
    ]
    assert work(engine).status == "open"


def test_a_task_done_in_time_is_not_escalated(engine: sa.Engine) -> None:
    clock = Clock(MONDAY_9)
    users, specs = start(
        engine, single("notify, reassign after PT1H", escalateTo="branch_head"), clock, "sla"
    )
    with engine.begin() as conn:
        Processes(Context(conn, specs, clock)).complete(work(engine).id, actor=actor(users["rm"]))
    clock.now = at(17)
    assert len(run_jobs(engine, specs, clock)) == 2  # both steps ran, and did nothing
    assert escalations(engine) == []


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"escalation": "shout"}, "'shout' is not an escalation step"),
        ({"escalation": "notify later"}, "write a step as 'notify' or 'notify after PT4H'"),
        ({"escalation": "notify after P1M"}, "escalation: 'notify after P1M'"),
        ({"escalation": "head"}, "escalation head needs escalateTo"),
        ({"escalation": "return, notify"}, "return ends the task, so it must be the last step"),
        ({"escalation": " , "}, "list at least one step"),
    ],
)
def test_escalation_is_checked_at_publish(
    connection: sa.Connection, props: dict[str, str], message: str
) -> None:
    organisation(connection)
    with pytest.raises(ProcessDefinitionError) as caught:
        publish_process(connection, single(**props), actor_id=None, now=MONDAY_9)
    assert [e.pointer for e in caught.value.errors] == ["#work"]
    assert message in caught.value.errors[0].message


def test_escalation_needs_a_due_time(connection: sa.Connection) -> None:
    organisation(connection)
    bpmn = single("notify").replace(property_line("dueIn", "PT2H"), "")
    with pytest.raises(ProcessDefinitionError) as caught:
        publish_process(connection, bpmn, actor_id=None, now=MONDAY_9)
    assert (
        caught.value.errors[0].message == "escalation needs a dueIn: steps count from the due time"
    )
