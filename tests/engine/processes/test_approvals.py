"""Approval operations: transfer, delegate, add signer, return, withdraw, CC, maker ≠ checker."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from process_support import (
    actor,
    add_users,
    approval,
    approvals,
    chain,
    open_item,
    open_items,
    parallel,
    property_line,
    publish,
    seed,
)

from engine.errors import NotFoundError, PermissionDeniedError, RecordValidationError
from engine.processes.approvals import Approvals
from engine.processes.cc import copies, may_see_instance
from engine.processes.errors import ProcessStateError
from engine.processes.instances import Actor
from engine.processes.tables import history_table, instance_table, work_item_table


@pytest.fixture
def ids(connection: sa.Connection) -> dict[str, int]:
    return {**seed(connection), **add_users(connection, "carol", "dave")}


def history(conn: sa.Connection, instance_id: int) -> list[tuple[Any, ...]]:
    h = history_table
    rows = conn.execute(
        sa.select(h.c.action, h.c.actor_id, h.c.element_id, h.c.comment, h.c.data)
        .where(h.c.instance_id == instance_id)
        .order_by(h.c.id)
    )
    return [tuple(r) for r in rows]


def status(conn: sa.Connection, item_id: int) -> tuple[str, str | None, int | None]:
    w = work_item_table
    row = conn.execute(
        sa.select(w.c.status, w.c.outcome, w.c.assignee_id).where(w.c.id == item_id)
    ).one()
    return (row.status, row.outcome, row.assignee_id)


def started_review(conn: sa.Connection, ids: dict[str, int]) -> tuple[Approvals, int, int, Actor]:
    """review_flow started by alice, its review task claimed by rita."""
    publish(conn, approval())
    p = approvals(conn)
    instance = p.start("review_flow", actor=actor(ids["alice"]))
    item = open_item(conn, instance, "review", None)
    rita = actor(ids["rita"], "reviewer")
    p.claim(item, actor=rita)
    return p, instance, item, rita


def test_transfer_hands_the_task_over(connection: sa.Connection, ids: dict[str, int]) -> None:
    p, instance, item, rita = started_review(connection, ids)
    bob, carol = actor(ids["bob"]), actor(ids["carol"])
    with pytest.raises(PermissionDeniedError, match="Only rita, who has this task"):
        p.transfer(item, actor=carol, to="bob")
    with pytest.raises(RecordValidationError) as unknown:
        p.transfer(item, actor=rita, to="nobody")
    assert unknown.value.errors[0].pointer == "/to"
    with pytest.raises(ProcessStateError, match="already with rita"):
        p.transfer(item, actor=rita, to="rita")
    p.transfer(item, actor=rita, to="bob", comment="出差，转交")
    assert status(connection, item) == ("open", None, ids["bob"])
    with pytest.raises(PermissionDeniedError):
        p.complete(item, actor=rita, outcome="approve")
    p.complete(item, actor=bob, outcome="approve")
    assert open_items(connection, instance) == [("notify", ids["alice"])]
    assert history(connection, instance)[2] == (
        "transfer",
        ids["rita"],
        "review",
        "出差，转交",
        {"from": ids["rita"], "to": ids["bob"]},
    )
    with pytest.raises(ProcessStateError, match="already done"):
        p.transfer(item, actor=bob, to="carol")


def test_a_group_task_is_claimed_before_it_is_transferred(
    connection: sa.Connection, ids: dict[str, int]
) -> None:
    publish(connection, approval())
    p = approvals(connection)
    instance = p.start("review_flow", actor=actor(ids["alice"]))
    item = open_item(connection, instance, "review", None)
    with pytest.raises(ProcessStateError, match="Claim the task"):
        p.transfer(item, actor=actor(ids["rita"], "reviewer"), to="bob")
    with pytest.raises(PermissionDeniedError):
        p.transfer(item, actor=actor(ids["carol"]), to="bob")
    admin = Actor(ids["dave"], superuser=True)
    p.transfer(item, actor=admin, to="carol")
    assert status(connection, item) == ("open", None, ids["carol"])
    with pytest.raises(NotFoundError):
        p.transfer(10_000, actor=admin, to="carol")


def test_delegate_then_resolve_then_the_owner_decides(
    connection: sa.Connection, ids: dict[str, int]
) -> None:
    p, instance, item, rita = started_review(connection, ids)
    bob = actor(ids["bob"])
    with pytest.raises(ProcessStateError, match="not delegated"):
        p.resolve(item, actor=rita)
    p.delegate(item, actor=rita, to="bob", comment="请先核对材料")
    assert status(connection, item) == ("open", None, ids["bob"])
    for refused in (
        lambda: p.complete(item, actor=bob, outcome="approve"),
        lambda: p.transfer(item, actor=bob, to="carol"),
        lambda: p.add_signer(item, actor=bob, user="carol", position="before"),
        lambda: p.return_to(item, actor=bob, to_element="review", comment="x"),
        lambda: p.unclaim(item, actor=bob),
    ):
        with pytest.raises(ProcessStateError, match="delegated to bob: they resolve it"):
            refused()
    with pytest.raises(PermissionDeniedError):
        p.complete(item, actor=rita, outcome="approve")  # it is with bob now
    with pytest.raises(PermissionDeniedError, match="Only bob"):
        p.resolve(item, actor=rita)
    p.resolve(item, actor=bob, data={"checked": True}, comment="材料齐全")
    assert status(connection, item) == ("open", None, ids["rita"])
    p.complete(item, actor=rita, outcome="approve")
    actions = [(h[0], h[1], h[3], h[4]) for h in history(connection, instance)]
    assert actions[2:] == [
        ("delegate", ids["rita"], "请先核对材料", {"owner": ids["rita"], "to": ids["bob"]}),
        ("resolve", ids["bob"], "材料齐全", {"checked": True}),
        ("approve", ids["rita"], None, None),
    ]
    # The owner is whoever had it: a second delegation after a resolution works too.
    assert open_items(connection, instance) == [("notify", ids["alice"])]


def test_a_signer_before_signs_first_then_the_assignee_decides(
    connection: sa.Connection, ids: dict[str, int]
) -> None:
    p, instance, item, rita = started_review(connection, ids)
    carol = actor(ids["carol"])
    with pytest.raises(RecordValidationError):
        p.add_signer(item, actor=rita, user="carol", position="beside")
    with pytest.raises(PermissionDeniedError):
        p.add_signer(item, actor=carol, user="dave", position="before")
    with pytest.raises(ProcessStateError, match="rita already has this task"):
        p.add_signer(item, actor=rita, user="rita", position="before")
    p.add_signer(item, actor=rita, user="carol", position="before", comment="请合规把关")
    with pytest.raises(ProcessStateError, match="carol is already a signer"):
        p.add_signer(item, actor=rita, user="carol", position="after")
    signer = open_item(connection, instance, "review", ids["carol"])
    assert open_items(connection, instance) == [("review", ids["rita"]), ("review", ids["carol"])]
    with pytest.raises(ProcessStateError, match="Waiting for carol to sign first"):
        p.complete(item, actor=rita, outcome="approve")
    with pytest.raises(ProcessStateError, match="You were added as a signer"):
        p.add_signer(signer, actor=carol, user="dave", position="before")
    with pytest.raises(ProcessStateError, match="You were added as a signer"):
        p.return_to(signer, actor=carol, to_element="review", comment="x")
    p.complete(signer, actor=carol, outcome="reject", comment="有合规风险")
    assert status(connection, signer) == ("done", "reject", ids["carol"])
    # The signer's opinion does not decide: the process waits for rita.
    assert open_items(connection, instance) == [("review", ids["rita"])]
    p.complete(item, actor=rita, outcome="approve", comment="已整改")
    assert open_items(connection, instance) == [("notify", ids["alice"])]
    assert [(h[0], h[1]) for h in history(connection, instance)][2:] == [
        ("add_signer", ids["rita"]),
        ("reject", ids["carol"]),
        ("approve", ids["rita"]),
    ]
    assert history(connection, instance)[2][4] == {"user": ids["carol"], "position": "before"}


def test_signers_after_approve_in_turn_before_the_process_moves_on(
    connection: sa.Connection, ids: dict[str, int]
) -> None:
    p, instance, item, rita = started_review(connection, ids)
    carol, dave = actor(ids["carol"]), actor(ids["dave"])
    p.add_signer(item, actor=rita, user="carol", position="after")
    p.add_signer(item, actor=rita, user="dave", position="after")
    assert open_items(connection, instance) == [("review", ids["rita"])]
    p.complete(item, actor=rita, outcome="approve", data={"limit": 100})
    assert status(connection, item) == ("done", "approve", ids["rita"])
    assert open_items(connection, instance) == [("review", ids["carol"])]
    p.complete(
        open_item(connection, instance, "review", ids["carol"]), actor=carol, outcome="approve"
    )
    assert open_items(connection, instance) == [("review", ids["dave"])]
    with pytest.raises(PermissionDeniedError):
        p.complete(open_item(connection, instance, "review", ids["dave"]), actor=carol)
    p.complete(
        open_item(connection, instance, "review", ids["dave"]), actor=dave, outcome="approve"
    )
    assert open_items(connection, instance) == [("notify", ids["alice"])]
    row = connection.execute(sa.select(instance_table.c.row_version)).scalar_one()
    assert row == 4  # rita's and carol's data recorded on the task, then dave's ran it


def test_a_signer_after_who_rejects_rejects_the_task(
    connection: sa.Connection, ids: dict[str, int]
) -> None:
    p, instance, item, rita = started_review(connection, ids)
    p.add_signer(item, actor=rita, user="carol", position="after")
    p.add_signer(item, actor=rita, user="dave", position="after")
    p.complete(item, actor=rita, outcome="approve")
    signer = open_item(connection, instance, "review", ids["carol"])
    p.complete(signer, actor=actor(ids["carol"]), outcome="reject", comment="不同意")
    assert open_items(connection, instance) == []  # dave is not asked; the rejection ends it
    assert connection.execute(sa.select(instance_table.c.status)).scalar_one() == "completed"
    # An assignee who rejects does not ask the signers after them either.
    _, second, item2, _ = started_review(connection, ids)
    p.add_signer(item2, actor=rita, user="carol", position="after")
    p.complete(item2, actor=rita, outcome="reject")
    assert open_items(connection, second) == []


def test_return_to_an_earlier_step_reopens_it_for_who_did_it(
    connection: sa.Connection, ids: dict[str, int]
) -> None:
    publish(connection, chain())
    p = approvals(connection)
    alice, rita, bob = actor(ids["alice"]), actor(ids["rita"], "reviewer"), actor(ids["bob"])
    instance = p.start("chain", actor=alice)
    draft = open_item(connection, instance, "draft", ids["alice"])
    p.complete(draft, actor=alice, data={"amount": 10})
    review = open_item(connection, instance, "review", None)
    with pytest.raises(ProcessStateError, match="Claim the task before you return it"):
        p.return_to(review, actor=rita, to_element="draft", comment="x")
    p.claim(review, actor=rita)
    with pytest.raises(ProcessStateError, match=r"'final' is not an earlier step.*: draft"):
        p.return_to(review, actor=rita, to_element="final", comment="x")
    p.complete(review, actor=rita, outcome="approve")
    final = open_item(connection, instance, "final", ids["bob"])
    with pytest.raises(RecordValidationError, match="Say why"):
        p.return_to(final, actor=bob, to_element="draft", comment=" ")
    with pytest.raises(PermissionDeniedError):
        p.return_to(final, actor=rita, to_element="draft", comment="x")
    # Back to review: it opens again for rita, who did it, not for the group.
    p.return_to(final, actor=bob, to_element="review", comment="额度依据不足")
    assert status(connection, final) == ("returned", "return", ids["bob"])
    assert open_items(connection, instance) == [("review", ids["rita"])]
    review2 = open_item(connection, instance, "review", ids["rita"])
    # And from there back to the draft, with the reason kept in the history.
    p.return_to(review2, actor=rita, to_element="draft", comment="请补充收入证明")
    assert open_items(connection, instance) == [("draft", ids["alice"])]
    p.complete(open_item(connection, instance, "draft", ids["alice"]), actor=alice)
    p.claim(open_item(connection, instance, "review", None), actor=rita)
    p.complete(open_item(connection, instance, "review", ids["rita"]), actor=rita)
    p.complete(open_item(connection, instance, "final", ids["bob"]), actor=bob)
    assert connection.execute(sa.select(instance_table.c.status)).scalar_one() == "completed"
    steps = [(h[0], h[2], h[3]) for h in history(connection, instance)]
    assert steps[:7] == [
        ("start", None, None),
        ("submit", "draft", None),
        ("claim", "review", None),
        ("approve", "review", None),
        ("return", "final", "额度依据不足"),
        ("return", "review", "请补充收入证明"),
        ("submit", "draft", None),
    ]
    assert history(connection, instance)[4][4] == {"from": "final", "to": "review"}


def test_return_across_a_parallel_split(connection: sa.Connection, ids: dict[str, int]) -> None:
    publish(connection, parallel())
    p = approvals(connection)
    alice, rita, bob = actor(ids["alice"]), actor(ids["rita"]), actor(ids["bob"])
    instance = p.start("parallel", actor=alice)
    p.complete(open_item(connection, instance, "prepare", ids["alice"]), actor=alice)
    a, b = (open_item(connection, instance, e, ids[u]) for e, u in (("a", "rita"), ("b", "bob")))
    p.complete(a, actor=rita, outcome="approve")
    with pytest.raises(ProcessStateError, match="another parallel branch"):
        p.return_to(b, actor=bob, to_element="a", comment="x")
    assert status(connection, b) == ("open", None, ids["bob"])  # nothing changed
    p.return_to(b, actor=bob, to_element="prepare", comment="重新准备")
    assert open_items(connection, instance) == [("prepare", ids["alice"])]
    p.complete(open_item(connection, instance, "prepare", ids["alice"]), actor=alice)
    assert open_items(connection, instance) == [("a", ids["rita"]), ("b", ids["bob"])]


def test_withdraw_until_someone_else_acts(connection: sa.Connection, ids: dict[str, int]) -> None:
    publish(connection, chain())
    p = approvals(connection)
    alice = actor(ids["alice"])
    first = p.start("chain", actor=alice)
    p.complete(open_item(connection, first, "draft", ids["alice"]), actor=alice)
    with pytest.raises(PermissionDeniedError, match="Only the person who started"):
        p.withdraw(first, actor=actor(ids["rita"], "reviewer"))
    p.withdraw(first, actor=alice, comment="信息填错了")  # only alice has acted
    row = connection.execute(
        sa.select(instance_table.c.status, instance_table.c.ended_at).where(
            instance_table.c.id == first
        )
    ).one()
    assert row.status == "cancelled" and row.ended_at is not None
    w = work_item_table
    assert connection.execute(
        sa.select(w.c.element_id, w.c.status).where(w.c.instance_id == first).order_by(w.c.id)
    ).all() == [("draft", "done"), ("review", "cancelled")]
    assert history(connection, first)[-1][:4] == ("withdraw", ids["alice"], None, "信息填错了")
    with pytest.raises(ProcessStateError, match="already cancelled"):
        p.withdraw(first, actor=alice)
    with pytest.raises(ProcessStateError, match="already cancelled"):
        p.claim(open_item_any(connection, first, "review"), actor=actor(ids["rita"], "reviewer"))
    second = p.start("chain", actor=alice)
    p.complete(open_item(connection, second, "draft", ids["alice"]), actor=alice)
    p.claim(open_item(connection, second, "review", None), actor=actor(ids["rita"], "reviewer"))
    with pytest.raises(ProcessStateError, match="rita has already acted on it"):
        p.withdraw(second, actor=alice)


def open_item_any(conn: sa.Connection, instance_id: int, element: str) -> int:
    w = work_item_table
    return int(
        conn.execute(
            sa.select(w.c.id).where(w.c.instance_id == instance_id, w.c.element_id == element)
        ).scalar_one()
    )


def test_cc_sends_read_only_copies(connection: sa.Connection, ids: dict[str, int]) -> None:
    p, instance, item, rita = started_review(connection, ids)
    carol = actor(ids["carol"])
    assert not may_see_instance(connection, instance, ids["alice"], carol)
    with pytest.raises(PermissionDeniedError):
        p.cc(instance, actor=carol, users=["dave"])
    with pytest.raises(RecordValidationError) as bad:
        p.cc(instance, actor=rita, users=["carol", "ghost", "nobody"])
    assert [e.pointer for e in bad.value.errors] == ["/users/1", "/users/2"]
    with pytest.raises(NotFoundError):
        p.cc(instance, actor=rita, users=["carol"], work_item_id=item + 1000)
    assert p.cc(instance, actor=rita, users=["carol", "dave"], comment="供参考") == [
        ids["carol"],
        ids["dave"],
    ]
    assert p.cc(instance, actor=actor(ids["alice"]), users=["carol"]) == []  # already sent
    assert p.cc(instance, actor=rita, users=["carol"], work_item_id=item) == [ids["carol"]]
    inbox = copies(connection, carol)
    assert [(c["instance_id"], c["task_id"], c["sent_by"]) for c in inbox] == [
        (instance, item, ids["rita"]),
        (instance, None, ids["rita"]),
    ]
    assert inbox[1]["comment"] == "供参考" and inbox[1]["process_key"] == "review_flow"
    assert may_see_instance(connection, instance, ids["alice"], carol)
    # A copy is no task: carol cannot act on it.
    with pytest.raises(PermissionDeniedError):
        p.complete(item, actor=carol, outcome="approve")
    assert copies(connection, actor(ids["bob"])) == []


def test_maker_checker_refuses_the_initiator_and_the_maker(
    connection: sa.Connection, ids: dict[str, int]
) -> None:
    bpmn = chain(
        review=property_line("makerChecker", "true"),
        final=property_line("makerChecker", "review"),
    )
    publish(connection, bpmn)
    p = approvals(connection)
    # alice starts it and is a reviewer too.
    alice = actor(ids["alice"], "reviewer")
    instance = p.start("chain", actor=alice)
    p.complete(open_item(connection, instance, "draft", ids["alice"]), actor=alice)
    review = open_item(connection, instance, "review", None)
    p.claim(review, actor=alice)
    with pytest.raises(PermissionDeniedError, match="started this process cannot also do '审核'"):
        p.complete(review, actor=alice, outcome="approve")
    p.transfer(review, actor=alice, to="bob")
    p.complete(review, actor=actor(ids["bob"]), outcome="approve")
    final = open_item(connection, instance, "final", ids["bob"])
    with pytest.raises(PermissionDeniedError, match="you did step 'review'"):
        p.complete(final, actor=actor(ids["bob"]))
    p.transfer(final, actor=actor(ids["bob"]), to="carol")
    p.complete(final, actor=actor(ids["carol"]))
    assert connection.execute(sa.select(instance_table.c.status)).scalar_one() == "completed"
