"""Publishing BPMN: every problem named by its element, versions, Camunda Modeler files."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from process_support import NOW, actor, approval, processes, properties, publish, seed

from engine.processes.bpmn import parse_bpmn
from engine.processes.definitions import publish_process
from engine.processes.errors import ProcessDefinitionError
from engine.processes.tables import process_version_table, work_item_table


def problems(conn: sa.Connection, bpmn: str) -> list[tuple[str, str]]:
    with pytest.raises(ProcessDefinitionError) as refused:
        publish_process(conn, bpmn, actor_id=None, now=NOW)
    return [(e.pointer, e.message) for e in refused.value.errors]


def test_every_reference_is_checked_and_named_by_its_element(connection: sa.Connection) -> None:
    seed(connection)
    bad = approval(
        task_props=properties(
            form="no_such_form",
            candidateRoles="reviewer, ghost",
            dueIn="P1M",
            assignee="__import__('os')",
        ),
        condition="amount >> 2",
    )
    found = problems(connection, bad)
    pointers = [p for p, _ in found]
    assert pointers.count("#review") == 4 and "#f3" in pointers
    messages = dict(found)
    assert "condition" in messages["#f3"]
    text = " | ".join(m for p, m in found if p == "#review")
    for part in (
        "form 'no_such_form' is not published",
        "role 'ghost' does not exist",
        "dueIn",
        "assignee",
    ):
        assert part in text, (part, text)
    assert (
        connection.execute(sa.select(sa.func.count()).select_from(process_version_table)).scalar()
        == 0
    )


def test_structural_problems(connection: sa.Connection) -> None:
    seed(connection)
    assert problems(connection, "<not-closed")[0][1].startswith("line 1")
    assert "not a BPMN 2.0 file" in str(
        pytest.raises(ProcessDefinitionError, parse_bpmn, "<x/>").value
    )
    dangling = approval().replace('targetRef="approved"', 'targetRef="nowhere"')
    assert problems(connection, dangling)[0][0] == "#notify"  # the flow leaves it for nowhere
    scripted = approval().replace(
        '<bpmn:endEvent id="rejected">',
        '<bpmn:scriptTask id="calc"><bpmn:script>x = 1</bpmn:script></bpmn:scriptTask>'
        '<bpmn:endEvent id="rejected">',
    )
    assert ("#calc", problems(connection, scripted)[0][1]) == (
        "#calc",
        "script tasks are turned off: compute values with expressions in gateway conditions "
        "and task properties instead",
    )
    unassigned = approval(task_props="")
    assert problems(connection, unassigned) == [
        ("#review", "a user task needs an assignee, candidates or a lane")
    ]


def test_publishing_the_same_file_twice_makes_one_version(connection: sa.Connection) -> None:
    seed(connection)
    first = publish_process(connection, approval(), actor_id=None, now=NOW)
    again = publish_process(connection, approval(), actor_id=None, now=NOW)
    assert (first.version, first.changed, again.version, again.changed) == (1, True, 1, False)


CAMUNDA = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI"
    xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"
    xmlns:di="http://www.omg.org/spec/DD/20100524/DI"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
    xmlns:modeler="http://camunda.org/schema/modeler/1.0"
    id="Definitions_0x1y2z3" targetNamespace="http://bpmn.io/schema/bpmn"
    exporter="Camunda Modeler" exporterVersion="5.31.0"
    modeler:executionPlatform="Camunda Platform" modeler:executionPlatformVersion="7.22.0">
  <bpmn:process id="Process_credit_check" name="授信核查" isExecutable="true" camunda:historyTimeToLive="180">
    <bpmn:startEvent id="StartEvent_1" camunda:initiator="starter">
      <bpmn:outgoing>Flow_1</bpmn:outgoing>
    </bpmn:startEvent>
    <bpmn:userTask id="Activity_check" name="核查" camunda:candidateGroups="reviewer">
      <bpmn:extensionElements>
        <camunda:properties><camunda:property name="dueIn" value="PT4H" /></camunda:properties>
      </bpmn:extensionElements>
      <bpmn:incoming>Flow_1</bpmn:incoming><bpmn:outgoing>Flow_2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:exclusiveGateway id="Gateway_ok" default="Flow_no">
      <bpmn:incoming>Flow_2</bpmn:incoming><bpmn:outgoing>Flow_yes</bpmn:outgoing><bpmn:outgoing>Flow_no</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:userTask id="Activity_sign" name="签批" camunda:assignee="${initiator}">
      <bpmn:incoming>Flow_yes</bpmn:incoming><bpmn:outgoing>Flow_3</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="Event_done"><bpmn:incoming>Flow_3</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="Event_refused"><bpmn:incoming>Flow_no</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="Flow_1" sourceRef="StartEvent_1" targetRef="Activity_check" />
    <bpmn:sequenceFlow id="Flow_2" sourceRef="Activity_check" targetRef="Gateway_ok" />
    <bpmn:sequenceFlow id="Flow_yes" sourceRef="Gateway_ok" targetRef="Activity_sign">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">${outcome == "approve"}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="Flow_no" sourceRef="Gateway_ok" targetRef="Event_refused" />
    <bpmn:sequenceFlow id="Flow_3" sourceRef="Activity_sign" targetRef="Event_done" />
  </bpmn:process>
  <bpmndi:BPMNDiagram id="BPMNDiagram_1">
    <bpmndi:BPMNPlane id="BPMNPlane_1" bpmnElement="Process_credit_check">
      <bpmndi:BPMNShape id="_BPMNShape_StartEvent_2" bpmnElement="StartEvent_1">
        <dc:Bounds x="179" y="99" width="36" height="36" />
      </bpmndi:BPMNShape>
      <bpmndi:BPMNEdge id="Flow_1_di" bpmnElement="Flow_1">
        <di:waypoint x="215" y="117" /><di:waypoint x="270" y="117" />
      </bpmndi:BPMNEdge>
    </bpmndi:BPMNPlane>
  </bpmndi:BPMNDiagram>
</bpmn:definitions>
"""


