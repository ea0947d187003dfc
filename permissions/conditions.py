"""Structured conditions over a form's fields: data scopes and restrictions.

A condition is JSON, never code::

    {"all": [c, ...]}   {"any": [c, ...]}   {"not": c}
    {"field": "tier", "op": "in", "value": ["mass", "mid"]}
    {"field": "branch", "op": "eq", "value": {"user": "branch"}}
    {"field": "dept_id", "op": "in", "value": {"user": "dept_ids"}}
    {"field": "closed_on", "op": "isnull", "value": true}

``value`` is a literal checked against the field's type, or a user variable:
``{"user": "id"}``, ``{"user": "dept_ids"}`` or ``{"user": "<attribute>"}``.
Operators: ``eq ne in nin lt lte gt gte isnull``; ``lt``/``gt``... only on
numbers, dates and times (text order depends on the database's collation,
so SQL and Python would disagree). Besides form fields, the system columns
``id owner_id dept_id created_by updated_by`` may be named.

Lifecycle: :func:`parse_condition` validates a document against a form
definition (every problem at once, each at its JSON pointer);
:func:`bind` substitutes a user's values and folds constants, giving a
user-free tree; :func:`to_sql` turns that into a SQLAlchemy clause for the
form's table and :func:`evaluate` evaluates it in Python on a record. The
two agree by construction (two-valued logic: a comparison with a NULL field
or a missing user value is *false*, on both sides; the property test in
tests/permissions/test_conditions.py checks it on both databases).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import sqlalchemy as sa
from jsonschema import Draft202012Validator
from sqlalchemy.sql.elements import ColumnElement

from engine.errors import ErrorDetail, RecordValidationError
from engine.forms.definition import Field, FormDefinition
from engine.forms.fieldtypes import FIELD_TYPES, ComputedType, FieldType


class PolicyError(RecordValidationError):
    """A policy line, scope or restriction is malformed; nothing was changed.

    A subclass of the engine's validation error, so the edge maps it to 422.
    """

    title = "Invalid policy"


OPS = frozenset({"eq", "ne", "in", "nin", "lt", "lte", "gt", "gte", "isnull"})
ORDER = frozenset({"lt", "lte", "gt", "gte"})
ORDERED_TYPES = frozenset({"integer", "decimal", "money", "date", "datetime"})
# Column-less or JSON fields have no comparable value.
UNCOMPARABLE_TYPES = frozenset({"subtable", "multi_select"})
SYSTEM_FIELDS: Mapping[str, str] = {
    "id": "integer",
    "owner_id": "user",
    "dept_id": "department",
    "created_by": "user",
    "updated_by": "user",
}
USER_ID, USER_DEPTS = "id", "dept_ids"
MAX_DEPTH = 16
MAX_NODES = 200
MAX_LIST = 1000


@dataclass(frozen=True)
class UserRef:
    """A user variable: ``id``, ``dept_ids`` or an attribute name."""

    name: str


@dataclass(frozen=True)
class Leaf:
    column: str
    type: FieldType
    prop: Mapping[str, Any]
    op: str
    # A coerced literal (tuple for in/nin, bool for isnull), or a UserRef
    # until bound.
    value: Any


@dataclass(frozen=True)
class All:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


@dataclass(frozen=True)
class Const:
    value: bool


@dataclass(frozen=True)
class DeptTree:
    """``dept_id`` in one of these departments or any department below them."""

    roots: frozenset[int]


Condition: TypeAlias = Leaf | All | AnyOf | Not | Const | DeptTree

TRUE, FALSE = Const(True), Const(False)


# --------------------------------------------------------------------------- parsing


def _effective_type(f: Field) -> FieldType:
    t = f.type
    return t.result(f.prop) if isinstance(t, ComputedType) else t


def _field_type(definition: FormDefinition, key: str) -> tuple[FieldType, Mapping[str, Any]] | None:
    if key in SYSTEM_FIELDS:
        return FIELD_TYPES[SYSTEM_FIELDS[key]], {}
    f = definition.field(key)
    if f is None or f.column is None:
        return None
    return _effective_type(f), f.prop


def allowed_ops(ftype: FieldType) -> frozenset[str]:
    if ftype.name in UNCOMPARABLE_TYPES:
        return frozenset({"isnull"})
    ops = set(ftype.filter_ops & OPS) | {"isnull"}
    if "in" in ops:
        ops.add("nin")
    if ftype.name not in ORDERED_TYPES:
        ops -= ORDER
    return frozenset(ops)


def coerce(ftype: FieldType, prop: Mapping[str, Any], value: Any) -> tuple[Any, str | None]:
    """``value`` as the Python value the field's column holds, or a problem."""
    if value is None:
        return None, "must not be null (use op isnull)"
    if isinstance(value, (dict, list)):
        return None, f"must be a single {ftype.name} value"
    errors = list(_validator(ftype, prop).iter_errors(value))
    if errors:
        return None, f"is not a valid {ftype.name} value: {errors[0].message}"
    if (problem := ftype.check(value, prop)) is not None:
        return None, problem
    return ftype.to_python(value, prop), None


