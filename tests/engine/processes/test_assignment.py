"""Scoped candidates: the holders of a role nearest a department on the tree."""

from __future__ import annotations

import sqlalchemy as sa
from process_support import NOW, organisation

from engine.processes.assignment import parse_scope, scoped_holders
from permissions import org
from permissions.policy import PolicyStore


def test_the_nearest_holders_at_or_above_a_department(connection: sa.Connection) -> None:
    users = organisation(
        connection,
        [("BANK", None), ("HZ", "BANK"), ("XH", "HZ"), ("TEAM", "XH")],
        [("head_xh", "XH"), ("head_hz", "HZ"), ("deputy", "XH"), ("rm", "TEAM")],
    )
    store = PolicyStore(connection, actor_id=None, now=NOW)
    store.assign_role(users["head_xh"], "branch_head")
    store.assign_role(users["head_hz"], "branch_head")
    store.inherit("acting_head", "branch_head")  # holders of an inheriting role count too
    store.assign_role(users["deputy"], "acting_head")
    dept = {d.code: d.id for d in org.list_departments(connection)}

    assert scoped_holders(connection, ["branch_head"], dept["TEAM"], 0) == sorted(
        [users["head_xh"], users["deputy"]]
    )
    assert scoped_holders(connection, ["branch_head"], dept["TEAM"], 2) == [users["head_hz"]]
    assert scoped_holders(connection, ["branch_head"], dept["BANK"], 0) == []
    assert scoped_holders(connection, ["nobody"], dept["TEAM"], 0) == []
    assert scoped_holders(connection, ["branch_head"], None, 0) == []
    assert parse_scope("initiator+1") == ("initiator", 1)
    assert parse_scope("record") == ("record", 0)
    assert parse_scope("manager") is None