def test_a_camunda_modeler_file_publishes_and_runs(connection: sa.Connection) -> None:
    ids = seed(connection)
    published = publish_process(connection, CAMUNDA, actor_id=None, now=NOW)
    assert published.key == "Process_credit_check" and published.name == "授信核查"
    assert {(w.pointer, w.message.split(" ")[0]) for w in published.warnings} == {
        ("#Process_credit_check", "camunda:historyTimeToLive"),
        ("#StartEvent_1", "camunda:initiator"),
    }
    p = processes(connection)
    instance = p.start("Process_credit_check", actor=actor(ids["alice"]))
    check = connection.execute(sa.select(work_item_table)).one()
    # PT4H of working time from 09:00: 09:00-12:00, lunch, 13:30-14:30 (06:30 UTC).
    assert check.element_id == "Activity_check" and check.due_at == NOW.replace(hour=6, minute=30)
    p.complete(check.id, actor=actor(ids["rita"], "reviewer"), outcome="approve")
    sign = connection.execute(
        sa.select(work_item_table).where(work_item_table.c.status == "open")
    ).one()
    assert (sign.element_id, sign.assignee_id, sign.instance_id) == (
        "Activity_sign",
        ids["alice"],
        instance,
    )


def test_camunda_engine_extensions_are_refused_by_element(connection: sa.Connection) -> None:
    seed(connection)
    delegate = CAMUNDA.replace(
        'camunda:assignee="${initiator}"',
        'camunda:assignee="${initiator}" camunda:class="com.bank.SignDelegate"',
    ).replace(
        "<camunda:properties>",
        '<camunda:taskListener event="create" class="com.bank.Notify" /><camunda:properties>',
    )
    found = problems(connection, delegate)
    assert (
        "#Activity_sign",
        "camunda:class='com.bank.SignDelegate' is not supported by "
        "Formflow; remove it (service calls are Formflow connectors, assignment uses "
        "Formflow properties)",
    ) in found
    assert any(p == "#Activity_check" and "camunda:taskListener" in m for p, m in found)
