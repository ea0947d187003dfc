"""Count the rows that would block a plan, before any DDL runs.

Each blocker names the field (JSON pointer and label) and how many rows
stand in the way, so the author can clean the data or change the form.
The database's own constraints remain the last line of defence.
"""

from __future__ import annotations

import decimal

import sqlalchemy as sa

from engine.errors import ErrorDetail
from engine.publish.layout import Layout
from engine.publish.plan import Plan, Step


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
            n = _count(conn, step.table, sa.column(physical).in_(step.options), live_only)
            if n:
                message = f"{n} row(s) still use option(s) {list(step.options)}"
        if message:
            label = str(step.column)
            if step.label and step.label != step.column:
                label = f"{step.label} ({step.column})"
            blockers.append(ErrorDetail(step.pointer, f"{label}: {message}"))
    return blockers


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
