"""Scoped candidates: the holders of a role nearest a department on the tree."""

from __future__ import annotations

import sqlalchemy as sa
from process_support import NOW

from engine.processes.assignment import parse_scope, scoped_holders
from engine.system import user_table
from permissions import org
from permissions.policy import PolicyStore


def test_the_nearest_holders_at_or_above_a_department(connection: sa.Connection) -> None:
    for code, parent in [("BANK", None), ("HZ", "BANK"), ("XH", "HZ"), ("TEAM", "XH")]:
        org.create_department(
            connection, code=code, name=code, parent_code=parent, actor_id=None, now=NOW
        )
    users = {}
    for name, dept in [("head_xh", "XH"), ("head_hz", "HZ"), ("deputy", "XH"), ("rm", "TEAM")]:
        users[name] = int(
            connection.execute(
                sa.insert(user_table)
                .values(username=name, display_name=name, created_at=NOW)
                .returning(user_table.c.id)
            ).scalar_one()
        )
        org.add_member(
            connection, user_id=users[name], dept_code=dept, primary=True, actor_id=None, now=NOW
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
