"""BPMN fixtures and helpers of the process tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from engine.processes.approvals import Approvals
from engine.processes.definitions import SpecCache, publish_process
from engine.processes.instances import Actor, Context, Processes
from engine.processes.tables import work_item_table
from engine.system import role_table, user_table
from permissions import org

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


# -- approval operations (tests/engine/processes/test_approvals.py, test_web_approvals.py) --


def chain(key: str = "chain", *, review: str = "", final: str = "") -> str:
    """start -> draft (initiator) -> review (reviewer role) -> final (bob) -> end.

    ``review`` and ``final`` add properties to those tasks (makerChecker, ...).
    """

    def task(eid: str, name: str, props: str, incoming: str, outgoing: str) -> str:
        return (
            f'<bpmn:userTask id="{eid}" name="{name}">{props}'
            f"<bpmn:incoming>{incoming}</bpmn:incoming><bpmn:outgoing>{outgoing}</bpmn:outgoing>"
            "</bpmn:userTask>"
        )

    extra = {"review": review, "final": final}

    def props(eid: str, **base: str) -> str:
        lines = "".join(
            f'<spiffworkflow:property name="{k}" value="{v}" />' for k, v in base.items()
        )
        return (
            "<bpmn:extensionElements><spiffworkflow:properties>"
            f"{lines}{extra.get(eid, '')}</spiffworkflow:properties></bpmn:extensionElements>"
        )

    return (
        HEADER
        + f"""
  <bpmn:process id="{key}" name="三级审批" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>c1</bpmn:outgoing></bpmn:startEvent>
    {task("draft", "起草", props("draft", assignee="initiator"), "c1", "c2")}
    {task("review", "审核", props("review", candidateRoles="reviewer"), "c2", "c3")}
    {task("final", "终审", props("final", assignee="'bob'"), "c3", "c4")}
    <bpmn:endEvent id="end"><bpmn:incoming>c4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="c1" sourceRef="start" targetRef="draft" />
    <bpmn:sequenceFlow id="c2" sourceRef="draft" targetRef="review" />
    <bpmn:sequenceFlow id="c3" sourceRef="review" targetRef="final" />
    <bpmn:sequenceFlow id="c4" sourceRef="final" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""
    )


def property_line(name: str, value: str) -> str:
    return f'<spiffworkflow:property name="{name}" value="{value}" />'


