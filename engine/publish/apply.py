"""Apply a checked plan with Alembic operations, inside the caller's transaction."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext

from engine.catalog import new_metadata
from engine.forms.definition import Field, FormDefinition
from engine.publish.plan import Plan, Step
from engine.tables import FormTables, build_tables, field_column, field_index, index_name


def apply_plan(conn: sa.Connection, plan: Plan) -> None:
    """Run the plan's DDL. The caller's transaction makes it all-or-nothing."""
    tables = _ddl_tables(plan.definition)
    by_name = {tables.table.name: tables.table, **{t.name: t for t in tables.children.values()}}
    ops = Operations(MigrationContext.configure(conn))
    sqlite = conn.dialect.name == "sqlite"
    for step in plan.steps:
        match step.kind:
            case "create_table":
                by_name[step.table].create(conn)
            case "add_column":
                assert step.column is not None and step.spec is not None
                column = field_column(step.column, step.spec)
                if sqlite and step.spec.kind == "fk":
                    _sqlite_add_fk_column(conn, step.table, column)
                else:
                    ops.add_column(step.table, column)
            case "rename_column":
                assert step.old_column is not None
                ops.alter_column(step.table, step.old_column, new_column_name=step.column)
            case "widen_column" | "narrow_column":
                # SQLite neither enforces VARCHAR lengths nor NUMERIC precision
                # (decimals are scaled integers there), so only PostgreSQL has DDL.
                if not sqlite:
                    assert step.spec is not None and step.old_spec is not None
                    assert step.column is not None
                    ops.alter_column(
                        step.table,
                        step.column,
                        type_=step.spec.sa_type(),
                        existing_type=step.old_spec.sa_type(),
                    )
            case "add_index":
                _field_index(step, plan.definition, by_name[step.table]).create(conn)
            case "drop_index":
                assert step.column is not None
                ops.drop_index(index_name(step.table, step.column, unique=step.unique), step.table)
            case "backfill":
                _backfill(conn, step, plan.definition)
            case _:
                pass  # metadata-only steps: recorded in the layout and the version


def _ddl_tables(definition: FormDefinition) -> FormTables:
    """The new version's tables, in a MetaData where every link target resolves."""
    metadata = new_metadata()
    for target in definition.link_targets():
        sa.Table(f"form_{target}", metadata, sa.Column("id", sa.BigInteger, primary_key=True))
    return build_tables(definition, metadata)


def _find_field(definition: FormDefinition, step: Step) -> Field:
    for f in definition.fields:
        if definition.table_name == step.table and f.key == step.column:
            return f
        if f.type.name == "subtable" and definition.child_table_name(f) == step.table:
            for c in f.children:
                if c.key == step.column:
                    return c
    raise AssertionError(f"no field for {step.describe()}")  # pragma: no cover


def _field_index(step: Step, definition: FormDefinition, table: sa.Table) -> sa.Index:
    index = field_index(table.name, _find_field(definition, step))
    assert index is not None
    # build_tables already attached this index to the table; reuse it.
    return next(i for i in table.indexes if i.name == index.name)


def _backfill(conn: sa.Connection, step: Step, definition: FormDefinition) -> None:
    f = _find_field(definition, step)
    assert f.column is not None and step.column is not None
    value: Any = f.type.to_python(step.value, f.prop)
    col = sa.column(step.column, f.column.sa_type())
    t = sa.table(step.table, col)
    conn.execute(sa.update(t).where(col.is_(None)).values({step.column: value}))


def _sqlite_add_fk_column(conn: sa.Connection, table: str, column: sa.Column[Any]) -> None:
    # SQLite cannot add a constraint to an existing table, but it accepts a
    # new nullable column with an inline REFERENCES clause (no table rebuild).
    (fk,) = column.foreign_keys
    target_table, target_column = fk.target_fullname.split(".")
    preparer = conn.dialect.identifier_preparer
    ddl_type = column.type.compile(dialect=conn.dialect)
    conn.exec_driver_sql(
        f"ALTER TABLE {preparer.quote(table)} ADD COLUMN {preparer.quote(column.name)} "
        f"{ddl_type} REFERENCES {preparer.quote(target_table)}({preparer.quote(target_column)})"
    )