_VALIDATORS: dict[tuple[str, str], Draft202012Validator] = {}


def _validator(ftype: FieldType, prop: Mapping[str, Any]) -> Draft202012Validator:
    fragment = ftype.fragment(prop)
    key = (ftype.name, json.dumps(fragment, sort_keys=True, default=str))
    if (v := _VALIDATORS.get(key)) is None:
        v = _VALIDATORS[key] = Draft202012Validator(fragment)
    return v


def parse_condition(document: Any, definition: FormDefinition, *, pointer: str = "") -> Condition:
    """Validate ``document`` against ``definition``; :class:`PolicyError` lists every problem."""
    problems: list[ErrorDetail] = []
    counter = [0]
    cond = _parse(document, definition, pointer, problems, 0, counter)
    if problems:
        raise PolicyError(f"The condition for form {definition.key!r} is not valid.", problems)
    return cond


def _parse(
    doc: Any,
    definition: FormDefinition,
    ptr: str,
    problems: list[ErrorDetail],
    depth: int,
    counter: list[int],
) -> Condition:
    counter[0] += 1
    if depth > MAX_DEPTH or counter[0] > MAX_NODES:
        problems.append(ErrorDetail(ptr, "the condition is too large or too deeply nested"))
        return FALSE
    if not isinstance(doc, Mapping):
        problems.append(ErrorDetail(ptr, "a condition must be an object"))
        return FALSE
    for group, cls in (("all", All), ("any", AnyOf)):
        if group in doc:
            if set(doc) != {group}:
                problems.append(ErrorDetail(ptr, f"'{group}' must be the only key"))
                return FALSE
            items = doc[group]
            if not isinstance(items, list) or not items:
                problems.append(ErrorDetail(f"{ptr}/{group}", "must be a non-empty list"))
                return FALSE
            return cls(
                tuple(
                    _parse(x, definition, f"{ptr}/{group}/{i}", problems, depth + 1, counter)
                    for i, x in enumerate(items)
                )
            )
    if "not" in doc:
        if set(doc) != {"not"}:
            problems.append(ErrorDetail(ptr, "'not' must be the only key"))
            return FALSE
        return Not(_parse(doc["not"], definition, f"{ptr}/not", problems, depth + 1, counter))
    return _parse_leaf(doc, definition, ptr, problems)


