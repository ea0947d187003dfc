"""Listing records: filters, sort, keyset cursors and field selection.

A page is one SQL statement (plus one per selected sub-table, never one per
row). Keyset cursors treat NULL as the largest value, as PostgreSQL's
indexes do, so the same order holds on SQLite.
"""

from __future__ import annotations

import base64
import binascii
import json
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from jsonschema import Draft202012Validator
from sqlalchemy.dialects import postgresql

from engine.errors import ErrorDetail, QueryError
from engine.forms.definition import Field
from engine.forms.fieldtypes import FIELD_TYPES, INT64_MAX, INT64_MIN, TEXT_OPS, FieldType
from engine.records.codec import child_json, rows_json

FILTER_OPS = frozenset({"eq", "ne", "lt", "lte", "gt", "gte", "in", "contains", "isnull"})
MAX_IN_VALUES = 500

# System columns: their value type and whether a list may sort on them.
_SYSTEM: dict[str, tuple[FieldType, bool]] = {
    "id": (FIELD_TYPES["integer"], True),
    "version": (FIELD_TYPES["integer"], False),
    "created_at": (FIELD_TYPES["datetime"], True),
    "updated_at": (FIELD_TYPES["datetime"], True),
    "created_by": (FIELD_TYPES["user"], False),
    "updated_by": (FIELD_TYPES["user"], False),
    "owner_id": (FIELD_TYPES["user"], False),
    "dept_id": (FIELD_TYPES["department"], False),
}

# Public view for the OpenAPI generator: system columns a list can filter on.
SYSTEM_FILTERS = _SYSTEM


@dataclass(frozen=True)
class Filter:
    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class Sort:
    field: str
    descending: bool = False


@dataclass(frozen=True)
class ListQuery:
    filters: Sequence[Filter] = ()
    sort: Sequence[Sort] = ()
    limit: int = 50
    cursor: str | None = None
    offset: int | None = None
    fields: Sequence[str] | None = None


@dataclass
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Target:
    key: str
    type: FieldType
    prop: dict[str, Any]
    sortable: bool


def _target(tables_def: Any, key: str, pointer: str) -> _Target:
    if key in _SYSTEM:
        ftype, sortable = _SYSTEM[key]
        return _Target(key, ftype, {}, sortable)
    f: Field | None = tables_def.field(key)
    if f is None or f.column is None:
        raise QueryError(
            "Unknown field in query.", [ErrorDetail(pointer, f"unknown field {key!r}")]
        )
    ftype = f.type.result(f.prop) if f.type.name == "computed" else f.type  # type: ignore[attr-defined]
    return _Target(key, ftype, dict(f.prop), f.indexed and ftype.sortable)


def parse_value(target: _Target, raw: Any, pointer: str) -> Any:
    """Convert a filter value (JSON, or a string from a URL) to the column's Python type."""
    if raw is None:
        return None
    name = target.type.name
    value: Any = raw
    if isinstance(raw, str) and name in ("integer", "user", "department", "link"):
        try:
            value = int(raw)
        except ValueError:
            raise _bad(pointer, f"{target.key} needs a whole number, not {raw!r}") from None
    elif isinstance(raw, str) and name == "boolean":
        if raw.lower() not in ("true", "false", "1", "0"):
            raise _bad(pointer, f"{target.key} needs true or false, not {raw!r}")
        value = raw.lower() in ("true", "1")
    expected = _json_types(target)
    if expected and not any(_TYPE_CHECKER.is_type(value, kind) for kind in expected):
        names = " or ".join(_TYPE_NAMES.get(kind, kind) for kind in expected)
        raise _bad(pointer, f"{target.key} needs {names}, not {raw!r}")
    problem = target.type.check(value, target.prop)
    if problem is None and name in ("integer", "user", "department", "link"):
        if not isinstance(value, int) or isinstance(value, bool):
            problem = "must be a whole number"
        elif not INT64_MIN <= value <= INT64_MAX:
            # Beyond BIGINT the database itself would fail (a 500, not a 400).
            problem = "is out of range (64-bit whole numbers only)"
    if problem:
        raise _bad(pointer, f"{target.key} {problem}")
    return target.type.to_python(value, target.prop)


