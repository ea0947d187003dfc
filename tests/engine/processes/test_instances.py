"""Instances: start, the work-item projection, claim and complete, state without the spec."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from process_support import HEADER, NOW, actor, approval, processes, properties, publish, seed

from engine.errors import PermissionDeniedError
from engine.processes.definitions import SpecCache
from engine.processes.errors import ProcessRuntimeError, ProcessStateError
from engine.processes.instances import Context, Processes
from engine.processes.tables import history_table, instance_table, work_item_table


def items(conn: sa.Connection, instance_id: int) -> list[tuple[str, str, int | None]]:
    w = work_item_table
    rows = conn.execute(
        sa.select(w.c.element_id, w.c.status, w.c.assignee_id)
        .where(w.c.instance_id == instance_id)
        .order_by(w.c.id)
    )
    return [tuple(r) for r in rows]


def test_an_approval_runs_start_to_end(connection: sa.Connection) -> None:
    ids = seed(connection)
    publish(connection, approval())
    p = processes(connection)
    instance = p.start("review_flow", actor=actor(ids["alice"]), data={"amount": 500000})
    assert items(connection, instance) == [("review", "open", None)]
    item = connection.execute(sa.select(work_item_table)).one()
    assert item.due_at == NOW.replace(hour=3)  # PT2H of working time from 09:00

    with pytest.raises(PermissionDeniedError):
        p.complete(item.id, actor=actor(ids["bob"]), outcome="approve")
    p.claim(item.id, actor=actor(ids["rita"], "reviewer"))
    with pytest.raises(ProcessStateError):
        p.claim(item.id, actor=actor(ids["bob"], "reviewer"))
    p.complete(item.id, actor=actor(ids["rita"]), outcome="approve", comment="同意")
    # The gateway sent it to the initiator's notification task.
    assert items(connection, instance) == [
        ("review", "done", ids["rita"]),
        ("notify", "open", ids["alice"]),
    ]
    notify = connection.execute(
        sa.select(work_item_table.c.id).where(work_item_table.c.element_id == "notify")
    ).scalar_one()
    with pytest.raises(ProcessStateError, match="already done"):
        p.complete(item.id, actor=actor(ids["rita"]), outcome="approve")
    p.complete(notify, actor=actor(ids["alice"]))
    row = connection.execute(sa.select(instance_table)).one()
    assert (row.status, row.row_version) == ("completed", 3)
    assert "spec" not in row.state and "subprocess_specs" not in row.state
    history = connection.execute(
        sa.select(
            history_table.c.action, history_table.c.actor_id, history_table.c.comment
        ).order_by(history_table.c.id)
    ).all()
    assert [tuple(h) for h in history] == [
        ("start", ids["alice"], None),
        ("claim", ids["rita"], None),
        ("approve", ids["rita"], "同意"),
        ("submit", ids["alice"], None),
    ]


def test_a_rejection_takes_the_default_flow(connection: sa.Connection) -> None:
    ids = seed(connection)
    publish(connection, approval())
    p = processes(connection)
    instance = p.start("review_flow", actor=actor(ids["alice"]))
    item = connection.execute(sa.select(work_item_table.c.id)).scalar_one()
    p.complete(item, actor=actor(ids["rita"], "reviewer"), outcome="reject", comment="材料不全")
    assert items(connection, instance) == [("review", "done", ids["rita"])]
    assert connection.execute(sa.select(instance_table.c.status)).scalar_one() == "completed"


def test_instances_keep_their_version_and_reload_from_state(connection: sa.Connection) -> None:
    ids = seed(connection)
    publish(connection, approval())
    first = processes(connection).start("review_flow", actor=actor(ids["alice"]))
    assert publish(connection, approval(condition='outcome == "approve" and 1 == 1')) == 2
    second = processes(connection).start("review_flow", actor=actor(ids["alice"]))
    versions = dict(
        connection.execute(sa.select(instance_table.c.id, instance_table.c.process_version)).all()
    )
    assert versions == {first: 1, second: 2}
    # A fresh spec cache (another process, a restart) completes the first one.
    item = connection.execute(
        sa.select(work_item_table.c.id).where(work_item_table.c.instance_id == first)
    ).scalar_one()
    processes(connection).complete(item, actor=actor(ids["rita"], "reviewer"), outcome="approve")
    assert items(connection, first)[-1] == ("notify", "open", ids["alice"])


LOOP = (
    HEADER
    + f"""
  <bpmn:process id="rework" name="返工" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="review" name="复核">{properties(candidateRoles="reviewer")}
      <bpmn:incoming>f1</bpmn:incoming><bpmn:incoming>again</bpmn:incoming>
      <bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:exclusiveGateway id="ok" default="again">
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing><bpmn:outgoing>again</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="review" />
    <bpmn:sequenceFlow id="f2" sourceRef="review" targetRef="ok" />
    <bpmn:sequenceFlow id="f3" sourceRef="ok" targetRef="end">
      <bpmn:conditionExpression>outcome == "approve"</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="again" sourceRef="ok" targetRef="review" />
  </bpmn:process>
</bpmn:definitions>
"""
)


def test_a_loop_too_deep_for_the_engine_is_refused_not_ended(connection: sa.Connection) -> None:
    ids = seed(connection)
    publish(connection, LOOP)
    p = Processes(Context(connection, SpecCache(), lambda: NOW, max_depth=12))
    instance = p.start("rework", actor=actor(ids["alice"]))
    rounds = 0
    with pytest.raises(ProcessRuntimeError) as refused:
        while True:
            item = connection.execute(
                sa.select(work_item_table.c.id).where(work_item_table.c.status == "open")
            ).scalar_one()
            with connection.begin_nested():
                p.complete(item, actor=actor(ids["rita"], "reviewer"), outcome="reject")
            rounds += 1
    assert 2 <= rounds < 12
    assert refused.value.errors[0].pointer == "#review"
    # Nothing was lost: the instance still runs, with its review open.
    assert connection.execute(sa.select(instance_table.c.status)).scalar_one() == "running"
    assert items(connection, instance)[-1] == ("review", "open", None)