def _parse_leaf(
    doc: Mapping[str, Any], definition: FormDefinition, ptr: str, problems: list[ErrorDetail]
) -> Condition:
    extra = set(doc) - {"field", "op", "value"}
    if extra or not {"field", "op"} <= set(doc):
        problems.append(
            ErrorDetail(
                ptr, "a condition is {'all'|'any': [...]}, {'not': ...} or {field, op, value}"
            )
        )
        return FALSE
    key, op = doc["field"], doc["op"]
    found = _field_type(definition, key) if isinstance(key, str) else None
    if found is None:
        problems.append(
            ErrorDetail(f"{ptr}/field", f"form {definition.key!r} has no comparable field {key!r}")
        )
        return FALSE
    ftype, prop = found
    if op not in allowed_ops(ftype):
        ops = ", ".join(sorted(allowed_ops(ftype)))
        problems.append(
            ErrorDetail(f"{ptr}/op", f"{op!r} does not apply to a {ftype.name} field; use {ops}")
        )
        return FALSE
    vptr = f"{ptr}/value"
    if "value" not in doc:
        problems.append(ErrorDetail(vptr, "a value is required"))
        return FALSE
    value = doc["value"]
    if op == "isnull":
        if not isinstance(value, bool):
            problems.append(ErrorDetail(vptr, "isnull takes true or false"))
            return FALSE
        return Leaf(key, ftype, prop, op, value)
    if isinstance(value, Mapping):
        if set(value) != {"user"} or not isinstance(value["user"], str) or not value["user"]:
            problems.append(ErrorDetail(vptr, "a variable is {'user': 'id'|'dept_ids'|name}"))
            return FALSE
        name = value["user"]
        if name == USER_DEPTS and op not in {"in", "nin"}:
            problems.append(ErrorDetail(vptr, "user.dept_ids is a list: use in or nin"))
            return FALSE
        return Leaf(key, ftype, prop, op, UserRef(name))
    if op in {"in", "nin"}:
        if not isinstance(value, list) or len(value) > MAX_LIST:
            problems.append(ErrorDetail(vptr, f"{op} takes a list of at most {MAX_LIST} values"))
            return FALSE
        coerced = []
        for i, v in enumerate(value):
            c, why = coerce(ftype, prop, v)
            if why is not None:
                problems.append(ErrorDetail(f"{vptr}/{i}", why))
            coerced.append(c)
        return Leaf(key, ftype, prop, op, tuple(coerced))
    c, why = coerce(ftype, prop, value)
    if why is not None:
        problems.append(ErrorDetail(vptr, why))
        return FALSE
    return Leaf(key, ftype, prop, op, c)


# --------------------------------------------------------------------------- binding


@dataclass(frozen=True)
class Subject:
    """What conditions may read of the user (see compile.UserContext)."""

    user_id: int
    dept_ids: frozenset[int]
    attributes: Mapping[str, Any]

    def lookup(self, name: str) -> Any:
        if name == USER_ID:
            return self.user_id
        if name == USER_DEPTS:
            return sorted(self.dept_ids)
        return self.attributes.get(name)


def bind(cond: Condition, user: Subject) -> Condition:
    """Substitute the user's values and fold constants."""
    if isinstance(cond, Leaf):
        if not isinstance(cond.value, UserRef):
            return _fold_leaf(cond)
        raw = user.lookup(cond.value.name)
        if cond.op in {"in", "nin"}:
            values = raw if isinstance(raw, (list, tuple, set, frozenset)) else [raw]
            good = []
            for v in values:
                c, why = coerce(cond.type, cond.prop, v)
                if why is None:
                    good.append(c)
            return _fold_leaf(Leaf(cond.column, cond.type, cond.prop, cond.op, tuple(good)))
        if isinstance(raw, (list, tuple, set, frozenset)):
            return FALSE  # a list where one value is meant: fail closed
        c, why = coerce(cond.type, cond.prop, raw) if raw is not None else (None, "missing")
        if why is not None:
            return FALSE  # a missing or ill-typed user value matches nothing
        return Leaf(cond.column, cond.type, cond.prop, cond.op, c)
    if isinstance(cond, All):
        return all_of(bind(c, user) for c in cond.items)
    if isinstance(cond, AnyOf):
        return any_of(bind(c, user) for c in cond.items)
    if isinstance(cond, Not):
        inner = bind(cond.item, user)
        return Const(not inner.value) if isinstance(inner, Const) else Not(inner)
    return cond


def _fold_leaf(leaf: Leaf) -> Condition:
    if leaf.op == "in" and not leaf.value:
        return FALSE
    return leaf


def all_of(items: Iterable[Condition]) -> Condition:
    out: list[Condition] = []
    for c in items:
        if c == FALSE:
            return FALSE
        if c == TRUE:
            continue
        out.extend(c.items if isinstance(c, All) else (c,))
    if not out:
        return TRUE
    return out[0] if len(out) == 1 else All(tuple(out))


def any_of(items: Iterable[Condition]) -> Condition:
    out: list[Condition] = []
    for c in items:
        if c == TRUE:
            return TRUE
        if c == FALSE:
            continue
        out.extend(c.items if isinstance(c, AnyOf) else (c,))
    if not out:
        return FALSE
    return out[0] if len(out) == 1 else AnyOf(tuple(out))


# --------------------------------------------------------------------------- SQL

DeptTreeSQL = Callable[[ColumnElement[Any], Sequence[int]], ColumnElement[bool]]