_TYPE_CHECKER = Draft202012Validator.TYPE_CHECKER
_TYPE_NAMES = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
}


def _json_types(target: _Target) -> list[str]:
    """The JSON types a value of the field may have (its schema fragment's ``type``)."""
    kinds = target.type.fragment(target.prop).get("type", [])
    return [str(k) for k in (kinds if isinstance(kinds, list) else [kinds])]


def _bad(pointer: str, message: str) -> QueryError:
    return QueryError("Invalid filter.", [ErrorDetail(pointer, message)])


def _condition(
    table: sa.Table, definition: Any, flt: Filter, index: int, dialect: str
) -> sa.ColumnElement[bool]:
    pointer = f"/filters/{index}"
    target = _target(definition, flt.field, pointer)
    col = table.c[flt.field]
    allowed = _ops(target)
    if flt.op not in FILTER_OPS or flt.op not in allowed:
        raise _bad(pointer, f"{flt.field} supports {', '.join(sorted(allowed))}, not {flt.op!r}")
    if flt.op == "isnull":
        flags = {"true": True, "1": True, "false": False, "0": False}
        wanted = flt.value if isinstance(flt.value, bool) else flags.get(str(flt.value).lower())
        if wanted is None:
            raise _bad(pointer, f"isnull needs true or false, not {flt.value!r}")
        return col.is_(None) if wanted else col.is_not(None)
    if flt.op == "in":
        raw = flt.value.split(",") if isinstance(flt.value, str) else list(flt.value)
        if not raw or len(raw) > MAX_IN_VALUES:
            raise _bad(pointer, f"'in' takes 1 to {MAX_IN_VALUES} values")
        return col.in_([parse_value(target, v, pointer) for v in raw])
    if flt.op == "contains":
        if target.type.name == "multi_select":
            if dialect == "postgresql":
                return _postgres_json_contains(col, str(flt.value))
            return _json_array_contains(table, col, str(flt.value))
        return col.icontains(str(flt.value), autoescape=True)
    value = parse_value(target, flt.value, pointer)
    if value is None:
        return col.is_(None) if flt.op == "eq" else col.is_not(None)
    if flt.op == "ne":
        return sa.or_(col != value, col.is_(None))
    # Only the operator asked for: SQLAlchemy refuses ``<`` with True/False.
    compare = {"eq": operator.eq, "lt": operator.lt, "lte": operator.le}
    compare |= {"gt": operator.gt, "gte": operator.ge}
    result: sa.ColumnElement[bool] = compare[flt.op](col, value)
    return result


def _ops(target: _Target) -> frozenset[str]:
    if target.key in _SYSTEM:
        return target.type.filter_ops
    if target.type.name == "computed":  # pragma: no cover - resolved to its result type
        return TEXT_OPS
    return target.type.filter_ops


def _json_array_contains(
    table: sa.Table, col: sa.Column[Any], value: str
) -> sa.ColumnElement[bool]:
    each = sa.func.json_each(col).table_valued("value").alias("opt")
    return sa.exists(sa.select(sa.literal(1)).select_from(each).where(each.c.value == value))


def _postgres_json_contains(col: sa.Column[Any], value: str) -> sa.ColumnElement[bool]:
    return sa.cast(col, postgresql.JSONB).contains([value])


