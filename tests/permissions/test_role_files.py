"""roles.json in app folders: pointers, idempotent import, exact replacement, round trip."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.apps import import_app
from engine.system import admin_audit_table, casbin_rule_table, user_table
from permissions import org
from permissions.apps import ROLES_FILE, RoleFileError, export_roles, import_roles
from permissions.compile import AccessCompiler, Level, UserContext
from permissions.policy import PolicyStore

REPO = Path(__file__).resolve().parents[2]
BANK = REPO / "examples" / "bank_crm"
NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
BANK_ROLES = [
    "branch_head",
    "call_center_agent",
    "hq_admin",
    "outsourced_collector",
    "relationship_manager",
    "risk_officer",
    "wealth_team",
]


def bank_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((BANK / ROLES_FILE).read_text(encoding="utf-8"))
    return document


def write_app(tmp_path: Path, document: Any) -> Path:
    app = tmp_path / "app"
    app.mkdir(exist_ok=True)
    (app / ROLES_FILE).write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return app


def rules(conn: sa.Connection) -> set[tuple[Any, ...]]:
    r = casbin_rule_table
    return set(conn.execute(sa.select(r.c.ptype, r.c.v0, r.c.v1, r.c.v2, r.c.v3, r.c.v4, r.c.v5)))


def audit_rows(conn: sa.Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(admin_audit_table)).scalar_one())


def role_index(document: dict[str, Any], key: str) -> int:
    return next(i for i, r in enumerate(document["roles"]) if r["key"] == key)


@pytest.fixture
def bank(connection: sa.Connection) -> sa.Connection:
    import_app(connection, BANK)
    return connection


def test_bank_roles_import_and_reimport_changes_nothing(bank: sa.Connection) -> None:
    before = org.policy_version(bank)
    result = import_roles(bank, BANK, now=NOW)
    assert result is not None and result.roles_created == 7 and result.lines_added > 0
    assert [r.key for r in org.list_roles(bank)] == BANK_ROLES
    assert {r.key: r.name for r in org.list_roles(bank)}["relationship_manager"] == "客户经理"
    version, lines, audited = org.policy_version(bank), rules(bank), audit_rows(bank)
    assert version > before

    again = import_roles(bank, BANK, now=NOW)
    assert again is not None and not again.changed
    assert org.policy_version(bank) == version
    assert rules(bank) == lines
    assert audit_rows(bank) == audited


def test_app_without_roles_file_imports_nothing(bank: sa.Connection, tmp_path: Path) -> None:
    assert import_roles(bank, tmp_path) is None
    assert export_roles(bank, tmp_path / "out") is None
    assert not (tmp_path / "out" / ROLES_FILE).exists()


def test_round_trip_is_byte_identical(bank: sa.Connection, tmp_path: Path) -> None:
    import_roles(bank, BANK, now=NOW)
    result = export_roles(bank, tmp_path)
    assert result is not None and result.changed and result.roles == 7 and result.skipped == []
    assert (tmp_path / ROLES_FILE).read_bytes() == (BANK / ROLES_FILE).read_bytes()
    again = export_roles(bank, tmp_path)
    assert again is not None and not again.changed


def _set(doc: dict[str, Any], path: list[Any], value: Any) -> None:
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value


RM = role_index(bank_document(), "relationship_manager")
BH = role_index(bank_document(), "branch_head")

CASES = [
    # (change, expected pointer)
    (
        lambda d: _set(d, ["roles", RM, "grants", "customer", "fields", "phne"], "read"),
        f"roles.json#/roles/{RM}/grants/customer/fields/phne",
    ),
    (
        lambda d: _set(d, ["roles", RM, "grants", "custmer"], {"actions": ["read"]}),
        f"roles.json#/roles/{RM}/grants/custmer",
    ),
    (
        lambda d: _set(d, ["roles", RM, "grants", "customer", "fields", "*"], "everything"),
        f"roles.json#/roles/{RM}/grants/customer/fields/*",
    ),
    (
        lambda d: _set(d, ["roles", RM, "grants", "customer", "field_caps", "phone"], "write"),
        f"roles.json#/roles/{RM}/grants/customer/field_caps/phone",
    ),
    (
        lambda d: _set(d, ["roles", RM, "grants", "customer", "actions"], ["read", "approve"]),
        f"roles.json#/roles/{RM}/grants/customer/actions/1",
    ),
    (
        lambda d: _set(d, ["roles", RM, "grants", "customer", "scopes", "read"], "my_branch"),
        f"roles.json#/roles/{RM}/grants/customer/scopes/read",
    ),
    (
        lambda d: _set(d, ["roles", BH, "inherits"], ["relationship_mgr"]),
        f"roles.json#/roles/{BH}/inherits/0",
    ),
    (
        lambda d: _set(d, ["restrictions", 0, "exempt"], ["hq_admin", "wealth"]),
        "roles.json#/restrictions/0/exempt/1",
    ),
    (
        lambda d: _set(d, ["scopes", 0, "condition", "field"], "tierr"),
        "roles.json#/scopes/0/condition/field",
    ),
    (
        lambda d: _set(d, ["roles", RM, "key"], "Relationship Manager"),
        f"roles.json#/roles/{RM}/key",
    ),
    (
        lambda d: _set(d, ["roles", RM, "colour"], "blue"),
        f"roles.json#/roles/{RM}/colour",
    ),
]


@pytest.mark.parametrize(("change", "pointer"), CASES)
def test_each_problem_has_its_pointer_and_nothing_is_written(
    bank: sa.Connection, tmp_path: Path, change: Any, pointer: str
) -> None:
    document = bank_document()
    change(document)
    version, lines, audited = org.policy_version(bank), rules(bank), audit_rows(bank)
    with pytest.raises(RoleFileError) as caught:
        import_roles(bank, write_app(tmp_path, document), now=NOW)
    assert pointer in [e.pointer for e in caught.value.errors], caught.value.errors
    assert org.list_roles(bank) == []
    assert (org.policy_version(bank), rules(bank), audit_rows(bank)) == (version, lines, audited)


def test_every_problem_is_reported_at_once(bank: sa.Connection, tmp_path: Path) -> None:
    document = bank_document()
    for change, _ in CASES[:3]:
        change(document)
    with pytest.raises(RoleFileError) as caught:
        import_roles(bank, write_app(tmp_path, document), now=NOW)
    assert {p for _, p in CASES[:3]} <= {e.pointer for e in caught.value.errors}


def test_inheritance_cycle_is_refused(bank: sa.Connection, tmp_path: Path) -> None:
    document = bank_document()
    document["roles"][RM]["inherits"] = ["branch_head"]
    with pytest.raises(RoleFileError) as caught:
        import_roles(bank, write_app(tmp_path, document), now=NOW)
    assert any(e.pointer.endswith("/inherits") for e in caught.value.errors)


def test_broken_json_is_reported(bank: sa.Connection, tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / ROLES_FILE).write_text('{"roles": [', encoding="utf-8")
    with pytest.raises(RoleFileError) as caught:
        import_roles(bank, app, now=NOW)
    assert caught.value.errors[0].pointer == ROLES_FILE


def test_a_changed_file_replaces_exactly_the_lines_that_changed(
    bank: sa.Connection, tmp_path: Path
) -> None:
    import_roles(bank, BANK, now=NOW)
    # Lines the file does not own survive the re-import.
    bank.execute(
        sa.insert(user_table).values(id=7, username="u7", display_name="u7", created_at=NOW)
    )
    store = PolicyStore(bank, actor_id=None, now=NOW)
    store.assign_role(7, "relationship_manager")
    store.set_action("ad_hoc", "product", "read")
    before = rules(bank)

    document = bank_document()
    del document["roles"][RM]["grants"]["customer"]["field_caps"]["phone"]
    document["roles"][RM]["name"] = "客户经理 (RM)"
    version = org.policy_version(bank)
    result = import_roles(bank, write_app(tmp_path, document), now=NOW)
    assert result is not None
    assert (result.roles_updated, result.lines_added, result.lines_removed) == (1, 0, 1)
    removed = (
        "p",
        "role:relationship_manager",
        "field:customer.phone",
        "write",
        "deny",
        None,
        None,
    )
    assert before - rules(bank) == {removed}
    assert rules(bank) - before == set()
    assert org.policy_version(bank) == version + 1

    # And a scope the file no longer names is dropped, with the grants that used it.
    wealth = role_index(document, "wealth_team")
    document["roles"][wealth]["grants"]["customer"]["scopes"] = {"read": "all"}
    document["scopes"] = []
    result = import_roles(bank, write_app(tmp_path, document), now=NOW)
    assert result is not None and result.lines_removed == 3 and result.lines_added == 1
    assert not any(row[0] == "scope" for row in rules(bank))


def _user(conn: sa.Connection, user_id: int, role: str) -> UserContext:
    conn.execute(
        sa.insert(user_table).values(
            id=user_id, username=f"u{user_id}", display_name=role, created_at=NOW
        )
    )
    PolicyStore(conn, actor_id=None, now=NOW).assign_role(user_id, role)
    return UserContext(user_id=user_id)


def test_compiled_access_of_the_bank_roles(bank: sa.Connection) -> None:
    from engine.catalog import get_published

    import_roles(bank, BANK, now=NOW)
    customer = get_published(bank, "customer")
    assert customer is not None
    form = customer.definition
    compiler = AccessCompiler()

    rm = _user(bank, 11, "relationship_manager")
    read = compiler.access(bank, rm, form, "read")
    assert read.allowed
    assert read.level("phone") == Level.READ
    assert read.level("id_number") == Level.MASK
    assert read.level("name") == Level.WRITE
    assert read.explain.scopes == ("own",)
    assert [r.name for r in read.explain.restrictions if r.applied] == ["no_private_banking"]
    assert not compiler.access(bank, rm, form, "export").allowed

    agent = _user(bank, 12, "call_center_agent")
    assert compiler.access(bank, agent, form, "read").allowed
    assert compiler.access(bank, agent, form, "read").level("phone") == Level.MASK
    for key in ("customer", "holding", "interaction", "product"):
        published = get_published(bank, key)
        assert published is not None
        assert not compiler.access(bank, agent, published.definition, "export").allowed

    wealth = compiler.access(bank, _user(bank, 13, "wealth_team"), form, "read")
    assert wealth.explain.scopes == ("private_banking",)
    assert not any(r.applied for r in wealth.explain.restrictions)

    risk = compiler.access(bank, _user(bank, 14, "risk_officer"), form, "read")
    assert risk.level("id_number") == Level.READ and risk.level("name") == Level.READ
    assert not compiler.access(bank, UserContext(user_id=14), form, "update").allowed

    head = compiler.access(bank, _user(bank, 15, "branch_head"), form, "read")
    assert set(head.explain.scopes) == {"own", "dept_tree"}
    assert head.level("id_number") == Level.MASK


def test_cli_imports_and_exports_roles(empty_database_url: str, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from runtime.cli import cli

    runner = CliRunner()
    args = ["--database-url", empty_database_url]
    assert runner.invoke(cli, [*args, "db", "upgrade"]).exit_code == 0
    first = runner.invoke(cli, [*args, "app", "import", str(BANK)])
    assert first.exit_code == 0, first.output
    assert "roles.json: 7 role(s) created" in first.output
    again = runner.invoke(cli, [*args, "app", "import", str(BANK)])
    assert "roles.json: 0 role(s) created, 0 renamed, 0 line(s) added, 0 removed." in again.output
    out = tmp_path / "out"
    exported = runner.invoke(cli, [*args, "app", "export", str(out)])
    assert exported.exit_code == 0, exported.output
    assert (out / ROLES_FILE).read_bytes() == (BANK / ROLES_FILE).read_bytes()

    broken = copy.deepcopy(bank_document())
    broken["roles"][RM]["grants"]["customer"]["fields"]["phne"] = "read"
    app = write_app(tmp_path, broken)
    (app / "forms").symlink_to(BANK / "forms")
    refused = runner.invoke(cli, [*args, "app", "import", str(app)])
    assert refused.exit_code == 1
    assert f"roles.json#/roles/{RM}/grants/customer/fields/phne" in refused.output