def to_sql(
    cond: Condition, table: sa.Table, *, dept_tree: DeptTreeSQL | None = None
) -> ColumnElement[bool]:
    """A WHERE clause over ``table`` for a bound condition (no user variables left)."""
    if isinstance(cond, Const):
        return sa.true() if cond.value else sa.false()
    if isinstance(cond, All):
        return sa.and_(*(to_sql(c, table, dept_tree=dept_tree) for c in cond.items))
    if isinstance(cond, AnyOf):
        return sa.or_(*(to_sql(c, table, dept_tree=dept_tree) for c in cond.items))
    if isinstance(cond, Not):
        return sa.not_(to_sql(cond.item, table, dept_tree=dept_tree))
    if isinstance(cond, DeptTree):
        if dept_tree is None:
            raise ValueError("a dept_tree condition needs the organisation's SQL helper")
        if not cond.roots:
            return sa.false()
        return dept_tree(table.c.dept_id, sorted(cond.roots))
    col = table.c[cond.column]
    op, v = cond.op, cond.value
    if isinstance(v, UserRef):
        raise ValueError("bind() the condition to a user before compiling it")
    if op == "isnull":
        return col.is_(None) if v else col.is_not(None)
    # Two-valued: "col IS NOT NULL AND ..." is false, never NULL, for a NULL
    # column, so NOT and Python's evaluation agree.
    test: ColumnElement[bool]
    match op:
        case "eq":
            test = col == v
        case "ne":
            test = col != v
        case "in":
            test = col.in_(list(v))
        case "nin":
            if not v:
                return col.is_not(None)
            test = col.not_in(list(v))
        case "lt":
            test = col < v
        case "lte":
            test = col <= v
        case "gt":
            test = col > v
        case "gte":
            test = col >= v
        case _:  # pragma: no cover - parse_condition admits only OPS
            raise AssertionError(op)
    return sa.and_(col.is_not(None), test)


# --------------------------------------------------------------------------- Python

InTree = Callable[[int, frozenset[int]], bool]


def evaluate(cond: Condition, record: Mapping[str, Any], *, in_tree: InTree | None = None) -> bool:
    """Evaluate a bound condition on ``record`` (column name -> value as the database returns it).

    ``in_tree(dept_id, roots)`` answers dept_tree conditions (the closure table).
    """
    if isinstance(cond, Const):
        return cond.value
    if isinstance(cond, All):
        return all(evaluate(c, record, in_tree=in_tree) for c in cond.items)
    if isinstance(cond, AnyOf):
        return any(evaluate(c, record, in_tree=in_tree) for c in cond.items)
    if isinstance(cond, Not):
        return not evaluate(cond.item, record, in_tree=in_tree)
    if isinstance(cond, DeptTree):
        if in_tree is None:
            raise ValueError("a dept_tree condition needs the department closure")
        dept = record.get("dept_id")
        return dept is not None and bool(cond.roots) and in_tree(dept, cond.roots)
    x, op, v = record.get(cond.column), cond.op, cond.value
    if isinstance(v, UserRef):
        raise ValueError("bind() the condition to a user before evaluating it")
    if op == "isnull":
        return (x is None) is bool(v)
    if x is None:
        return False
    match op:
        case "eq":
            return bool(x == v)
        case "ne":
            return bool(x != v)
        case "in":
            return x in v
        case "nin":
            return x not in v
        case "lt":
            return bool(x < v)
        case "lte":
            return bool(x <= v)
        case "gt":
            return bool(x > v)
        case "gte":
            return bool(x >= v)
    raise AssertionError(op)  # pragma: no cover


def describe(cond: Condition) -> str:
    """A short human-readable rendering, for explain output."""
    if isinstance(cond, Const):
        return "true" if cond.value else "false"
    if isinstance(cond, All):
        return "(" + " and ".join(describe(c) for c in cond.items) + ")"
    if isinstance(cond, AnyOf):
        return "(" + " or ".join(describe(c) for c in cond.items) + ")"
    if isinstance(cond, Not):
        return f"not {describe(cond.item)}"
    if isinstance(cond, DeptTree):
        return f"dept_id in tree{sorted(cond.roots)}"
    v = cond.value
    shown = (
        f"user.{v.name}" if isinstance(v, UserRef) else repr(list(v) if isinstance(v, tuple) else v)
    )
    return f"{cond.column} {cond.op} {shown}"
