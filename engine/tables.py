"""SQLAlchemy tables for published forms.

Physical names are stable and readable: form ``customer`` is table
``form_customer``, field ``phone`` is column ``phone``; a sub-table field
``documents`` of form ``loan`` is table ``form_loan__documents``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from engine.forms.columns import BigIntId, ColumnSpec, UTCDateTime
from engine.forms.definition import Field, FormDefinition
from engine.forms.keys import MAX_IDENTIFIER_LENGTH

SORTABLE_SYSTEM_COLUMNS = ("id", "created_at", "updated_at")


def index_name(table: str, column: str, *, unique: bool = False) -> str:
    name = f"{'uq' if unique else 'ix'}_{table}_{column}"
    if len(name) <= MAX_IDENTIFIER_LENGTH:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_IDENTIFIER_LENGTH - 9]}_{digest}"


def system_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.BigInteger, sa.ForeignKey("ff_user.id"), nullable=True),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("updated_by", sa.BigInteger, sa.ForeignKey("ff_user.id"), nullable=True),
        sa.Column("owner_id", sa.BigInteger, sa.ForeignKey("ff_user.id"), nullable=True),
        sa.Column("dept_id", sa.BigInteger, sa.ForeignKey("ff_department.id"), nullable=True),
        sa.Column("version", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.Column("deleted_at", UTCDateTime, nullable=True),
    ]


def system_indexes(table: str) -> list[sa.Index]:
    return [sa.Index(index_name(table, c), c) for c in ("owner_id", "dept_id", "created_at")]


def child_system_columns(parent_table: str) -> list[sa.Column[object]]:
    return [
        sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
        sa.Column(
            "parent_id",
            sa.BigInteger,
            sa.ForeignKey(f"{parent_table}.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer, nullable=False),
    ]


def field_column(name: str, spec: ColumnSpec) -> sa.Column[object]:
    if spec.kind == "fk":
        assert spec.references is not None
        return sa.Column(name, spec.sa_type(), sa.ForeignKey(spec.references), nullable=True)
    return sa.Column(name, spec.sa_type(), nullable=True)


def field_index(table: str, f: Field) -> sa.Index | None:
    if f.unique:
        # Unique among live records: a soft-deleted record frees its value.
        return sa.Index(
            index_name(table, f.key, unique=True),
            f.key,
            unique=True,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
    if f.indexed:
        return sa.Index(index_name(table, f.key), f.key)
    return None


@dataclass(frozen=True)
class FormTables:
    definition: FormDefinition
    table: sa.Table
    children: Mapping[str, sa.Table]


def build_tables(definition: FormDefinition, metadata: sa.MetaData) -> FormTables:
    """Declare the form's tables in ``metadata`` (which must hold its link targets)."""
    name = definition.table_name
    items: list[sa.schema.SchemaItem] = [*system_columns(), *system_indexes(name)]
    for f in definition.column_fields:
        assert f.column is not None
        items.append(field_column(f.key, f.column))
        if (index := field_index(name, f)) is not None:
            items.append(index)
    table = sa.Table(name, metadata, *items)
    children = {}
    for sub in definition.subtables:
        child_name = definition.child_table_name(sub)
        child_items: list[sa.schema.SchemaItem] = [
            *child_system_columns(name),
            sa.Index(index_name(child_name, "parent_id"), "parent_id", "position"),
        ]
        for c in sub.children:
            assert c.column is not None
            child_items.append(field_column(c.key, c.column))
            if (index := field_index(child_name, c)) is not None and not c.unique:
                child_items.append(index)
        children[sub.key] = sa.Table(child_name, metadata, *child_items)
    return FormTables(definition=definition, table=table, children=children)