def list_records(
    conn: sa.Connection,
    table: sa.Table,
    children: dict[str, sa.Table],
    definition: Any,
    query: ListQuery,
    *,
    scope: sa.ColumnElement[bool] | None = None,
) -> Page:
    if query.cursor is not None and query.offset is not None:
        raise QueryError("Use either a cursor or an offset, not both.")
    if query.limit < 1:
        raise QueryError("Invalid page size.", [ErrorDetail("/limit", "limit must be at least 1")])
    if query.offset is not None and query.offset < 0:
        raise QueryError("Invalid offset.", [ErrorDetail("/offset", "offset must be 0 or more")])
    selected, subs = _selection(definition, query.fields)
    conditions: list[sa.ColumnElement[bool]] = [table.c.deleted_at.is_(None)]
    if scope is not None:
        conditions.append(scope)
    for i, flt in enumerate(query.filters):
        conditions.append(_condition(table, definition, flt, i, conn.dialect.name))
    sorts = [(_sort_target(definition, s, i), s.descending) for i, s in enumerate(query.sort)]
    id_desc = sorts[-1][1] if sorts else False
    signature = ",".join(f"{'-' if d else ''}{t.key}" for t, d in sorts)
    next_segment: sa.ColumnElement[bool] | None = None
    if query.cursor is not None:
        last_values, last_id = _decode_cursor(query.cursor, signature, [t for t, _ in sorts])
        conditions.append(_after(table, sorts, last_values, last_id, id_desc))
        if sorts:
            bound, next_segment = _segment(table.c[sorts[0][0].key], sorts[0][1], last_values[0])
            conditions.append(bound)
    order: list[sa.ColumnElement[Any]] = []
    for t, desc in sorts:
        col = table.c[t.key]
        order.append(col.desc().nulls_first() if desc else col.asc().nulls_last())
    order.append(table.c.id.desc() if id_desc else table.c.id.asc())
    # The cursor needs the sort values even when ``fields`` leaves them out.
    hidden_sort_keys = [t.key for t, _ in sorts if t.key not in selected]
    columns = [table.c[k] for k in (*selected, *hidden_sort_keys)]
    statement = sa.select(*columns).where(*conditions).order_by(*order).limit(query.limit + 1)
    if query.offset:
        statement = statement.offset(query.offset)
    rows = list(conn.execute(statement).all())
    if next_segment is not None and len(rows) <= query.limit:
        # The page crosses from the sort column's values into its NULLs (or
        # back): the rest comes from the start of the next segment.
        rest = (
            sa.select(*columns)
            .where(*conditions[:-2], next_segment)
            .order_by(*order)
            .limit(query.limit + 1 - len(rows))
        )
        rows.extend(conn.execute(rest).all())
    has_more = len(rows) > query.limit
    rows = rows[: query.limit]
    items = rows_json(definition, rows)
    for item in items if hidden_sort_keys else ():
        for key in hidden_sort_keys:
            del item[key]
    ids = [r.id for r in rows]
    for sub in subs:
        if ids:
            by_parent = _children_by_parent(conn, children[sub.key], sub, ids)
            for item in items:
                item[sub.key] = by_parent.get(item["id"], [])
    next_cursor = None
    if has_more and query.offset is None and rows:
        last = rows[-1]._mapping
        next_cursor = _encode_cursor(
            signature, [t.type.to_json(last[t.key]) for t, _ in sorts], last["id"]
        )
    return Page(items=items, next_cursor=next_cursor)


def count_records(
    conn: sa.Connection,
    table: sa.Table,
    definition: Any,
    filters: Sequence[Filter],
    *,
    scope: sa.ColumnElement[bool] | None = None,
) -> int:
    conditions = [
        table.c.deleted_at.is_(None),
        *(_condition(table, definition, f, i, conn.dialect.name) for i, f in enumerate(filters)),
    ]
    if scope is not None:
        conditions.append(scope)
    return int(
        conn.execute(sa.select(sa.func.count()).select_from(table).where(*conditions)).scalar_one()
    )


def _children_by_parent(
    conn: sa.Connection, child: sa.Table, sub: Field, ids: list[int]
) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    rows = conn.execute(
        sa.select(child)
        .where(child.c.parent_id.in_(ids))
        .order_by(child.c.parent_id, child.c.position)
    )
    for r in rows:
        out.setdefault(r.parent_id, []).append(child_json(sub, r._mapping))
    return out


