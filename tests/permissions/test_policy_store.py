"""The policy store: checked lines, one version bump per change, one query to load."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
import sqlalchemy as sa

from engine.forms.definition import parse_definition
from engine.system import admin_audit_table, casbin_rule_table
from permissions.conditions import PolicyError
from permissions.org import policy_version
from permissions.policy import PolicyStore, load_policy

CountStatements = Callable[[sa.Engine | sa.Connection], AbstractContextManager[Any]]
NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
FORM = parse_definition(
    {"key": "customer", "schema": {"properties": {"tier": {"type": "string", "enum": ["a", "b"]}}}}
)


def test_each_change_bumps_the_version_once(connection: sa.Connection) -> None:
    s = PolicyStore(connection, actor_id=9, now=NOW)
    v0 = policy_version(connection)
    assert s.set_action("teller", "customer", "read")
    assert policy_version(connection) == v0 + 1
    assert not s.set_action("teller", "customer", "read")  # already there: no change
    assert policy_version(connection) == v0 + 1
    assert s.assign_role(5, "teller")
    assert s.inherit("manager", "teller")
    assert s.set_field("teller", "customer", "*", "read")
    assert s.set_scope("teller", "customer", "read", "dept_tree")
    assert s.exempt("wealth", "customer", "private")
    s.define_scope(FORM, "tier_a", {"field": "tier", "op": "eq", "value": "a"})
    s.define_scope(FORM, "tier_a", {"field": "tier", "op": "eq", "value": "a"})  # same: no-op
    s.define_restriction(FORM, "private", {"field": "tier", "op": "ne", "value": "b"})
    assert policy_version(connection) == v0 + 8
    assert s.unassign_role(5, "teller")
    assert not s.unassign_role(5, "teller")
    assert s.drop_scope("customer", "tier_a")
    assert policy_version(connection) == v0 + 10
    audit = connection.execute(
        sa.select(admin_audit_table.c.entity_key, admin_audit_table.c.action)
        .where(admin_audit_table.c.entity == "policy", admin_audit_table.c.actor_id == 9)
        .order_by(admin_audit_table.c.id)
    ).all()
    assert len(audit) == 10
    assert audit[0] == ("p, role:teller, form:customer, read, allow", "add")
    assert audit[-1] == ("scope, customer, tier_a", "remove")


def test_loading_is_one_query(connection: sa.Connection, count_statements: CountStatements) -> None:
    s = PolicyStore(connection, actor_id=None, now=NOW)
    s.set_action("teller", "customer", "read", "deny")
    s.assign_role(5, "teller")
    long_branch = {"any": [{"field": "tier", "op": "eq", "value": "a"}] * 12}
    s.define_scope(FORM, "wide", long_branch)  # longer than one 255-character column
    with count_statements(connection) as log:
        lines = load_policy(connection)
    assert log.count == 1
    assert lines.p == (("role:teller", "form:customer", "read", "deny"),)
    assert lines.g == (("user:5", "role:teller"),)
    assert lines.scopes == {("customer", "wide"): long_branch}
    stored = connection.execute(
        sa.select(casbin_rule_table.c.v2, casbin_rule_table.c.v3).where(
            casbin_rule_table.c.ptype == "scope"
        )
    ).one()
    assert len(stored.v2) == 255 and stored.v3


def test_bad_lines_are_refused_with_pointers(connection: sa.Connection) -> None:
    s = PolicyStore(connection, actor_id=None, now=NOW)
    v0 = policy_version(connection)
    with pytest.raises(PolicyError) as e:
        s.add_line("admin", "form:Customer", "view", "maybe")  # type: ignore[arg-type]
    assert [d.pointer for d in e.value.errors] == ["/subject", "/effect", "/object", "/action"]
    with pytest.raises(PolicyError):
        s.set_field("teller", "customer", "phone", "edit")
    with pytest.raises(PolicyError):
        s.set_scope("teller", "customer", "browse", "own")
    with pytest.raises(PolicyError):
        s.inherit("teller", "teller")
    with pytest.raises(PolicyError) as e:
        s.define_scope(FORM, "all", {"field": "tier", "op": "eq", "value": "a"})
    assert e.value.errors[0].pointer == "/name"
    with pytest.raises(PolicyError) as e:
        s.define_scope(FORM, "x", {"field": "tier", "op": "eq", "value": "zzz"})
    assert e.value.errors[0].pointer == "/condition/value"
    with pytest.raises(PolicyError) as e:
        s.define_restriction(
            FORM, "big", {"any": [{"field": "tier", "op": "isnull", "value": True}] * 40}
        )
    assert "too long" in e.value.message
    assert policy_version(connection) == v0  # nothing was written