def parallel(key: str = "parallel") -> str:
    """start -> prepare (initiator) -> split -> a (rita) | b (bob) -> join -> end."""
    return (
        HEADER
        + f"""
  <bpmn:process id="{key}" name="并行" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>p1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="prepare" name="准备">{properties(assignee="initiator")}
      <bpmn:incoming>p1</bpmn:incoming><bpmn:outgoing>p2</bpmn:outgoing></bpmn:userTask>
    <bpmn:parallelGateway id="split"><bpmn:incoming>p2</bpmn:incoming>
      <bpmn:outgoing>p3</bpmn:outgoing><bpmn:outgoing>p4</bpmn:outgoing></bpmn:parallelGateway>
    <bpmn:userTask id="a" name="甲">{properties(assignee="'rita'")}
      <bpmn:incoming>p3</bpmn:incoming><bpmn:outgoing>p5</bpmn:outgoing></bpmn:userTask>
    <bpmn:userTask id="b" name="乙">{properties(assignee="'bob'")}
      <bpmn:incoming>p4</bpmn:incoming><bpmn:outgoing>p6</bpmn:outgoing></bpmn:userTask>
    <bpmn:parallelGateway id="join"><bpmn:incoming>p5</bpmn:incoming>
      <bpmn:incoming>p6</bpmn:incoming><bpmn:outgoing>p7</bpmn:outgoing></bpmn:parallelGateway>
    <bpmn:endEvent id="end"><bpmn:incoming>p7</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="p1" sourceRef="start" targetRef="prepare" />
    <bpmn:sequenceFlow id="p2" sourceRef="prepare" targetRef="split" />
    <bpmn:sequenceFlow id="p3" sourceRef="split" targetRef="a" />
    <bpmn:sequenceFlow id="p4" sourceRef="split" targetRef="b" />
    <bpmn:sequenceFlow id="p5" sourceRef="a" targetRef="join" />
    <bpmn:sequenceFlow id="p6" sourceRef="b" targetRef="join" />
    <bpmn:sequenceFlow id="p7" sourceRef="join" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""
    )


def multi_instance(
    key: str = "vote", *, condition: str | None = None, sequential: bool = False
) -> str:
    """start -> sign (one instance per username in ``approvers``) -> approved? -> notify | end.

    Each instance is assigned to its element variable ``approver``. The
    gateway reads ``outcome``: the data of the instances is merged in the
    order they complete, so it holds the deciding instance's outcome.
    """
    until = f"<bpmn:completionCondition>{condition}</bpmn:completionCondition>"
    return (
        HEADER
        + f"""
  <bpmn:process id="{key}" name="会签" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>m1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:userTask id="sign" name="会签">{properties(assignee="approver")}
      <bpmn:incoming>m1</bpmn:incoming><bpmn:outgoing>m2</bpmn:outgoing>
      <bpmn:multiInstanceLoopCharacteristics isSequential="{str(sequential).lower()}">
        <bpmn:loopDataInputRef>approvers</bpmn:loopDataInputRef>
        <bpmn:inputDataItem id="approver" />
        {until if condition else ""}
      </bpmn:multiInstanceLoopCharacteristics>
    </bpmn:userTask>
    <bpmn:exclusiveGateway id="decide" default="m4">
      <bpmn:incoming>m2</bpmn:incoming><bpmn:outgoing>m3</bpmn:outgoing>
      <bpmn:outgoing>m4</bpmn:outgoing></bpmn:exclusiveGateway>
    <bpmn:userTask id="notify" name="通知">{properties(assignee="initiator")}
      <bpmn:incoming>m3</bpmn:incoming><bpmn:outgoing>m5</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="approved"><bpmn:incoming>m5</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="rejected"><bpmn:incoming>m4</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="m1" sourceRef="start" targetRef="sign" />
    <bpmn:sequenceFlow id="m2" sourceRef="sign" targetRef="decide" />
    <bpmn:sequenceFlow id="m3" sourceRef="decide" targetRef="notify">
      <bpmn:conditionExpression>outcome == "approve"</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="m4" sourceRef="decide" targetRef="rejected" />
    <bpmn:sequenceFlow id="m5" sourceRef="notify" targetRef="approved" />
  </bpmn:process>
</bpmn:definitions>
"""
    )


def add_users(conn: sa.Connection, *names: str) -> dict[str, int]:
    return {
        name: int(
            conn.execute(
                sa.insert(user_table)
                .values(username=name, display_name=name, created_at=NOW)
                .returning(user_table.c.id)
            ).scalar_one()
        )
        for name in names
    }


def approvals(conn: sa.Connection, specs: SpecCache | None = None) -> Approvals:
    return Approvals(Context(conn, specs or SpecCache(), lambda: NOW))


def open_items(conn: sa.Connection, instance_id: int) -> list[tuple[str, int | None]]:
    """(element, assignee) of the instance's open work items, in order."""
    w = work_item_table
    rows = conn.execute(
        sa.select(w.c.element_id, w.c.assignee_id)
        .where(w.c.instance_id == instance_id, w.c.status == "open")
        .order_by(w.c.id)
    )
    return [(r.element_id, r.assignee_id) for r in rows]


def open_item(conn: sa.Connection, instance_id: int, element: str, assignee: int | None) -> int:
    w = work_item_table
    return int(
        conn.execute(
            sa.select(w.c.id).where(
                w.c.instance_id == instance_id,
                w.c.element_id == element,
                w.c.status == "open",
                w.c.assignee_id.is_(None) if assignee is None else w.c.assignee_id == assignee,
            )
        ).scalar_one()
    )


def organisation(
    conn: sa.Connection,
    departments: list[tuple[str, str | None]],
    members: list[tuple[str, str]],
    now: dt.datetime = NOW,
) -> dict[str, int]:
    """Departments ``(code, parent)``, then users ``(name, primary department)``; their ids."""
    for code, parent in departments:
        org.create_department(
            conn, code=code, name=code, parent_code=parent, actor_id=None, now=now
        )
    users = {}
    for name, dept in members:
        users[name] = int(
            conn.execute(
                sa.insert(user_table)
                .values(username=name, display_name=name, created_at=now)
                .returning(user_table.c.id)
            ).scalar_one()
        )
        org.add_member(
            conn, user_id=users[name], dept_code=dept, primary=True, actor_id=None, now=now
        )
    return users
