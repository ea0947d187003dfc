"""``formflow dept | role | scope | restriction | audit`` and the user membership commands."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_cli import Run, make_runner

from engine.forms.definition import parse_definition
from engine.publish.service import publish
from engine.system import admin_audit_table, casbin_rule_table, department_table
from permissions.org import policy_version, user_departments
from permissions.policy import load_policy
from runtime.auth.service import create_user

NOW = dt.datetime(2024, 6, 1, 8, 0, tzinfo=dt.UTC)
CUSTOMER = {
    "key": "customer",
    "schema": {
        "title": "客户",
        "properties": {
            "name": {"type": "string", "title": "客户名称"},
            "tier": {"type": "string", "enum": ["mass", "private"]},
            "id_number": {"x-type": "cn_id_number"},
        },
    },
}


@pytest.fixture
def run(tmp_path: Path, database_url: str, engine: sa.Engine) -> Run:
    with engine.begin() as conn:
        publish(conn, parse_definition(CUSTOMER), now=NOW)
        for name in ("wang", "li"):
            create_user(conn, username=name, password=None, now=NOW)
    return make_runner(tmp_path, database_url)


def ok(run: Run, *args: str) -> str:
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


def refused(run: Run, *args: str) -> str:
    result = run(*args)
    assert result.exit_code == 1, result.output
    return result.stderr


def audit_rows(engine: sa.Engine) -> list[tuple[int | None, str, str, str]]:
    a = admin_audit_table
    with engine.connect() as conn:
        rows = conn.execute(sa.select(a.c.actor_id, a.c.entity, a.c.entity_key, a.c.action))
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_departments_and_memberships(run: Run, engine: sa.Engine) -> None:
    assert ok(run, "dept", "list") == "No departments yet.\n"
    ok(run, "dept", "create", "bank", "示范银行")
    ok(run, "dept", "create", "hz", "杭州分行", "--parent", "bank")
    ok(run, "dept", "create", "nb", "宁波分行", "--parent", "bank")
    ok(run, "dept", "create", "xihu", "西湖支行", "--parent", "hz")
    assert (
        ok(run, "dept", "move", "xihu", "--parent", "nb")
        == "Department 'xihu' is now under 'nb'.\n"
    )
    ok(run, "dept", "rename", "nb", "宁波")
    assert ok(run, "dept", "list").splitlines() == [
        "CODE      NAME      PARENT",
        "bank      示范银行",
        "  hz      杭州分行  bank",
        "  nb      宁波      bank",
        "    xihu  西湖支行  nb",
    ]

    ok(run, "user", "add-to-dept", "wang", "hz")
    ok(run, "user", "add-to-dept", "wang", "xihu", "--primary")
    ok(run, "user", "set-primary-dept", "wang", "hz")
    ok(run, "user", "remove-from-dept", "wang", "xihu")
    assert "departments: hz (primary)" in ok(run, "user", "show", "wang")

    # Refusals: a clean message with its pointer, exit 1, nothing written.
    before = audit_rows(engine)
    assert "/parent: is the department or below it" in refused(
        run, "dept", "move", "bank", "--parent", "xihu"
    )
    assert "/code: has 2 sub-department(s)" in refused(run, "dept", "delete", "bank")
    assert "/code: a code is 1..64" in refused(run, "dept", "create", "bad code", "x")
    assert "There is no user 'ghost'" in refused(run, "user", "add-to-dept", "ghost", "hz")
    assert "exactly one of --parent CODE and --root" in run("dept", "move", "hz").output
    assert audit_rows(engine) == before

    ok(run, "dept", "delete", "xihu")
    with engine.connect() as conn:
        assert "xihu" not in set(conn.execute(sa.select(department_table.c.code)).scalars())
        assert [m.code for m in user_departments(conn, 1)] == ["hz"]
    trail = audit_rows(engine)
    assert {actor for actor, *_ in trail} == {None}  # the system
    assert [(e, k, a) for _, e, k, a in trail if e == "department"][-3:] == [
        ("department", "xihu", "move"),
        ("department", "nb", "rename"),
        ("department", "xihu", "delete"),
    ]


def test_roles_grants_scopes_restrictions_and_audit(run: Run, engine: sa.Engine) -> None:
    ok(run, "role", "create", "teller", "柜员")
    ok(run, "role", "create", "head", "行长", "--description", "branch head")
    ok(run, "role", "update", "teller", "--description", "front desk")
    assert ok(run, "role", "list").splitlines()[1:] == [
        "head    行长  branch head",
        "teller  柜员  front desk",
    ]
    assert ok(run, "role", "assign", "wang", "teller") == "wang now holds role 'teller'.\n"
    assert ok(run, "role", "assign", "wang", "teller") == "wang already held role 'teller'.\n"
    ok(run, "role", "inherit", "head", "teller")
    assert "would be a cycle" in refused(run, "role", "inherit", "teller", "head")

    scope = json.dumps({"field": "tier", "op": "eq", "value": "mass"})
    ok(run, "scope", "set", "customer", "mass", scope)
    out = ok(
        run, "role", "grant", "teller", "customer", "read", "update",
        "--field", "*=read", "--cap", "id_number=mask",
        "--scope", "read=own", "--scope", "read=mass", "--deny", "export",
    )  # fmt: skip
    assert out.splitlines()[-1] == "7 line(s) added."
    assert "added  p, role:teller, form:customer, export, deny" in out
    shown = ok(run, "role", "show", "teller")
    assert json.loads(shown)["grants"]["customer"] == {
        "actions": ["read", "update"],
        "deny": ["export"],
        "fields": {"*": "read"},
        "field_caps": {"id_number": "mask"},
        "scopes": {"read": ["mass", "own"]},
    }
    assert "in use by 1 subject(s)" in refused(run, "scope", "delete", "customer", "mass")
    assert "customer  mass  " in ok(run, "scope", "list")

    lines, version = _policy_state(engine)
    message = refused(run, "role", "grant", "teller", "customer", "fly", "--field", "nope=read")
    assert "/actions/0: unknown action 'fly'" in message
    assert "/fields/nope: unknown field 'nope'" in message
    assert "expected NAME=VALUE" in run("role", "grant", "teller", "customer", "--cap", "x").output
    assert "/condition" in refused(run, "scope", "set", "customer", "bad", "{not json")
    assert _policy_state(engine) == (lines, version)

    out = ok(run, "role", "revoke", "teller", "customer", "update", "--scope", "read=mass")
    assert out.splitlines()[-1] == "2 line(s) removed."
    ok(run, "scope", "delete", "customer", "mass")

    private = json.dumps({"not": {"field": "tier", "op": "eq", "value": "private"}})
    ok(run, "restriction", "set", "customer", "no_private", private, "--exempt", "head")
    assert ok(run, "restriction", "list").splitlines()[1].endswith("head")
    ok(run, "restriction", "delete", "customer", "no_private")
    assert ok(run, "restriction", "list") == "No restrictions.\n"

    ok(run, "role", "unassign", "wang", "teller")
    assert "does not hold role" in refused(run, "role", "unassign", "wang", "teller")
    assert ok(run, "role", "delete", "teller") == "Deleted role 'teller' and 6 policy line(s).\n"
    with engine.connect() as conn:
        assert load_policy(conn).g == ()

    listing = ok(run, "audit", "list", "--entity", "role", "--limit", "2").splitlines()
    assert listing[0].split() == ["AT", "(UTC)", "ACTOR", "ENTITY", "KEY", "ACTION", "CHANGE"]
    assert [row.split()[2:6] for row in listing[1:]] == [
        ["-", "role", "teller", "delete"],
        ["-", "role", "teller", "update"],
    ]
    assert "delete" in listing[1] and '"key": "teller"' in listing[1]
    assert ok(run, "audit", "list", "--entity", "nothing") == "No entries.\n"


def test_user_update(run: Run, engine: sa.Engine) -> None:
    assert ok(run, "user", "update", "li", "--display-name", "李四", "--inactive") == (
        "li: 李四 (inactive)\n"
    )
    assert ok(run, "user", "update", "li", "--active", "--superuser") == "li: 李四 (superuser)\n"
    assert ok(run, "audit", "list", "--entity", "user").count(" user ") == 2


def _policy_state(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        lines = conn.execute(sa.select(sa.func.count()).select_from(casbin_rule_table))
        return int(lines.scalar_one()), policy_version(conn)
