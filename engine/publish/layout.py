"""The live shape of a form's tables, as Formflow built them.

A layout is stored with the form (``ff_form.layout``) and is what a new
version is diffed against. Keeping it as data (not reflecting the database)
makes the diff identical on SQLite and PostgreSQL, whose reflected types
differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from engine.forms.columns import ColumnSpec
from engine.forms.definition import Field, FormDefinition

IndexKind = Literal["index", "unique"]


@dataclass
class TableLayout:
    table: str
    columns: dict[str, ColumnSpec] = field(default_factory=dict)
    retired: set[str] = field(default_factory=set)
    indexes: dict[str, IndexKind] = field(default_factory=dict)

    def active(self) -> dict[str, ColumnSpec]:
        return {k: v for k, v in self.columns.items() if k not in self.retired}

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "columns": {k: v.as_dict() for k, v in sorted(self.columns.items())},
            "retired": sorted(self.retired),
            "indexes": dict(sorted(self.indexes.items())),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TableLayout:
        return cls(
            table=data["table"],
            columns={k: ColumnSpec.from_dict(v) for k, v in data["columns"].items()},
            retired=set(data.get("retired", [])),
            indexes=dict(data.get("indexes", {})),
        )


@dataclass
class Layout:
    main: TableLayout
    children: dict[str, TableLayout] = field(default_factory=dict)
    retired_children: set[str] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        return {
            "main": self.main.as_dict(),
            "children": {k: v.as_dict() for k, v in sorted(self.children.items())},
            "retired_children": sorted(self.retired_children),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Layout:
        return cls(
            main=TableLayout.from_dict(data["main"]),
            children={k: TableLayout.from_dict(v) for k, v in data.get("children", {}).items()},
            retired_children=set(data.get("retired_children", [])),
        )


def fields_layout(table: str, fields: tuple[Field, ...]) -> TableLayout:
    layout = TableLayout(table=table)
    for f in fields:
        if f.column is None:
            continue
        layout.columns[f.key] = f.column
        if f.unique:
            layout.indexes[f.key] = "unique"
        elif f.indexed:
            layout.indexes[f.key] = "index"
    return layout


def desired_layout(definition: FormDefinition) -> Layout:
    return Layout(
        main=fields_layout(definition.table_name, definition.fields),
        children={
            sub.key: fields_layout(definition.child_table_name(sub), sub.children)
            for sub in definition.subtables
        },
    )
