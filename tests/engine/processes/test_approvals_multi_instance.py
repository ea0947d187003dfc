"""Countersign, any-one-approves, vote ratio and sequential approval: BPMN multi-instance
user tasks through the engine and the work-item projection."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from process_support import (
    actor,
    add_users,
    approvals,
    multi_instance,
    open_item,
    open_items,
    publish,
    seed,
)

from engine.processes.approvals import Approvals
from engine.processes.tables import instance_table, work_item_table

APPROVERS = ["rita", "bob", "carol", "dave", "erin"]


@pytest.fixture
def ids(connection: sa.Connection) -> dict[str, int]:
    return {**seed(connection), **add_users(connection, "carol", "dave", "erin")}


def run(
    conn: sa.Connection, ids: dict[str, int], bpmn: str, approvers: list[str]
) -> tuple[Approvals, int]:
    publish(conn, bpmn)
    p = approvals(conn)
    instance = p.start("vote", actor=actor(ids["alice"]), data={"approvers": approvers})
    return p, instance


def vote(
    p: Approvals, conn: sa.Connection, ids: dict[str, int], instance: int, who: str, outcome: str
) -> None:
    item = open_item(conn, instance, "sign", ids[who])
    p.complete(item, actor=actor(ids[who]), outcome=outcome)


def closed(conn: sa.Connection, ids: dict[str, int], instance: int) -> dict[str, str]:
    """Each approver's sign item: its outcome, or its status when it has none."""
    w = work_item_table
    names = {v: k for k, v in ids.items()}
    rows = conn.execute(
        sa.select(w.c.assignee_id, w.c.status, w.c.outcome).where(
            w.c.instance_id == instance, w.c.element_id == "sign"
        )
    )
    return {names[r.assignee_id]: r.outcome or r.status for r in rows}


def test_each_instance_has_its_own_assignee(connection: sa.Connection, ids: dict[str, int]) -> None:
    _, instance = run(connection, ids, multi_instance(), ["rita", "bob", "carol"])
    assert open_items(connection, instance) == [
        ("sign", ids["rita"]),
        ("sign", ids["bob"]),
        ("sign", ids["carol"]),
    ]


def test_countersign_everyone_must_approve_and_one_veto_ends_it(
    connection: sa.Connection, ids: dict[str, int]
) -> None:
    bpmn = multi_instance(condition='outcome == "reject"')
    p, agreed = run(connection, ids, bpmn, ["rita", "bob", "carol"])
    for who in ("rita", "bob"):
        vote(p, connection, ids, agreed, who, "approve")
        assert ("sign", ids["carol"]) in open_items(connection, agreed)
    vote(p, connection, ids, agreed, "carol", "approve")
    assert open_items(connection, agreed) == [("notify", ids["alice"])]

    _, vetoed = run(connection, ids, bpmn, ["rita", "bob", "carol"])
    vote(p, connection, ids, vetoed, "rita", "approve")
    vote(p, connection, ids, vetoed, "bob", "reject")
    assert open_items(connection, vetoed) == []  # carol is no longer asked
    assert closed(connection, ids, vetoed) == {
        "rita": "approve",
        "bob": "reject",
        "carol": "cancelled",
    }


def test_any_one_approves(connection: sa.Connection, ids: dict[str, int]) -> None:
    bpmn = multi_instance(condition='outcome == "approve"')
    p, instance = run(connection, ids, bpmn, ["rita", "bob", "carol"])
    vote(p, connection, ids, instance, "rita", "reject")
    vote(p, connection, ids, instance, "carol", "approve")
    assert open_items(connection, instance) == [("notify", ids["alice"])]
    assert closed(connection, ids, instance)["bob"] == "cancelled"
    # Nobody approves: the last rejection decides.
    _, refused = run(connection, ids, bpmn, ["rita", "bob"])
    vote(p, connection, ids, refused, "rita", "reject")
    vote(p, connection, ids, refused, "bob", "reject")
    assert open_items(connection, refused) == []
    status = connection.execute(
        sa.select(instance_table.c.status).where(instance_table.c.id == refused)
    ).scalar_one()
    assert status == "completed"


VOTE = "nrOfApprovals / nrOfInstances >= 0.6 or nrOfRejections / nrOfInstances > 0.4"


def test_a_vote_ratio_decides_as_soon_as_it_is_reached(
    connection: sa.Connection, ids: dict[str, int]
) -> None:
    p, carried = run(connection, ids, multi_instance(condition=VOTE), APPROVERS)
    for who, outcome in (("rita", "approve"), ("bob", "reject"), ("carol", "approve")):
        vote(p, connection, ids, carried, who, outcome)
        assert len(open_items(connection, carried)) == 5 - APPROVERS.index(who) - 1
    vote(p, connection, ids, carried, "dave", "approve")  # 3 of 5 = 60%
    assert open_items(connection, carried) == [("notify", ids["alice"])]
    assert closed(connection, ids, carried)["erin"] == "cancelled"

    _, lost = run(connection, ids, multi_instance(condition=VOTE), APPROVERS)
    for who, outcome in (("rita", "reject"), ("bob", "approve"), ("carol", "reject")):
        vote(p, connection, ids, lost, who, outcome)
    vote(p, connection, ids, lost, "erin", "reject")  # 3 of 5 against: 60% > 40%
    assert open_items(connection, lost) == []


def test_camunda_counters_also_work(connection: sa.Connection, ids: dict[str, int]) -> None:
    bpmn = multi_instance(condition="nrOfCompletedInstances / nrOfInstances >= 0.5")
    p, instance = run(connection, ids, bpmn, ["rita", "bob", "carol", "dave"])
    vote(p, connection, ids, instance, "dave", "approve")
    assert len(open_items(connection, instance)) == 3
    vote(p, connection, ids, instance, "rita", "approve")
    assert open_items(connection, instance) == [("notify", ids["alice"])]


def test_sequential_approval_one_after_another(
    connection: sa.Connection, ids: dict[str, int]
) -> None:
    bpmn = multi_instance(sequential=True, condition='outcome == "reject"')
    p, instance = run(connection, ids, bpmn, ["rita", "bob", "carol"])
    for who in ("rita", "bob", "carol"):
        assert open_items(connection, instance) == [("sign", ids[who])]
        vote(p, connection, ids, instance, who, "approve")
    assert open_items(connection, instance) == [("notify", ids["alice"])]
    # A rejection stops the chain.
    _, stopped = run(connection, ids, bpmn, ["rita", "bob", "carol"])
    vote(p, connection, ids, stopped, "rita", "reject")
    assert open_items(connection, stopped) == []


def test_approval_operations_work_on_an_instance_of_a_countersign(
    connection: sa.Connection, ids: dict[str, int]
) -> None:
    p, instance = run(connection, ids, multi_instance(), ["rita", "bob"])
    rita_item = open_item(connection, instance, "sign", ids["rita"])
    p.transfer(rita_item, actor=actor(ids["rita"]), to="carol")
    p.add_signer(rita_item, actor=actor(ids["carol"]), user="dave", position="after")
    vote(p, connection, ids, instance, "bob", "approve")
    p.complete(rita_item, actor=actor(ids["carol"]), outcome="approve")
    assert open_items(connection, instance) == [("sign", ids["dave"])]
    vote(p, connection, ids, instance, "dave", "approve")
    assert open_items(connection, instance) == [("notify", ids["alice"])]
