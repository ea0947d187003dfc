"""Compiled access: default deny, deny wins, scopes, restrictions, levels, caching, explain."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from typing import Any

import casbin
import pytest
import sqlalchemy as sa

from engine.catalog import load_schema
from engine.forms.definition import parse_definition
from engine.publish.service import publish
from engine.system import user_table
from permissions import org
from permissions.compile import MODEL_PATH, AccessCompiler, Level, UserContext
from permissions.explain import explain, format_explanation
from permissions.policy import ACTIONS, PolicyStore

NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
CUSTOMER = parse_definition(
    {
        "key": "customer",
        "schema": {
            "properties": {
                "name": {"type": "string"},
                "phone": {"x-type": "phone"},
                "id_number": {"x-type": "cn_id_number"},
                "tier": {"type": "string", "enum": ["mass", "mid", "private"]},
                "branch": {"type": "string"},
            }
        },
    }
)
ALICE, BOB, CAROL = 1, 2, 3


def store(conn: sa.Connection) -> PolicyStore:
    return PolicyStore(conn, actor_id=None, now=NOW)


@pytest.fixture
def bank(connection: sa.Connection) -> dict[str, Any]:
    connection.execute(
        sa.insert(user_table),
        [
            {"id": i, "username": n, "display_name": n, "created_at": NOW}
            for i, n in ((ALICE, "alice"), (BOB, "bob"), (CAROL, "carol"))
        ],
    )
    depts = {
        code: org.create_department(
            connection, code=code, name=code, parent_code=parent, actor_id=None, now=NOW
        )
        for code, parent in [("BANK", None), ("HZ", "BANK"), ("XH", "HZ"), ("NB", "BANK")]
    }
    publish(connection, CUSTOMER, now=NOW)
    table = load_schema(connection).form("customer").table
    rows = [
        # owner, dept, tier, branch
        (ALICE, "HZ", "mass", "BJ"),
        (BOB, "XH", "mid", "SH"),
        (BOB, "NB", "private", "BJ"),
        (CAROL, "BANK", "private", "SH"),
        (None, None, "mass", None),
    ]
    ids = []
    for owner, dept, tier, branch in rows:
        ids.append(
            connection.execute(
                sa.insert(table)
                .values(
                    owner_id=owner,
                    dept_id=depts[dept] if dept else None,
                    tier=tier,
                    branch=branch,
                    name="张三",
                    created_at=NOW,
                    updated_at=NOW,
                )
                .returning(table.c.id)
            ).scalar_one()
        )
    return {"table": table, "depts": depts, "ids": ids}


def visible(conn: sa.Connection, table: sa.Table, where: sa.ColumnElement[bool]) -> list[int]:
    return list(conn.execute(sa.select(table.c.id).where(where).order_by(table.c.id)).scalars())


def test_default_deny(connection: sa.Connection, bank: dict[str, Any]) -> None:
    access = AccessCompiler().access(connection, UserContext(ALICE), CUSTOMER, "read")
    assert not access.allowed
    assert set(access.levels.values()) == {Level.HIDDEN}
    assert visible(connection, bank["table"], access.where(bank["table"])) == []
    # A scope without the action grants nothing either.
    store(connection).set_scope("teller", "customer", "read", "all")
    store(connection).assign_role(ALICE, "teller")
    access = AccessCompiler().access(connection, UserContext(ALICE), CUSTOMER, "read")
    assert not access.allowed
    assert visible(connection, bank["table"], access.where(bank["table"])) == []


def test_deny_wins_over_allow_across_roles_and_inheritance(
    connection: sa.Connection, bank: dict[str, Any]
) -> None:
    s = store(connection)
    s.set_action("teller", "customer", "read")
    s.set_action("teller", "customer", "export")
    s.set_action("intern", "customer", "export", "deny")
    s.inherit("trainee", "intern")
    s.assign_role(ALICE, "teller")
    s.assign_role(ALICE, "trainee")
    compiler = AccessCompiler()
    user = UserContext(ALICE)
    assert compiler.access(connection, user, CUSTOMER, "read").allowed
    export = compiler.access(connection, user, CUSTOMER, "export")
    assert not export.allowed
    assert export.explain.subjects == ("user:1", "role:intern", "role:teller", "role:trainee")
    # form:* grants and denies apply to every form.
    s.add_line("role:teller", "form:*", "delete")
    assert compiler.access(connection, user, CUSTOMER, "delete").allowed
    s.add_line("role:intern", "form:*", "delete", "deny")
    assert not compiler.access(connection, user, CUSTOMER, "delete").allowed


def test_field_levels_star_and_deny_caps(connection: sa.Connection, bank: dict[str, Any]) -> None:
    s = store(connection)
    s.set_action("teller", "customer", "read")
    s.set_field("teller", "customer", "*", "write")
    s.set_field("teller", "customer", "id_number", "read", "deny")  # at most mask
    s.set_field("auditor", "customer", "*", "read")
    s.set_field("auditor", "customer", "*", "write", "deny")  # read-only
    s.set_field("auditor", "customer", "phone", "mask", "deny")  # hidden
    s.assign_role(ALICE, "teller")
    s.assign_role(BOB, "auditor")
    s.assign_role(CAROL, "teller")
    s.assign_role(CAROL, "auditor")
    compiler = AccessCompiler()

    def levels(user: int) -> dict[str, str]:
        acc = compiler.access(connection, UserContext(user), CUSTOMER, "read")
        return {k: v.label for k, v in acc.levels.items()}

    assert levels(ALICE) == {
        "name": "write", "phone": "write", "id_number": "mask", "tier": "write", "branch": "write"
    }  # fmt: skip
    assert levels(BOB) == {
        "name": "read", "phone": "hidden", "id_number": "read", "tier": "read", "branch": "read"
    }  # fmt: skip
    # Carol holds both: the highest grant, under every cap of every role.
    assert levels(CAROL) == {
        "name": "read", "phone": "hidden", "id_number": "mask", "tier": "read", "branch": "read"
    }  # fmt: skip


def test_scopes_or_across_roles(connection: sa.Connection, bank: dict[str, Any]) -> None:
    s, t, d, ids = store(connection), bank["table"], bank["depts"], bank["ids"]
    for role in ("rm", "branch_head", "regional", "head_office", "sh_desk"):
        s.set_action(role, "customer", "read")
    s.set_scope("rm", "customer", "read", "own")
    s.set_scope("branch_head", "customer", "read", "dept")
    s.set_scope("regional", "customer", "read", "dept_tree")
    s.set_scope("head_office", "customer", "read", "all")
    s.define_scope(
        CUSTOMER, "my_branch", {"field": "branch", "op": "eq", "value": {"user": "branch"}}
    )
    s.set_scope("sh_desk", "customer", "read", "my_branch")
    compiler = AccessCompiler()

    def rows(user: UserContext) -> list[int]:
        return visible(connection, t, compiler.access(connection, user, CUSTOMER, "read").where(t))

    s.assign_role(BOB, "rm")
    assert rows(UserContext(BOB)) == [ids[1], ids[2]]
    s.assign_role(ALICE, "branch_head")
    assert rows(UserContext(ALICE, dept_ids=frozenset({d["HZ"]}))) == [ids[0]]
    s.assign_role(ALICE, "regional")
    assert rows(UserContext(ALICE, dept_ids=frozenset({d["HZ"]}))) == [ids[0], ids[1]]
    s.assign_role(CAROL, "sh_desk")
    assert rows(UserContext(CAROL, attributes={"branch": "SH"})) == [ids[1], ids[3]]
    assert rows(UserContext(CAROL)) == []  # no branch attribute: nothing
    s.assign_role(CAROL, "rm")  # OR with own
    assert rows(UserContext(CAROL, attributes={"branch": "BJ"})) == [ids[0], ids[2], ids[3]]
    s.assign_role(CAROL, "head_office")
    assert rows(UserContext(CAROL)) == ids
    # A denied scope line removes that scope, whatever role grants it.
    s.set_scope("rm", "customer", "read", "all", "deny")
    assert rows(UserContext(CAROL)) == [ids[3]]


def test_global_restriction_survives_a_later_broad_grant(
    connection: sa.Connection, bank: dict[str, Any]
) -> None:
    s, t, ids = store(connection), bank["table"], bank["ids"]
    s.define_restriction(
        CUSTOMER, "private_banking", {"field": "tier", "op": "ne", "value": "private"}
    )
    s.set_action("wealth", "customer", "read")
    s.set_scope("wealth", "customer", "read", "all")
    s.exempt("wealth", "customer", "private_banking")
    s.assign_role(BOB, "wealth")
    compiler = AccessCompiler()

    def rows(user: int) -> list[int]:
        return visible(
            connection, t, compiler.access(connection, UserContext(user), CUSTOMER, "read").where(t)
        )

    assert rows(BOB) == ids
    # Later: a broad grant to everyone in the building — every form, every row.
    s.add_line("role:staff", "form:*", "read")
    s.add_line("role:staff", "scope:*", "read:all")
    s.assign_role(ALICE, "staff")
    assert rows(ALICE) == [ids[0], ids[1], ids[4]]  # no private-banking customers
    # NULL tier is not "not private" (two-valued logic): record 4 has tier mass.
    # A deny on the exemption keeps the restriction even for the wealth team.
    s.inherit("wealth_intern", "wealth")
    s.exempt("wealth_intern", "customer", "private_banking", "deny")
    s.assign_role(CAROL, "wealth_intern")
    assert rows(CAROL) == [ids[0], ids[1], ids[4]]
    assert rows(BOB) == ids


def test_policy_change_takes_effect_without_restart(engine: sa.Engine) -> None:
    compiler = AccessCompiler()  # one per process, kept across requests
    with engine.begin() as conn:
        conn.execute(
            sa.insert(user_table).values(id=ALICE, username="a", display_name="A", created_at=NOW)
        )
        publish(conn, CUSTOMER, now=NOW)
    with engine.begin() as conn:
        assert not compiler.access(conn, UserContext(ALICE), CUSTOMER, "read").allowed
    with engine.begin() as conn:  # an administrator, elsewhere
        store(conn).set_action("teller", "customer", "read")
        store(conn).assign_role(ALICE, "teller")
        with engine.connect() as other:  # not committed yet: still the old answer
            assert not compiler.access(other, UserContext(ALICE), CUSTOMER, "read").allowed
    with engine.begin() as conn:
        assert compiler.access(conn, UserContext(ALICE), CUSTOMER, "read").allowed
    with engine.begin() as conn:
        store(conn).unassign_role(ALICE, "teller")
    with engine.begin() as conn:
        assert not compiler.access(conn, UserContext(ALICE), CUSTOMER, "read").allowed


def test_warm_cache_costs_one_query(
    connection: sa.Connection, bank: dict[str, Any], count_statements: Any
) -> None:
    store(connection).set_action("teller", "customer", "read")
    compiler = AccessCompiler()
    first = compiler.access(connection, UserContext(ALICE), CUSTOMER, "read", form_version=1)
    with count_statements(connection) as log:
        again = compiler.access(connection, UserContext(ALICE), CUSTOMER, "read", form_version=1)
    assert again is first
    assert log.count == 1  # the policy version


def test_explain(connection: sa.Connection, bank: dict[str, Any]) -> None:
    s, t, ids = store(connection), bank["table"], bank["ids"]
    s.set_action("teller", "customer", "read")
    s.set_action("intern", "customer", "export", "deny")
    s.set_field("teller", "customer", "*", "read")
    s.set_field("intern", "customer", "phone", "read", "deny")
    s.set_scope("teller", "customer", "read", "own")
    s.define_restriction(CUSTOMER, "no_private", {"field": "tier", "op": "ne", "value": "private"})
    s.inherit("intern", "teller")
    s.assign_role(BOB, "intern")
    compiler = AccessCompiler()
    user = UserContext(BOB)
    out = explain(
        connection, compiler, user, CUSTOMER, "read", field="phone", table=t, record_id=ids[1]
    )
    assert out["allowed"] is True
    assert out["reason"] == "allowed by p, role:teller, form:customer, read, allow"
    assert out["subjects"] == ["user:2", "role:intern", "role:teller"]
    assert out["fields"] == {
        "phone": {
            "level": "mask",
            "lines": [
                "p, role:teller, field:customer.*, read, allow",
                "p, role:intern, field:customer.phone, read, deny",
            ],
        }
    }
    assert out["scope"]["granted"] == ["own"]
    assert out["scope"]["condition"] == "(owner_id eq 2 and tier ne 'private')"
    assert out["restrictions"] == [{"name": "no_private", "applied": True, "exemption_lines": []}]
    assert out["record"] == {"id": ids[1], "exists": True, "in_scope": True}
    private = explain(connection, compiler, user, CUSTOMER, "read", table=t, record_id=ids[2])
    assert private["record"]["in_scope"] is False  # Bob owns it, but it is private banking
    export = explain(connection, compiler, user, CUSTOMER, "export")
    assert export["reason"] == "denied by p, role:intern, form:customer, export, deny (deny wins)"
    update = explain(connection, compiler, user, CUSTOMER, "update")
    assert update["reason"] == "no line grants update on form customer (default deny)"
    assert "read on customer: ALLOWED" in format_explanation(out)
    # A scope that is granted but not defined matches nothing, and says so.
    s.set_scope("teller", "customer", "read", "ghost")
    out = explain(connection, compiler, user, CUSTOMER, "read")
    assert out["problems"] == [
        "scope 'ghost' of form 'customer' is not defined: it matches nothing"
    ]


def test_form_actions_agree_with_casbin_enforce(connection: sa.Connection) -> None:
    """Our compilation against Casbin's own matcher on random policies (the reference)."""
    rnd = random.Random(7)
    roles = [f"r{i}" for i in range(6)]
    for _ in range(15):
        e = casbin.Enforcer(MODEL_PATH)
        s = store(connection)
        connection.execute(sa.text("DELETE FROM ff_casbin_rule"))
        for _ in range(12):
            role, action = rnd.choice(roles), rnd.choice(ACTIONS)
            effect = rnd.choice(["allow", "allow", "deny"])
            obj = rnd.choice(["form:customer", "form:*"])
            s.add_line(f"role:{role}", obj, action, effect)  # type: ignore[arg-type]
            e.add_policy(f"role:{role}", obj, action, effect)
        for a, b in itertools.combinations(roles, 2):
            if rnd.random() < 0.2:
                s.inherit(a, b)
                e.add_grouping_policy(f"role:{a}", f"role:{b}")
        for user in (1, 2):
            for role in rnd.sample(roles, 2):
                s.assign_role(user, role)
                e.add_grouping_policy(f"user:{user}", f"role:{role}")
        compiler = AccessCompiler()
        for user, action in itertools.product((1, 2), ACTIONS):
            ours = compiler.access(connection, UserContext(user), CUSTOMER, action).allowed
            # Casbin has no wildcard objects in this model: ask for both.
            theirs_form = e.enforce(f"user:{user}", "form:customer", action)
            theirs_star = e.enforce(f"user:{user}", "form:*", action)
            denied = any(
                e.enforce(f"user:{user}", obj, action) is False
                and _has_deny(e, f"user:{user}", obj, action)
                for obj in ("form:customer", "form:*")
            )
            assert ours == ((theirs_form or theirs_star) and not denied)


def _has_deny(e: casbin.Enforcer, user: str, obj: str, action: str) -> bool:
    roles = {user, *e.get_implicit_roles_for_user(user)}
    return any(
        p[0] in roles and p[1] == obj and p[2] == action and p[3] == "deny" for p in e.get_policy()
    )
