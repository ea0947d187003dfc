"""Count the rows that would block a plan, before any DDL runs.

Each blocker names the field (JSON pointer and label) and how many rows
stand in the way, so the author can clean the data or change the form.
The database's own constraints remain the last line of defence.
"""

from __future__ import annotations

import decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from engine.errors import ErrorDetail
from engine.publish.layout import Layout
from engine.publish.plan import Plan, Step
from engine.tables import index_name, system_indexes


def find_blockers(conn: sa.Connection, plan: Plan, live: Layout) -> list[ErrorDetail]:
    tables = {live.main.table: True, **{c.table: False for c in live.children.values()}}
    renamed = {(s.table, s.column): s.old_column for s in plan.steps if s.kind == "rename_column"}
    backfilled = {(s.table, s.column) for s in plan.steps if s.kind == "backfill"}
    added = {(s.table, s.column) for s in plan.steps if s.kind == "add_column"}
    blockers: list[ErrorDetail] = []
    for step in plan.steps:
        if step.table not in tables:
            continue  # a table this plan creates holds no rows yet
        physical = renamed.get((step.table, step.column)) or step.column
        assert physical is not None or step.kind in ("retire_table", "restore_table")
        live_only = tables[step.table]
        message: str | None = None
        if step.kind == "narrow_column" and physical:
            n = _count_not_fitting(conn, step, physical)
            if n:
                assert step.spec is not None
                message = f"{n} row(s) hold values that do not fit {step.spec.describe()}"
        elif step.kind == "add_index" and step.unique and physical:
            if (step.table, step.column) in added:
                continue  # a column this plan adds is empty: nothing can repeat
            n = _count_duplicates(conn, step.table, physical)
            if n:
                message = f"{n} value(s) occur in more than one record, so it cannot be unique"
        elif step.kind == "require" and (step.table, step.column) not in backfilled and physical:
            if (step.table, step.column) in added:
                n = _count(conn, step.table, None, live_only)
                if n:
                    message = (
                        f"{n} existing row(s) would have no value; give the field a default "
                        "or leave it optional"
                    )
            else:
                n = _count(conn, step.table, sa.column(physical).is_(None), live_only)
                if n:
                    message = f"{n} row(s) have no value, so it cannot become required"
        elif step.kind == "remove_options" and physical:
            n = _count(conn, step.table, _uses_option(conn, step, physical), live_only)
            if n:
                message = f"{n} row(s) still use option(s) {list(step.options)}"
        if message:
            label = str(step.column)
            if step.label and step.label != step.column:
                label = f"{step.label} ({step.column})"
            blockers.append(ErrorDetail(step.pointer, f"{label}: {message}"))
    return blockers


def _uses_option(conn: sa.Connection, step: Step, physical: str) -> sa.ColumnElement[bool]:
    """Rows holding one of the removed options (a multi-select holds a JSON list)."""
    col: sa.ColumnClause[Any] = sa.column(physical)
    if step.spec is None or step.spec.kind != "json":
        return col.in_(step.options)
    if conn.dialect.name == "postgresql":
        as_jsonb = sa.cast(col, postgresql.JSONB)
        return sa.or_(*(as_jsonb.contains([option]) for option in step.options))
    each = sa.func.json_each(col).table_valued("value").alias("opt")
    return sa.exists(
        sa.select(sa.literal(1)).select_from(each).where(each.c.value.in_(step.options))
    )


def _count(
    conn: sa.Connection, table: str, condition: sa.ColumnElement[bool] | None, live_only: bool
) -> int:
    t = sa.table(table, sa.column("deleted_at"))
    query = sa.select(sa.func.count()).select_from(t)
    if condition is not None:
        query = query.where(condition)
    if live_only:
        query = query.where(t.c.deleted_at.is_(None))
    return int(conn.execute(query).scalar_one())


def _count_not_fitting(conn: sa.Connection, step: Step, physical: str) -> int:
    old, new = step.old_spec, step.spec
    assert old is not None and new is not None
    col = sa.column(physical, old.sa_type())
    if new.kind == "string":
        condition = sa.func.length(col) > (new.length or 0)
    elif new.kind == "numeric":
        limit = decimal.Decimal(10) ** ((new.precision or 0) - (new.scale or 0))
        condition = sa.or_(col >= limit, col <= -limit)
    else:  # pragma: no cover - change_kind only narrows strings and numerics
        raise AssertionError(new.kind)
    # Deleted rows keep their data and must fit too.
    return _count(conn, step.table, condition, live_only=False)


def _count_duplicates(conn: sa.Connection, table: str, column: str) -> int:
    t = sa.table(table, sa.column(column), sa.column("deleted_at"))
    dupes = (
        sa.select(t.c[column])
        .where(t.c.deleted_at.is_(None), t.c[column].is_not(None))
        .group_by(t.c[column])
        .having(sa.func.count() > 1)
        .subquery()
    )
    return int(conn.execute(sa.select(sa.func.count()).select_from(dupes)).scalar_one())


def find_name_clashes(conn: sa.Connection, plan: Plan) -> list[ErrorDetail]:
    """Index names the plan would create that the database already uses.

    Index names are unique per database (per schema on PostgreSQL), and
    ``ix_<table>_<column>`` can repeat across forms: form ``loan`` field
    ``application_date`` and form ``loan_application`` field ``date``.
    """
    wanted = _new_index_names(plan)
    if not wanted:
        return []
    if conn.dialect.name == "postgresql":
        query = sa.text(
            "SELECT relname FROM pg_class"
            " WHERE relnamespace = current_schema()::regnamespace AND relname IN :names"
        )
    else:
        query = sa.text("SELECT name FROM sqlite_master WHERE name IN :names")
    names = sorted({n for n, _ in wanted})
    query = query.bindparams(sa.bindparam("names", names, expanding=True))
    taken = set(conn.execute(query).scalars())
    clashes, seen = [], set()
    for name, pointer in wanted:
        if name in taken or name in seen:
            clashes.append(
                ErrorDetail(
                    pointer,
                    f"the index name {name!r} is already taken (by a field of a form or "
                    "sub-table with a similar name); choose another key",
                )
            )
        seen.add(name)
    return clashes


def _new_index_names(plan: Plan) -> list[tuple[str, str]]:
    """(index name, pointer) for every index the plan creates, as apply names them."""
    wanted = [
        (index_name(s.table, s.column, unique=s.unique), s.pointer)
        for s in plan.steps
        if s.kind == "add_index" and s.column
    ]
    created = {s.table for s in plan.steps if s.kind == "create_table"}
    tables = [(plan.layout.main, "/schema", "/key", False)] + [
        (t, f"/schema/properties/{k}/items", f"/schema/properties/{k}", True)
        for k, t in plan.layout.children.items()
    ]
    for table, base, own_pointer, child in tables:
        if table.table not in created:
            continue
        if child:
            wanted.append((index_name(table.table, "parent_id"), own_pointer))
        else:
            wanted.extend((str(i.name), own_pointer) for i in system_indexes(table.table))
        wanted.extend(
            (index_name(table.table, c, unique=kind == "unique"), f"{base}/properties/{c}")
            for c, kind in table.indexes.items()
        )
    return wanted
