"""Standard loops: rework rounds run as drawn, and finished rounds leave the live state."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from process_support import HEADER, actor, approvals, open_item, properties, publish, seed

from engine.processes.approvals import Approvals
from engine.processes.instances import Processes
from engine.processes.tables import history_table, instance_table


def rework(key: str = "rework", *, maximum: int | None = None, condition: str = "") -> str:
    """start -> draft (initiator) -> review (reviewer, looped) -> sign (initiator) -> end."""
    limit = f' loopMaximum="{maximum}"' if maximum is not None else ""
    test = condition or 'outcome != "approve"'
    return (
        HEADER
        + f"""
  <bpmn:process id="{key}" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="draft">{properties(assignee="initiator")}
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:userTask id="review">{properties(candidateRoles="reviewer")}
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:standardLoopCharacteristics{limit}>
        <bpmn:loopCondition>{test}</bpmn:loopCondition>
      </bpmn:standardLoopCharacteristics>
    </bpmn:userTask>
    <bpmn:userTask id="sign">{properties(assignee="initiator")}
      <bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f4</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="draft" />
    <bpmn:sequenceFlow id="f2" sourceRef="draft" targetRef="review" />
    <bpmn:sequenceFlow id="f3" sourceRef="review" targetRef="sign" />
    <bpmn:sequenceFlow id="f4" sourceRef="sign" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""
    )


@pytest.fixture
def ids(connection: sa.Connection) -> dict[str, int]:
    return seed(connection)


def state(conn: sa.Connection, instance_id: int) -> dict[str, object]:
    found = conn.execute(
        sa.select(instance_table.c.state).where(instance_table.c.id == instance_id)
    ).scalar_one()
    assert isinstance(found, dict)
    return found


def drafted(conn: sa.Connection, ids: dict[str, int], bpmn: str) -> tuple[Approvals, int]:
    """The process published and started by alice, her draft done: review is open."""
    publish(conn, bpmn)
    p = approvals(conn)
    alice = actor(ids["alice"])
    instance = p.start("rework", actor=alice)
    p.complete(open_item(conn, instance, "draft", ids["alice"]), actor=alice)
    return p, instance


def review_round(p: Processes, conn: sa.Connection, instance: int, rita: int, outcome: str) -> None:
    item = open_item(conn, instance, "review", None)
    p.claim(item, actor=actor(rita, "reviewer"))
    p.complete(item, actor=actor(rita, "reviewer"), outcome=outcome, comment=outcome)


def test_rework_rounds_keep_the_state_the_size_of_one_round(
    connection: sa.Connection, ids: dict[str, int]
) -> None:
    p, instance = drafted(connection, ids, rework())
    alice = actor(ids["alice"])
    sizes = {}
    for n in range(1, 41):
        review_round(p, connection, instance, ids["rita"], "reject")
        if n in (2, 40):
            sizes[n] = len(json.dumps(state(connection, instance)))
    # Forty rounds store what two do, give or take the digits of a timestamp.
    assert abs(sizes[40] - sizes[2]) < 100, sizes
    assert len(state(connection, instance)["tasks"]) < 12  # type: ignore[arg-type]
    review_round(p, connection, instance, ids["rita"], "approve")
    p.complete(open_item(connection, instance, "sign", ids["alice"]), actor=alice)
    status = connection.execute(
        sa.select(instance_table.c.status).where(instance_table.c.id == instance)
    ).scalar_one()
    assert status == "completed"
    rounds = connection.execute(
        sa.select(history_table.c.action).where(
            history_table.c.instance_id == instance, history_table.c.element_id == "review"
        )
    ).scalars()
    # Every round is in the history even though the state forgot it.
    assert [a for a in rounds if a != "claim"] == ["reject"] * 40 + ["approve"]


def test_a_loop_maximum_still_counts_every_round(
    connection: sa.Connection, ids: dict[str, int]
) -> None:
    # The condition never lets go: only loopMaximum ends the loop.
    p, instance = drafted(connection, ids, rework(maximum=6, condition="1 == 1"))
    for _ in range(5):
        review_round(p, connection, instance, ids["rita"], "approve")
        assert open_item(connection, instance, "review", None)
    review_round(p, connection, instance, ids["rita"], "approve")
    assert open_item(connection, instance, "sign", ids["alice"])


def test_return_to_a_looped_step_after_its_rounds_were_dropped(
    connection: sa.Connection, ids: dict[str, int]
) -> None:
    p, instance = drafted(connection, ids, rework())
    alice = actor(ids["alice"])
    for outcome in ("reject", "reject", "reject", "approve"):
        review_round(p, connection, instance, ids["rita"], outcome)
    sign = open_item(connection, instance, "sign", ids["alice"])
    p.return_to(sign, actor=alice, to_element="review", comment="合同条款需复核")
    # Back to the latest round's reviewer, then round after round as before.
    again = open_item(connection, instance, "review", ids["rita"])
    p.complete(again, actor=actor(ids["rita"], "reviewer"), outcome="reject")
    review_round(p, connection, instance, ids["rita"], "approve")
    sign = open_item(connection, instance, "sign", ids["alice"])
    p.return_to(sign, actor=alice, to_element="draft", comment="重新起草")
    p.complete(open_item(connection, instance, "draft", ids["alice"]), actor=alice)
    review_round(p, connection, instance, ids["rita"], "approve")
    p.complete(open_item(connection, instance, "sign", ids["alice"]), actor=alice)
    status = connection.execute(
        sa.select(instance_table.c.status).where(instance_table.c.id == instance)
    ).scalar_one()
    assert status == "completed"
