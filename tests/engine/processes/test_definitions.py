"""Publishing BPMN: every problem named by its element, versions, Camunda Modeler files."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from process_support import NOW, actor, approval, processes, properties, seed

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
    with pytest.raises(ProcessDefinitionError, match=r"not a BPMN 2\.0 file"):
        parse_bpmn("<x/>")
    dangling = approval().replace('targetRef="approved"', 'targetRef="nowhere"')
    assert problems(connection, dangling)[0][0] == "#notify"  # the flow leaves it for nowhere
    scripted = approval().replace(
        '<bpmn:endEvent id="rejected">',
        '<bpmn:scriptTask id="calc"><bpmn:script>x = 1</bpmn:script></bpmn:scriptTask>'
        '<bpmn:endEvent id="rejected">',
    )
    assert problems(connection, scripted)[0] == (
        "#calc",
        "scripts are turned off on this server (FORMFLOW_SCRIPT_TASKS): compute values with "
        "expressions in gateway conditions and task properties instead",
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


# Written with Camunda Modeler's conventions: its namespaces and exporter attributes,
# camunda:* attributes on tasks, JUEL ${...} conditions, a diagram section.
CAMUNDA = (Path(__file__).parent / "fixtures" / "camunda_credit_check.bpmn").read_text("utf-8")


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


def test_maker_checker_names_true_initiator_or_earlier_steps(connection: sa.Connection) -> None:
    seed(connection)
    good = approval(task_props=properties(candidateRoles="reviewer", makerChecker="initiator"))
    assert publish_process(connection, good, actor_id=None, now=NOW).version == 1
    bad = approval(task_props=properties(candidateRoles="reviewer", makerChecker="no_such_step"))
    assert [p for p, _ in problems(connection, bad)] == ["#review"]
