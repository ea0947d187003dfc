"""BPMN fixtures and helpers of the process tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from engine.processes.definitions import SpecCache, publish_process
from engine.processes.instances import Actor, Context, Processes
from engine.system import role_table, user_table

NOW = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)  # Monday 09:00 in Shanghai

HEADER = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" '
    'id="defs" targetNamespace="http://formflow.example/bpmn">\n'
)


def properties(**props: str) -> str:
    lines = "".join(f'<spiffworkflow:property name="{k}" value="{v}" />' for k, v in props.items())
    return (
        "<bpmn:extensionElements><spiffworkflow:properties>"
        f"{lines}</spiffworkflow:properties></bpmn:extensionElements>"
    )


def approval(
    key: str = "review_flow",
    *,
    task_props: str | None = None,
    condition: str = 'outcome == "approve"',
) -> str:
    """start -> review (user task) -> gateway -> approved | rejected."""
    props = (
        task_props
        if task_props is not None
        else properties(candidateRoles="reviewer", dueIn="PT2H")
    )
    return (
        HEADER
        + f"""
  <bpmn:process id="{key}" name="审批" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="review" name="审核">{props}
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:exclusiveGateway id="decide" default="f4">
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing><bpmn:outgoing>f4</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:userTask id="notify" name="通知">{properties(assignee="initiator")}
      <bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>f5</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="approved"><bpmn:incoming>f5</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="rejected"><bpmn:incoming>f4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="review" />
    <bpmn:sequenceFlow id="f2" sourceRef="review" targetRef="decide" />
    <bpmn:sequenceFlow id="f3" sourceRef="decide" targetRef="notify">
      <bpmn:conditionExpression>{condition}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f4" sourceRef="decide" targetRef="rejected" />
    <bpmn:sequenceFlow id="f5" sourceRef="notify" targetRef="approved" />
  </bpmn:process>
</bpmn:definitions>
"""
    )


def seed(conn: sa.Connection) -> dict[str, int]:
    """Users alice (initiator), rita (reviewer role), bob (no role); the reviewer role."""
    ids = {}
    for name in ("alice", "rita", "bob"):
        ids[name] = int(
            conn.execute(
                sa.insert(user_table)
                .values(username=name, display_name=name, created_at=NOW)
                .returning(user_table.c.id)
            ).scalar_one()
        )
    conn.execute(sa.insert(role_table).values(key="reviewer", name="审核人", created_at=NOW))
    return ids


def processes(conn: sa.Connection, specs: SpecCache | None = None, clock: Any = None) -> Processes:
    return Processes(Context(conn, specs or SpecCache(), clock or (lambda: NOW)))


def publish(conn: sa.Connection, bpmn: str) -> int:
    return publish_process(conn, bpmn, actor_id=None, now=NOW).version


def actor(user_id: int, *roles: str) -> Actor:
    return Actor(user_id, roles=frozenset(roles))
