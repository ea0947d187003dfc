"""Structured conditions: validation with pointers, and SQL == Python on both backends."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.catalog import load_schema
from engine.forms.definition import FormDefinition, parse_definition
from engine.publish.service import publish
from engine.system import department_closure_table, user_table
from permissions import org
from permissions.conditions import (
    FALSE,
    DeptTree,
    PolicyError,
    Subject,
    any_of,
    bind,
    evaluate,
    parse_condition,
    to_sql,
)
from permissions.org import dept_tree_condition

NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
TIERS = ["mass", "mid", "high", "private"]
BRANCHES = ["BJ", "SH", "GZ"]

DOCUMENT = {
    "key": "item",
    "schema": {
        "properties": {
            "tier": {"type": "string", "enum": TIERS},
            "branch": {"type": "string", "maxLength": 20},
            "score": {"type": "integer"},
            "amount": {"x-type": "decimal", "x-precision": 10, "x-scale": 2},
            "active": {"type": "boolean"},
            "opened_on": {"type": "string", "format": "date"},
            "tags": {"type": "array", "items": {"enum": ["a", "b"]}},
        }
    },
}


@pytest.fixture(scope="module")
def item() -> FormDefinition:
    return parse_definition(DOCUMENT)


def problems(doc: Any, form: FormDefinition) -> list[tuple[str, str]]:
    with pytest.raises(PolicyError) as e:
        parse_condition(doc, form, pointer="/condition")
    return [(d.pointer, d.message) for d in e.value.errors]


def test_every_problem_is_reported_at_its_pointer(item: FormDefinition) -> None:
    doc = {
        "all": [
            {"field": "nope", "op": "eq", "value": 1},
            {"field": "tier", "op": "lt", "value": "mass"},
            {"field": "tier", "op": "in", "value": ["mass", "platinum"]},
            {"any": []},
            {"not": {"field": "score", "op": "eq", "value": "ten"}},
            {"field": "dept_id", "op": "eq", "value": {"user": "dept_ids"}},
            {"field": "active", "op": "isnull", "value": "yes"},
            {"field": "tags", "op": "eq", "value": "a"},
        ]
    }
    found = problems(doc, item)
    pointers = [p for p, _ in found]
    assert pointers == [
        "/condition/all/0/field",
        "/condition/all/1/op",
        "/condition/all/2/value/1",
        "/condition/all/3/any",
        "/condition/all/4/not/value",
        "/condition/all/5/value",
        "/condition/all/6/value",
        "/condition/all/7/op",
    ]
    assert "no comparable field 'nope'" in found[0][1]
    assert "'lt' does not apply to a select field" in found[1][1]


def test_no_code_only_structure(item: FormDefinition) -> None:
    assert problems("tier == 'mass'", item) == [("/condition", "a condition must be an object")]
    assert problems({"field": "tier", "op": "eq", "value": "mass", "x": 1}, item)[0][0] == (
        "/condition"
    )
    deep: dict[str, Any] = {"field": "score", "op": "eq", "value": 1}
    for _ in range(40):
        deep = {"not": deep}
    assert "too large or too deeply nested" in problems(deep, item)[0][1]


def test_user_variables_bind_and_fail_closed(item: FormDefinition) -> None:
    cond = parse_condition({"field": "branch", "op": "eq", "value": {"user": "branch"}}, item)
    bound = bind(cond, Subject(1, frozenset(), {"branch": "BJ"}))
    assert evaluate(bound, {"branch": "BJ"}) and not evaluate(bound, {"branch": "SH"})
    # Missing or ill-typed attribute: matches nothing, in SQL and in Python.
    for attrs in ({}, {"branch": 5}, {"branch": ["BJ"]}):
        assert bind(cond, Subject(1, frozenset(), attrs)) == FALSE


# --------------------------------------------------------------------------- property


def leaf_docs() -> st.SearchStrategy[dict[str, Any]]:
    def leaf(field: str, ops: list[str], value: st.SearchStrategy[Any]) -> Any:
        return st.builds(
            lambda op, v: {"field": field, "op": op, "value": v}, st.sampled_from(ops), value
        )

    def listed(s: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.lists(s, max_size=3)

    isnull = st.builds(
        lambda f, v: {"field": f, "op": "isnull", "value": v},
        st.sampled_from(["tier", "branch", "score", "amount", "active", "opened_on", "dept_id"]),
        st.booleans(),
    )
    decimals = st.decimals(min_value=-100, max_value=100, places=2).map(str)
    dates = st.dates(dt.date(2024, 1, 1), dt.date(2024, 1, 10)).map(dt.date.isoformat)
    return st.one_of(
        leaf("tier", ["eq", "ne"], st.sampled_from(TIERS) | st.just({"user": "tier"})),
        leaf("tier", ["in", "nin"], listed(st.sampled_from(TIERS))),
        leaf("branch", ["eq", "ne"], st.sampled_from(BRANCHES) | st.just({"user": "branch"})),
        leaf("branch", ["in", "nin"], listed(st.sampled_from(BRANCHES))),
        leaf("score", ["eq", "ne", "lt", "lte", "gt", "gte"], st.integers(-3, 3)),
        leaf("score", ["lt", "gte"], st.just({"user": "level"})),
        leaf("amount", ["eq", "lt", "gte"], decimals),
        leaf("active", ["eq", "ne"], st.booleans()),
        leaf("opened_on", ["lt", "gte", "eq"], dates),
        leaf("owner_id", ["eq", "ne"], st.integers(1, 3) | st.just({"user": "id"})),
        leaf("dept_id", ["in", "nin"], st.just({"user": "dept_ids"})),
        isnull,
    )


conditions = st.recursive(
    leaf_docs(),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"all": xs}),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"any": xs}),
        inner.map(lambda x: {"not": x}),
    ),
    max_leaves=6,
)

records = st.lists(
    st.fixed_dictionaries(
        {
            "tier": st.none() | st.sampled_from(TIERS),
            "branch": st.none() | st.sampled_from(BRANCHES),
            "score": st.none() | st.integers(-3, 3),
            "amount": st.none() | st.decimals(min_value=-100, max_value=100, places=2),
            "active": st.none() | st.booleans(),
            "opened_on": st.none() | st.dates(dt.date(2024, 1, 1), dt.date(2024, 1, 10)),
            "owner_id": st.none() | st.integers(1, 3),
            "dept": st.none() | st.sampled_from(["BANK", "HZ", "NB", "XH"]),
        }
    ),
    max_size=10,
)

attributes = st.fixed_dictionaries(
    {},
    optional={
        "branch": st.sampled_from([*BRANCHES, 7]),
        "tier": st.sampled_from(TIERS),
        "level": st.integers(-3, 3),
    },
)


@pytest.fixture
def world(connection: sa.Connection, item: FormDefinition) -> dict[str, Any]:
    connection.execute(
        sa.insert(user_table),
        [
            {"id": i, "username": f"u{i}", "display_name": f"U{i}", "created_at": NOW}
            for i in (1, 2, 3)
        ],
    )
    depts = {
        code: org.create_department(
            connection, code=code, name=code, parent_code=parent, actor_id=None, now=NOW
        )
        for code, parent in [("BANK", None), ("HZ", "BANK"), ("NB", "BANK"), ("XH", "HZ")]
    }
    publish(connection, item, now=NOW)
    table = load_schema(connection).form("item").table
    closure = {
        (a, d)
        for a, d in connection.execute(
            sa.select(
                department_closure_table.c.ancestor_id, department_closure_table.c.descendant_id
            )
        )
    }
    return {"table": table, "depts": depts, "closure": closure}


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    doc=conditions,
    rows=records,
    user_id=st.integers(1, 3),
    user_depts=st.sets(st.sampled_from(["BANK", "HZ", "NB", "XH"]), max_size=2),
    attrs=attributes,
    tree=st.booleans(),
)
def test_sql_scope_and_python_evaluation_agree(
    connection: sa.Connection,
    item: FormDefinition,
    world: dict[str, Any],
    doc: dict[str, Any],
    rows: list[dict[str, Any]],
    user_id: int,
    user_depts: set[str],
    attrs: dict[str, Any],
    tree: bool,
) -> None:
    table: sa.Table = world["table"]
    depts: dict[str, int] = world["depts"]
    closure: set[tuple[int, int]] = world["closure"]
    subject = Subject(user_id, frozenset(depts[c] for c in user_depts), attrs)
    cond = bind(parse_condition(doc, item), subject)
    if tree:  # a dept_tree scope OR'ed in, as compile does
        cond = any_of([cond, DeptTree(subject.dept_ids)])

    connection.execute(sa.delete(table))
    if rows:
        connection.execute(
            sa.insert(table),
            [
                {
                    **{k: v for k, v in r.items() if k != "dept"},
                    "dept_id": depts[r["dept"]] if r["dept"] else None,
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for r in rows
            ],
        )
    in_sql = set(
        connection.execute(
            sa.select(table.c.id).where(to_sql(cond, table, dept_tree=dept_tree_condition))
        ).scalars()
    )
    stored = connection.execute(sa.select(table)).mappings().all()

    def in_tree(dept: int, roots: frozenset[int]) -> bool:
        return any((r, dept) in closure for r in roots)

    in_python = {r["id"] for r in stored if evaluate(cond, r, in_tree=in_tree)}
    assert in_sql == in_python, (doc, attrs)
    assert all(isinstance(r["amount"], decimal.Decimal | None) for r in stored)
