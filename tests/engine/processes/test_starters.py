"""Candidate starters: who may start a process, checked at publish and at every start."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from process_support import NOW, actor, approval, processes, publish, seed

from engine.errors import PermissionDeniedError
from engine.processes.bpmn import parse_bpmn
from engine.processes.definitions import publish_process
from engine.processes.errors import ProcessDefinitionError
from engine.processes.instances import Actor
from engine.processes.tables import instance_table

CAMUNDA = 'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" '


def with_starters(*, roles: str = "", users: str = "") -> str:
    props = "".join(
        f'<spiffworkflow:property name="{name}" value="{value}" />'
        for name, value in (("candidateStarterRoles", roles), ("candidateStarterUsers", users))
        if value
    )
    return approval().replace(
        'isExecutable="true">',
        'isExecutable="true"><bpmn:extensionElements><spiffworkflow:properties>'
        f"{props}</spiffworkflow:properties></bpmn:extensionElements>",
        1,
    )


def instances(conn: sa.Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(instance_table)).scalar_one())


def test_only_starters_start_it(connection: sa.Connection) -> None:
    ids = seed(connection)
    publish(connection, with_starters(roles="reviewer", users="bob"))
    p = processes(connection)
    with pytest.raises(PermissionDeniedError, match="started by role reviewer, user bob"):
        p.start("review_flow", actor=actor(ids["alice"]))
    assert instances(connection) == 0
    p.start("review_flow", actor=actor(ids["rita"], "reviewer"))
    p.start("review_flow", actor=actor(ids["bob"]))  # named as a user
    p.start("review_flow", actor=Actor(ids["alice"], superuser=True))  # an administrator
    assert instances(connection) == 3


def test_a_process_naming_no_starters_is_anyones(connection: sa.Connection) -> None:
    ids = seed(connection)
    publish(connection, approval())
    processes(connection).start("review_flow", actor=actor(ids["alice"]))
    assert instances(connection) == 1


def test_publish_refuses_starters_that_do_not_exist(connection: sa.Connection) -> None:
    seed(connection)
    with pytest.raises(ProcessDefinitionError) as caught:
        publish_process(
            connection,
            with_starters(roles="reviewer, ghost", users="nobody"),
            actor_id=None,
            now=NOW,
        )
    assert [(e.pointer, e.message) for e in caught.value.errors] == [
        ("#review_flow", "candidateStarterRoles: role 'ghost' does not exist"),
        ("#review_flow", "candidateStarterUsers: there is no user 'nobody'"),
    ]
    unknown = with_starters(roles="reviewer").replace("candidateStarterRoles", "starters")
    with pytest.raises(ProcessDefinitionError, match="unknown process property 'starters'"):
        parse_bpmn(unknown)


def test_camunda_modeler_candidate_starter_fields(connection: sa.Connection) -> None:
    camunda = approval().replace("<bpmn:definitions ", f"<bpmn:definitions {CAMUNDA}", 1)
    on_process = camunda.replace(
        'isExecutable="true">',
        'isExecutable="true" camunda:candidateStarterGroups="reviewer" '
        'camunda:candidateStarterUsers="bob">',
        1,
    )
    parsed = parse_bpmn(on_process)
    assert (parsed.starter_roles, parsed.starter_users) == (("reviewer",), ("bob",))
    on_task = camunda.replace(
        '<bpmn:userTask id="review"',
        '<bpmn:userTask id="review" camunda:candidateStarterGroups="reviewer"',
        1,
    )
    with pytest.raises(ProcessDefinitionError) as caught:
        parse_bpmn(on_task)
    assert [(e.pointer, e.message) for e in caught.value.errors] == [
        ("#review", "camunda:candidateStarterGroups belongs on the process")
    ]
