"""The organisation (permissions.org) on a real database: tree, closure, audit.

The closure table is checked against a recomputation in Python from the
``parent_id`` column after every kind of change, on both backends.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import pytest
import sqlalchemy as sa

import migrations
from engine.db import create_engine
from engine.errors import NotFoundError
from engine.system import (
    admin_audit_table,
    department_closure_table,
    department_table,
    user_department_table,
    user_table,
)
from permissions import org
from permissions.errors import AdministrationInputError, OrganisationConflictError

# Spelled out: `from conftest import ...` would pick whichever conftest loaded first.
CountStatements = Callable[[sa.Engine | sa.Connection], AbstractContextManager[Any]]
NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
ADMIN = 7

# bank -> branch -> sub-branch -> team
TREE: list[tuple[str, str | None]] = [
    ("BANK", None),
    ("BR-HZ", "BANK"),
    ("BR-NB", "BANK"),
    ("SUB-XH", "BR-HZ"),
    ("SUB-BJ", "BR-HZ"),
    ("SUB-YZ", "BR-NB"),
    ("T-XH1", "SUB-XH"),
    ("T-XH2", "SUB-XH"),
    ("T-BJ1", "SUB-BJ"),
    ("T-YZ1", "SUB-YZ"),
]


def build(conn: sa.Connection, tree: Sequence[tuple[str, str | None]] = TREE) -> dict[str, int]:
    return {
        code: org.create_department(
            conn, code=code, name=f"Dept {code}", parent_code=parent, actor_id=ADMIN, now=NOW
        )
        for code, parent in tree
    }


def closure(conn: sa.Connection) -> set[tuple[str, str, int]]:
    """The closure table as (ancestor code, descendant code, depth)."""
    c, a, d = department_closure_table, department_table.alias("a"), department_table.alias("d")
    rows = conn.execute(
        sa.select(a.c.code, d.c.code, c.c.depth)
        .join(a, a.c.id == c.c.ancestor_id)
        .join(d, d.c.id == c.c.descendant_id)
    )
    return {(r[0], r[1], r[2]) for r in rows}


def recomputed(conn: sa.Connection) -> set[tuple[str, str, int]]:
    """What the closure must be, walked up from parent_id in Python."""
    t = department_table
    rows = conn.execute(sa.select(t.c.id, t.c.code, t.c.parent_id)).all()
    code = {r.id: r.code for r in rows}
    parent = {r.id: r.parent_id for r in rows}
    expected = set()
    for dept_id in code:
        node: int | None = dept_id
        depth = 0
        while node is not None:
            expected.add((code[node], code[dept_id], depth))
            node, depth = parent[node], depth + 1
    return expected


def parents(conn: sa.Connection) -> dict[str, str | None]:
    t, p = department_table, department_table.alias("p")
    rows = conn.execute(sa.select(t.c.code, p.c.code).outerjoin(p, p.c.id == t.c.parent_id))
    return {r[0]: r[1] for r in rows}


def audit(conn: sa.Connection) -> list[tuple[Any, ...]]:
    a = admin_audit_table
    rows = conn.execute(
        sa.select(a.c.entity, a.c.entity_key, a.c.action, a.c.before, a.c.after).order_by(a.c.id)
    )
    return [tuple(r) for r in rows]


def make_user(conn: sa.Connection, name: str) -> int:
    return int(
        conn.execute(
            sa.insert(user_table)
            .values(username=name, display_name=name, created_at=NOW)
            .returning(user_table.c.id)
        ).scalar_one()
    )


def state(conn: sa.Connection) -> tuple[Any, ...]:
    """Everything a refused change must leave as it was."""
    return (parents(conn), closure(conn), audit(conn), org.policy_version(conn))


# --- closure correctness ---------------------------------------------------------------


def test_created_departments_get_every_ancestor_pair(connection: sa.Connection) -> None:
    build(connection)
    assert closure(connection) == recomputed(connection)
    assert ("BANK", "T-XH1", 3) in closure(connection)
    assert ("SUB-XH", "SUB-XH", 0) in closure(connection)
    assert len(closure(connection)) == 10 + 9 + 7 + 4  # depth 0, 1, 2, 3


def test_moves_rewrite_the_subtree_and_keep_the_closure_exact(connection: sa.Connection) -> None:
    build(connection)
    untouched = {row for row in closure(connection) if "HZ" not in row[0] + row[1]}
    untouched = {row for row in untouched if "XH" not in row[1]}

    org.move_department(connection, code="SUB-XH", new_parent_code="BR-NB", actor_id=ADMIN, now=NOW)
    assert parents(connection)["SUB-XH"] == "BR-NB"
    assert closure(connection) == recomputed(connection)
    assert ("BR-NB", "T-XH2", 2) in closure(connection)
    assert not any(a == "BR-HZ" and "XH" in d for a, d, _ in closure(connection))
    # Pairs outside the moved subtree are still there.
    assert {r for r in untouched if "XH" not in r[1]} <= closure(connection)

    # To the top (a second root) and deeper than before.
    org.move_department(connection, code="BR-HZ", new_parent_code=None, actor_id=ADMIN, now=NOW)
    assert closure(connection) == recomputed(connection)
    assert parents(connection)["BR-HZ"] is None
    org.move_department(connection, code="BR-HZ", new_parent_code="T-YZ1", actor_id=ADMIN, now=NOW)
    assert closure(connection) == recomputed(connection)
    assert ("BANK", "T-BJ1", 6) in closure(connection)

    org.rename_department(connection, code="SUB-BJ", name="滨江支行", actor_id=ADMIN, now=NOW)
    assert closure(connection) == recomputed(connection)
    org.delete_department(connection, code="T-BJ1", actor_id=ADMIN, now=NOW)
    assert "T-BJ1" not in parents(connection)
    assert closure(connection) == recomputed(connection)
    assert not any("T-BJ1" in (a, d) for a, d, _ in closure(connection))


def test_moving_under_its_own_subtree_is_refused_and_changes_nothing(
    connection: sa.Connection,
) -> None:
    build(connection)
    before = state(connection)
    with pytest.raises(OrganisationConflictError) as below:
        org.move_department(
            connection, code="BR-HZ", new_parent_code="T-XH1", actor_id=ADMIN, now=NOW
        )
    assert below.value.message == (
        "Department 'BR-HZ' cannot move under a department below it ('T-XH1')."
    )
    assert [e.pointer for e in below.value.errors] == ["/parent"]
    with pytest.raises(OrganisationConflictError, match="cannot move under itself"):
        org.move_department(
            connection, code="SUB-XH", new_parent_code="SUB-XH", actor_id=ADMIN, now=NOW
        )
    with pytest.raises(NotFoundError, match="There is no department 'NOPE'"):
        org.move_department(connection, code="SUB-XH", new_parent_code="NOPE", actor_id=1, now=NOW)
    assert state(connection) == before

    # Moving to where it already is changes nothing either, and audits nothing.
    org.move_department(connection, code="SUB-XH", new_parent_code="BR-HZ", actor_id=1, now=NOW)
    assert state(connection) == before


def test_a_move_costs_the_same_statements_for_any_subtree_size(
    connection: sa.Connection, count_statements: CountStatements
) -> None:
    build(connection)
    # A wide and deep subtree under SUB-BJ: 60 teams and a chain of 20.
    wide = [(f"W{i}", "SUB-BJ") for i in range(60)]
    chain = [(f"C{i}", "SUB-BJ" if i == 0 else f"C{i - 1}") for i in range(20)]
    build(connection, wide + chain)

    with count_statements(connection) as small:
        org.move_department(
            connection, code="T-YZ1", new_parent_code="BR-HZ", actor_id=ADMIN, now=NOW
        )
    with count_statements(connection) as large:
        org.move_department(
            connection, code="SUB-BJ", new_parent_code="SUB-YZ", actor_id=ADMIN, now=NOW
        )
    assert small.count == large.count == 8, large.statements
    assert closure(connection) == recomputed(connection)
    assert ("BANK", "C19", 23) in closure(connection)


def test_rebuild_closure_repairs_departments_written_around_org(
    connection: sa.Connection,
) -> None:
    ids = build(connection)
    # As a bulk import would: rows straight into ff_department.
    connection.execute(
        sa.insert(department_table),
        [{"code": "RAW", "name": "raw", "parent_id": ids["T-XH1"]}],
    )
    connection.execute(
        sa.delete(department_closure_table).where(
            department_closure_table.c.descendant_id == ids["BR-NB"],
            department_closure_table.c.depth == 0,
        )
    )
    assert closure(connection) != recomputed(connection)
    count = org.rebuild_closure(connection, actor_id=ADMIN, now=NOW)
    assert closure(connection) == recomputed(connection)
    assert count == len(recomputed(connection))


# --- scope conditions -------------------------------------------------------------------


def test_dept_tree_condition_selects_the_rows_of_a_subtree(connection: sa.Connection) -> None:
    ids = build(connection)
    records = sa.Table(
        "form_org_probe",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dept_id", sa.BigInteger, sa.ForeignKey(department_table.c.id)),
    )
    records.create(connection)
    placed = {code: n for n, code in enumerate(ids, start=1)}
    connection.execute(
        sa.insert(records),
        [{"id": n, "dept_id": ids[code]} for code, n in placed.items()]
        + [{"id": 99, "dept_id": None}],
    )

    def visible(dept_ids: Any) -> set[str]:
        found = set(
            connection.execute(
                sa.select(records.c.id).where(org.dept_tree_condition(records.c.dept_id, dept_ids))
            ).scalars()
        )
        return {code for code, n in placed.items() if n in found}

    assert visible([ids["BR-HZ"]]) == {"BR-HZ", "SUB-XH", "SUB-BJ", "T-XH1", "T-XH2", "T-BJ1"}
    assert visible([ids["SUB-YZ"], ids["T-XH1"]]) == {"SUB-YZ", "T-YZ1", "T-XH1"}
    assert visible([ids["BANK"]]) == set(ids)
    assert visible([]) == set()

    # The ids may be a query: "my departments and below" in one statement.
    alice = make_user(connection, "alice")
    org.add_member(connection, user_id=alice, dept_code="SUB-BJ", actor_id=ADMIN, now=NOW)
    org.add_member(connection, user_id=alice, dept_code="T-YZ1", actor_id=ADMIN, now=NOW)
    m = user_department_table
    mine = sa.select(m.c.department_id).where(m.c.user_id == alice)
    assert visible(mine) == {"SUB-BJ", "T-BJ1", "T-YZ1"}
    assert set(connection.execute(org.descendants(connection, mine)).scalars()) == {
        ids["SUB-BJ"],
        ids["T-BJ1"],
        ids["T-YZ1"],
    }

    # After a re-organisation the same condition follows the new tree.
    org.move_department(connection, code="SUB-XH", new_parent_code="SUB-BJ", actor_id=1, now=NOW)
    assert visible(mine) == {"SUB-BJ", "T-BJ1", "T-YZ1", "SUB-XH", "T-XH1", "T-XH2"}


# --- deleting ---------------------------------------------------------------------------


def test_delete_is_refused_while_the_department_is_in_use(connection: sa.Connection) -> None:
    ids = build(connection)
    alice = make_user(connection, "alice")
    org.add_member(connection, user_id=alice, dept_code="T-XH1", actor_id=ADMIN, now=NOW)
    records = sa.Table(
        "form_org_records",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dept_id", sa.BigInteger, sa.ForeignKey(department_table.c.id)),
    )
    records.create(connection)
    connection.execute(sa.insert(records).values(id=1, dept_id=ids["T-XH2"]))
    before = state(connection)

    with pytest.raises(OrganisationConflictError) as in_use:
        org.delete_department(connection, code="SUB-XH", actor_id=ADMIN, now=NOW)
    assert [e.message for e in in_use.value.errors] == ["has 2 sub-department(s)"]
    with pytest.raises(OrganisationConflictError) as members:
        org.delete_department(connection, code="T-XH1", actor_id=ADMIN, now=NOW)
    assert [e.message for e in members.value.errors] == ["has 1 member(s)"]
    with pytest.raises(OrganisationConflictError, match="records are filed under it"):
        org.delete_department(connection, code="T-XH2", actor_id=ADMIN, now=NOW)
    with pytest.raises(NotFoundError):
        org.delete_department(connection, code="NOPE", actor_id=ADMIN, now=NOW)
    assert state(connection) == before

    org.delete_department(connection, code="T-BJ1", actor_id=ADMIN, now=NOW)
    assert closure(connection) == recomputed(connection)


# --- validation -------------------------------------------------------------------------


def test_create_department_validates_and_refuses_duplicates(connection: sa.Connection) -> None:
    build(connection)
    with pytest.raises(AdministrationInputError) as bad:
        org.create_department(
            connection, code="has space", name="", parent_code=None, actor_id=ADMIN, now=NOW
        )
    assert [e.pointer for e in bad.value.errors] == ["/code", "/name"]
    with pytest.raises(OrganisationConflictError, match="'BR-HZ' already exists"):
        org.create_department(
            connection, code="BR-HZ", name="again", parent_code="BANK", actor_id=ADMIN, now=NOW
        )
    with pytest.raises(NotFoundError) as parent:
        org.create_department(
            connection, code="NEW", name="new", parent_code="NOPE", actor_id=ADMIN, now=NOW
        )
    assert [e.pointer for e in parent.value.errors] == ["/parent"]
    with pytest.raises(AdministrationInputError):
        org.rename_department(connection, code="BANK", name="x" * 201, actor_id=ADMIN, now=NOW)
    assert closure(connection) == recomputed(connection)


# --- memberships ------------------------------------------------------------------------


def test_memberships_and_the_one_primary_department(connection: sa.Connection) -> None:
    build(connection)
    alice, bob = make_user(connection, "alice"), make_user(connection, "bob")
    org.add_member(connection, user_id=alice, dept_code="T-XH1", actor_id=ADMIN, now=NOW)
    org.add_member(
        connection, user_id=alice, dept_code="SUB-YZ", primary=True, actor_id=ADMIN, now=NOW
    )
    org.add_member(connection, user_id=bob, dept_code="T-XH1", primary=True, actor_id=1, now=NOW)
    assert [(m.code, m.is_primary) for m in org.user_departments(connection, alice)] == [
        ("SUB-YZ", True),
        ("T-XH1", False),
    ]
    # A new primary demotes the old one.
    org.add_member(
        connection, user_id=alice, dept_code="BANK", primary=True, actor_id=ADMIN, now=NOW
    )
    assert [(m.code, m.is_primary) for m in org.user_departments(connection, alice)] == [
        ("BANK", True),
        ("SUB-YZ", False),
        ("T-XH1", False),
    ]
    org.set_primary_department(connection, user_id=alice, dept_code="T-XH1", actor_id=1, now=NOW)
    assert [m.code for m in org.user_departments(connection, alice) if m.is_primary] == ["T-XH1"]

    with pytest.raises(OrganisationConflictError, match="already a member"):
        org.add_member(connection, user_id=alice, dept_code="BANK", actor_id=ADMIN, now=NOW)
    with pytest.raises(NotFoundError, match="There is no user 999"):
        org.add_member(connection, user_id=999, dept_code="BANK", actor_id=ADMIN, now=NOW)
    with pytest.raises(NotFoundError, match="not a member"):
        org.remove_member(connection, user_id=bob, dept_code="BANK", actor_id=ADMIN, now=NOW)
    # The database holds the one-primary rule too, whoever writes.
    m = user_department_table
    with pytest.raises(sa.exc.IntegrityError), connection.begin_nested():
        connection.execute(sa.update(m).where(m.c.user_id == alice).values(is_primary=True))

    org.remove_member(connection, user_id=alice, dept_code="T-XH1", actor_id=ADMIN, now=NOW)
    assert [(m.code, m.is_primary) for m in org.user_departments(connection, alice)] == [
        ("BANK", False),
        ("SUB-YZ", False),
    ]
    assert [m.code for m in org.user_departments(connection, bob)] == ["T-XH1"]


# --- audit and policy version -----------------------------------------------------------


def test_every_change_is_audited_with_before_and_after(connection: sa.Connection) -> None:
    org.create_department(
        connection, code="BANK", name="Bank", parent_code=None, actor_id=3, now=NOW
    )
    org.create_department(connection, code="A", name="A", parent_code="BANK", actor_id=3, now=NOW)
    org.create_department(connection, code="B", name="B", parent_code="BANK", actor_id=3, now=NOW)
    org.rename_department(connection, code="A", name="Branch A", actor_id=4, now=NOW)
    org.move_department(connection, code="A", new_parent_code="B", actor_id=4, now=NOW)
    alice = make_user(connection, "alice")
    org.add_member(connection, user_id=alice, dept_code="A", primary=True, actor_id=4, now=NOW)
    org.add_member(connection, user_id=alice, dept_code="B", primary=True, actor_id=4, now=NOW)
    org.remove_member(connection, user_id=alice, dept_code="A", actor_id=4, now=NOW)
    org.delete_department(connection, code="A", actor_id=4, now=NOW)
    org.create_role(connection, key="teller", name="Teller", actor_id=5, now=NOW)
    org.update_role(
        connection, key="teller", name="柜员", description="front desk", actor_id=5, now=NOW
    )
    org.delete_role(connection, key="teller", actor_id=5, now=NOW)

    bank = {"code": "BANK", "name": "Bank", "parent": None}
    a = {"code": "A", "name": "A", "parent": "BANK"}
    renamed = {**a, "name": "Branch A"}
    moved = {**renamed, "parent": "B"}
    key = f"{alice}:"
    member_a = {"user_id": alice, "department": "A", "is_primary": True}
    member_b = {"user_id": alice, "department": "B", "is_primary": True}
    teller = {"key": "teller", "name": "Teller", "description": None}
    changed = {"key": "teller", "name": "柜员", "description": "front desk"}
    assert audit(connection) == [
        ("department", "BANK", "create", None, bank),
        ("department", "A", "create", None, a),
        ("department", "B", "create", None, {"code": "B", "name": "B", "parent": "BANK"}),
        ("department", "A", "rename", a, renamed),
        ("department", "A", "move", renamed, moved),
        ("membership", key + "A", "create", None, member_a),
        ("membership", key + "A", "update", member_a, {**member_a, "is_primary": False}),
        ("membership", key + "B", "create", None, member_b),
        ("membership", key + "A", "delete", {**member_a, "is_primary": False}, None),
        ("department", "A", "delete", moved, None),
        ("role", "teller", "create", None, teller),
        ("role", "teller", "update", teller, changed),
        ("role", "teller", "delete", changed, None),
    ]
    t = admin_audit_table
    actors = connection.execute(sa.select(t.c.actor_id, t.c.at).order_by(t.c.id)).all()
    assert [r.actor_id for r in actors] == [3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5]
    assert {r.at for r in actors} == {NOW}


def test_department_and_membership_changes_bump_the_policy_version(
    connection: sa.Connection,
) -> None:
    assert org.policy_version(connection) == 0
    build(connection)
    assert org.policy_version(connection) == len(TREE)
    alice = make_user(connection, "alice")
    steps: list[Callable[[], object]] = [
        lambda: org.move_department(
            connection, code="SUB-XH", new_parent_code="BR-NB", actor_id=ADMIN, now=NOW
        ),
        lambda: org.rename_department(connection, code="BANK", name="B", actor_id=1, now=NOW),
        lambda: org.delete_department(connection, code="T-XH2", actor_id=ADMIN, now=NOW),
        lambda: org.add_member(connection, user_id=alice, dept_code="BANK", actor_id=1, now=NOW),
        lambda: org.set_primary_department(
            connection, user_id=alice, dept_code="BANK", actor_id=1, now=NOW
        ),
        lambda: org.remove_member(connection, user_id=alice, dept_code="BANK", actor_id=1, now=NOW),
    ]
    for step in steps:
        before = org.policy_version(connection)
        step()
        assert org.policy_version(connection) == before + 1
    assert org.bump_policy_version(connection) == len(TREE) + len(steps) + 1

    # The role catalogue alone grants nothing; deleting a role does matter.
    version = org.policy_version(connection)
    org.create_role(connection, key="teller", name="Teller", actor_id=1, now=NOW)
    org.update_role(connection, key="teller", name="T", description=None, actor_id=1, now=NOW)
    assert org.policy_version(connection) == version
    org.delete_role(connection, key="teller", actor_id=1, now=NOW)
    assert org.policy_version(connection) == version + 1


# --- roles ------------------------------------------------------------------------------


def test_role_catalogue(connection: sa.Connection) -> None:
    org.create_role(connection, key="branch_manager", name="支行行长", actor_id=1, now=NOW)
    org.create_role(
        connection, key="teller", name="柜员", description="front desk", actor_id=1, now=NOW
    )
    assert [(r.key, r.name, r.description, r.created_at) for r in org.list_roles(connection)] == [
        ("branch_manager", "支行行长", None, NOW),
        ("teller", "柜员", "front desk", NOW),
    ]
    with pytest.raises(OrganisationConflictError, match="'teller' already exists"):
        org.create_role(connection, key="teller", name="x", actor_id=1, now=NOW)
    with pytest.raises(AdministrationInputError) as bad:
        org.create_role(connection, key="Teller", name="", actor_id=1, now=NOW)
    assert [e.pointer for e in bad.value.errors] == ["/key", "/name"]
    with pytest.raises(NotFoundError, match="There is no role 'nope'"):
        org.update_role(connection, key="nope", name="x", description=None, actor_id=1, now=NOW)
    with pytest.raises(NotFoundError):
        org.delete_role(connection, key="nope", actor_id=1, now=NOW)
    org.delete_role(connection, key="teller", actor_id=1, now=NOW)
    assert [r.key for r in org.list_roles(connection)] == ["branch_manager"]


def test_list_departments_puts_parents_first(connection: sa.Connection) -> None:
    build(connection)
    listed = org.list_departments(connection)
    seen: set[str] = set()
    for d in listed:
        assert d.parent_code is None or d.parent_code in seen
        seen.add(d.code)
    assert [d.code for d in listed][:3] == ["BANK", "BR-HZ", "BR-NB"]


# --- the migration ----------------------------------------------------------------------


def test_migration_0003_backfills_the_closure_of_existing_departments(
    empty_database_url: str,
) -> None:
    engine = create_engine(empty_database_url)
    try:
        migrations.upgrade(engine, "0002")
        t = department_table
        with engine.begin() as conn:
            ids: dict[str, int] = {}
            for code, parent in TREE:
                ids[code] = conn.execute(
                    sa.insert(t)
                    .values(code=code, name=code, parent_id=ids[parent] if parent else None)
                    .returning(t.c.id)
                ).scalar_one()
        migrations.upgrade(engine)
        with engine.connect() as conn:
            assert closure(conn) == recomputed(conn)
            assert len(closure(conn)) == 30
            assert org.policy_version(conn) == 0
    finally:
        engine.dispose()