def _selection(definition: Any, fields: Sequence[str] | None) -> tuple[list[str], list[Field]]:
    system = list(_SYSTEM)
    if fields is None:
        return system + [f.key for f in definition.column_fields], []
    errors = []
    columns: list[str] = []
    subs: list[Field] = []
    for i, key in enumerate(fields):
        f = definition.field(key)
        if key in _SYSTEM:
            continue
        if f is None:
            errors.append(ErrorDetail(f"/fields/{i}", f"unknown field {key!r}"))
        elif f.type.name == "subtable":
            subs.append(f)
        else:
            columns.append(key)
    if errors:
        raise QueryError("Unknown field in 'fields'.", errors)
    return system + columns, subs


def _sort_target(definition: Any, sort: Sort, index: int) -> _Target:
    target = _target(definition, sort.field, f"/sort/{index}")
    if not target.sortable:
        sortable = [k for k, (_, s) in _SYSTEM.items() if s] + [
            f.key for f in definition.column_fields if f.indexed and f.type.sortable
        ]
        raise QueryError(
            "This field cannot be sorted on.",
            [ErrorDetail(f"/sort/{index}", f"sort on one of: {', '.join(sortable)}")],
        )
    return target


def _segment(
    col: sa.Column[Any], descending: bool, value: Any
) -> tuple[sa.ColumnElement[bool], sa.ColumnElement[bool] | None]:
    """A seekable bound on the leading sort column, and the segment after it.

    The lexicographic cursor condition of :func:`_after` is an OR no index
    can seek on, so a deep page would scan from the start. The rows after a
    cursor lie in the rest of its segment (the column's values, or its
    NULLs), bounded on the column itself, then in the following segment.
    NULL sorts as the largest value: last ascending, first descending.
    """
    if value is None:
        return col.is_(None), (col.is_not(None) if descending else None)
    bound = col <= value if descending else col >= value
    return bound, (None if descending else col.is_(None))


def _after(
    table: sa.Table,
    sorts: list[tuple[_Target, bool]],
    values: list[Any],
    last_id: int,
    id_desc: bool,
) -> sa.ColumnElement[bool]:
    """Rows strictly after the cursor, in (sort..., id) order with NULL largest."""
    condition: sa.ColumnElement[bool] = table.c.id < last_id if id_desc else table.c.id > last_id
    for (target, desc), value in reversed(list(zip(sorts, values, strict=True))):
        col = table.c[target.key]
        if value is None:
            equal: sa.ColumnElement[bool] = col.is_(None)
            strictly: sa.ColumnElement[bool] = col.is_not(None) if desc else sa.false()
        else:
            equal = col == value
            strictly = col < value if desc else sa.or_(col > value, col.is_(None))
        condition = sa.or_(strictly, sa.and_(equal, condition))
    return condition


def _encode_cursor(signature: str, values: list[Any], last_id: int) -> str:
    raw = json.dumps({"s": signature, "v": values, "id": last_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, signature: str, targets: list[_Target]) -> tuple[list[Any], int]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if data["s"] != signature or len(data["v"]) != len(targets):
            raise QueryError("The cursor belongs to a different sort order; start again.")
        values = [
            None if v is None else _from_json(t, v) for t, v in zip(targets, data["v"], strict=True)
        ]
        last_id = data["id"]
        if not isinstance(last_id, int) or isinstance(last_id, bool):
            raise ValueError(last_id)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise QueryError("The cursor is not valid; start again from the first page.") from None
    return values, last_id


def _from_json(target: _Target, value: Any) -> Any:
    """A sort value from a cursor; ValueError if no row could have written it."""
    if not any(_TYPE_CHECKER.is_type(value, kind) for kind in _json_types(target)):
        raise ValueError(value)
    # The field's bounds may have changed since the row was written; not its type.
    unbounded = {k: v for k, v in target.prop.items() if k not in ("minimum", "maximum")}
    if target.type.check(value, unbounded) is not None:
        raise ValueError(value)
    return target.type.to_python(value, target.prop)
