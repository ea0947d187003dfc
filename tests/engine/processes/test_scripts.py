"""Script tasks: refused unless the server turns them on, then sandboxed assignments."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa
from process_support import HEADER, NOW, actor, open_item, processes, properties, seed
from SpiffWorkflow.util.task import TaskState

from engine.processes.definitions import SpecCache, publish_process
from engine.processes.errors import ProcessDefinitionError, ProcessRuntimeError
from engine.processes.scripting import ExpressionScriptEngine
from engine.processes.state import load
from engine.processes.tables import instance_table, work_item_table


def scripted(script: str, *, pre: str = "") -> str:
    """start -> price (script task) -> decide -> offer (user task) | decline (end)."""
    pre_script = properties(assignee="initiator")
    if pre:
        pre_script = pre_script.replace(
            "</bpmn:extensionElements>",
            f"<spiffworkflow:preScript>{pre}</spiffworkflow:preScript></bpmn:extensionElements>",
        )
    return (
        HEADER
        + f"""
  <bpmn:process id="pricing" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:scriptTask id="price" name="定价">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>{script}</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:exclusiveGateway id="decide" default="f4">
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing><bpmn:outgoing>f4</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:userTask id="offer" name="报价">{pre_script}
      <bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f5</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="offered"><bpmn:incoming>f5</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="declined"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="price" />
    <bpmn:sequenceFlow id="f2" sourceRef="price" targetRef="decide" />
    <bpmn:sequenceFlow id="f3" sourceRef="decide" targetRef="offer">
      <bpmn:conditionExpression>monthly &lt; 10000</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f4" sourceRef="decide" targetRef="declined" />
    <bpmn:sequenceFlow id="f5" sourceRef="offer" targetRef="offered" />
  </bpmn:process>
</bpmn:definitions>
"""
    )


PRICING = """
# rate by size, then the monthly payment
rate = 0.0435 if amount &gt; 1000000 else 0.0465
monthly = round(amount * rate / 12, 2)
"""


def publish(conn: sa.Connection, bpmn: str, *, scripts: bool) -> None:
    publish_process(conn, bpmn, actor_id=None, now=NOW, scripts=scripts)


def refusal(conn: sa.Connection, bpmn: str, *, scripts: bool) -> list[tuple[str, str]]:
    with pytest.raises(ProcessDefinitionError) as caught:
        publish(conn, bpmn, scripts=scripts)
    return [(e.pointer, e.message) for e in caught.value.errors]


def test_a_server_without_script_tasks_refuses_every_script(connection: sa.Connection) -> None:
    problems = refusal(connection, scripted(PRICING), scripts=False)
    assert [p for p, _ in problems] == ["#price"]
    assert "FORMFLOW_SCRIPT_TASKS" in problems[0][1]
    # A preScript on a user task is a script too.
    pre = scripted(PRICING, pre="note = 1")
    assert [p for p, _ in refusal(connection, pre, scripts=False)] == ["#price", "#offer"]


def test_a_script_computes_values_the_process_uses(connection: sa.Connection) -> None:
    ids = seed(connection)
    publish(connection, scripted(PRICING, pre="greeting = 'offer ' + str(monthly)"), scripts=True)
    p = processes(connection)
    small = p.start("pricing", actor=actor(ids["alice"]), data={"amount": 120000})
    item = connection.execute(
        sa.select(work_item_table.c.id).where(work_item_table.c.instance_id == small)
    ).scalar_one()
    state = connection.execute(
        sa.select(instance_table.c.state).where(instance_table.c.id == small)
    ).scalar_one()
    # The offer task holds what the script and its pre-script computed, exactly.
    parsed = SpecCache().get(connection, "pricing", 1)
    workflow = load(state, parsed, ExpressionScriptEngine(lambda: NOW))
    (offer,) = workflow.get_tasks(state=TaskState.READY, manual=True)
    assert offer.data["monthly"] == Decimal("465.00")
    assert offer.data["greeting"] == "offer 465.00"
    assert open_item(connection, small, "offer", ids["alice"]) == item
    # Over the limit, the gateway declines: the script's value decided it.
    large = p.start("pricing", actor=actor(ids["alice"]), data={"amount": 9000000})
    status = connection.execute(
        sa.select(instance_table.c.status).where(instance_table.c.id == large)
    ).scalar_one()
    assert status == "completed"


def test_bad_scripts_are_refused_line_by_line(connection: sa.Connection) -> None:
    bad = 'import os\nx = __import__("os")\ny = 9 ** 9 ** 9\nok = 1\nz == 2'
    problems = refusal(connection, scripted(bad), scripts=True)
    assert [p for p, _ in problems] == ["#price"] * 4
    messages = " | ".join(m for _, m in problems)
    for line in ("line 1:", "line 2:", "line 3:", "line 5:"):
        assert line in messages
    assert "line 4" not in messages
    assert refusal(connection, scripted("   "), scripts=True) == [("#price", "the script is empty")]
    too_long = "\n".join(f"v{i} = {i}" for i in range(51))
    assert "at most 50" in refusal(connection, scripted(too_long), scripts=True)[0][1]


def test_a_script_that_fails_at_run_time_names_its_task(connection: sa.Connection) -> None:
    ids = seed(connection)
    publish(connection, scripted("monthly = amount / parts"), scripts=True)
    with pytest.raises(ProcessRuntimeError) as caught:
        processes(connection).start(
            "pricing", actor=actor(ids["alice"]), data={"amount": 1, "parts": 0}
        )
    assert caught.value.errors[0].pointer == "#price"
    assert "division by zero" in caught.value.errors[0].message
