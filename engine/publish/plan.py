"""Diff a new form version against the live layout into a plan of steps.

The plan is pure data: it can be printed as a preview, stored with the
version, checked against the rows it would touch, and applied. Nothing is
dropped: a field that disappears is *retired* (hidden, data kept), and a
change that could lose or violate data is refused with the field and the
number of rows that block it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from engine.errors import ErrorDetail, PlanRefusedError
from engine.forms.columns import ColumnSpec, change_kind
from engine.forms.definition import Field, FormDefinition
from engine.publish.layout import Layout, TableLayout, desired_layout

StepKind = Literal[
    "create_table",
    "add_column",
    "restore_column",
    "rename_column",
    "widen_column",
    "narrow_column",
    "add_index",
    "drop_index",
    "retire_column",
    "retire_table",
    "restore_table",
    "backfill",
    "require",
    "remove_options",
]

# Steps that change nothing physical: they are checks or metadata only.
METADATA_ONLY: frozenset[str] = frozenset(
    {
        "retire_column",
        "retire_table",
        "restore_column",
        "restore_table",
        "require",
        "remove_options",
    }
)


@dataclass(frozen=True)
class Step:
    kind: StepKind
    table: str
    column: str | None = None
    pointer: str = ""
    label: str = ""
    spec: ColumnSpec | None = None
    old_spec: ColumnSpec | None = None
    old_column: str | None = None
    unique: bool = False
    value: Any = None
    options: tuple[str, ...] = ()

    def describe(self) -> str:
        name = f"{self.table}.{self.column}" if self.column else self.table
        who = f" [{self.label}]" if self.label else ""
        match self.kind:
            case "create_table":
                return f"create table {self.table}"
            case "add_column":
                assert self.spec is not None
                return f"add column {name} {self.spec.describe()}{who}"
            case "restore_column":
                return f"restore retired column {name}{who}"
            case "rename_column":
                return f"rename column {self.table}.{self.old_column} to {self.column}{who}"
            case "widen_column" | "narrow_column":
                assert self.spec is not None and self.old_spec is not None
                verb = "widen" if self.kind == "widen_column" else "narrow"
                return (
                    f"{verb} {name} from {self.old_spec.describe()} to {self.spec.describe()}{who}"
                )
            case "add_index":
                return f"add {'unique ' if self.unique else ''}index on {name}{who}"
            case "drop_index":
                return f"drop {'unique ' if self.unique else ''}index on {name}{who}"
            case "retire_column":
                return f"retire field {name}{who} (hidden; data kept)"
            case "retire_table":
                return f"retire sub-table {self.table} (hidden; data kept)"
            case "restore_table":
                return f"restore retired sub-table {self.table}"
            case "backfill":
                return f"fill {name}{who} with {self.value!r} where empty"
            case "require":
                return f"make {name}{who} required"
            case "remove_options":
                return f"remove options {list(self.options)} from {name}{who}"
        raise AssertionError(self.kind)  # pragma: no cover

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "table": self.table,
            "description": self.describe(),
        }
        if self.column:
            data["column"] = self.column
        if self.pointer:
            data["pointer"] = self.pointer
        return data


@dataclass
class Plan:
    form_key: str
    definition: FormDefinition
    layout: Layout
    steps: list[Step] = field(default_factory=list)
    refusals: list[ErrorDetail] = field(default_factory=list)
    new_form: bool = False

    @property
    def changes_schema(self) -> bool:
        return any(s.kind not in METADATA_ONLY for s in self.steps)

    def describe(self) -> list[str]:
        if not self.steps:
            return ["no table changes (labels, options or validation only)"]
        return [s.describe() for s in self.steps]

    def as_dict(self) -> dict[str, Any]:
        return {"form": self.form_key, "steps": [s.as_dict() for s in self.steps]}

    def refuse_if_needed(self) -> None:
        if self.refusals:
            raise PlanRefusedError(
                f"Publishing form {self.form_key!r} was refused; nothing was changed.",
                self.refusals,
                preview=self.describe(),
            )


def make_plan(
    definition: FormDefinition,
    *,
    current: FormDefinition | None,
    live: Layout | None,
    published_forms: set[str],
) -> Plan:
    """Diff ``definition`` against the live form (``None`` for a new form).

    Refusals that need no data (an incompatible type change, a dangling
    link) are collected here; those that depend on rows are found by
    :func:`engine.publish.checks.find_blockers`.
    """
    desired = desired_layout(definition)
    plan = Plan(definition.key, definition, desired, new_form=live is None)
    _check_links(definition, published_forms | {definition.key}, plan)
    if live is None:
        plan.steps.append(Step("create_table", definition.table_name))
        for sub in definition.subtables:
            plan.steps.append(Step("create_table", definition.child_table_name(sub)))
        return plan
    assert current is not None
    _diff_table(live.main, definition.fields, current.fields, "/schema", plan, desired.main)
    old_subs = {f.key: f for f in current.subtables}
    for sub in definition.subtables:
        pointer = f"/schema/properties/{sub.key}/items"
        child = live.children.get(sub.key)
        if child is None:
            plan.steps.append(
                Step("create_table", definition.child_table_name(sub), label=sub.label)
            )
            continue
        if sub.key in live.retired_children:
            plan.steps.append(Step("restore_table", child.table, label=sub.label))
        old_children = old_subs[sub.key].children if sub.key in old_subs else ()
        _diff_table(child, sub.children, old_children, pointer, plan, desired.children[sub.key])
    for key, child in live.children.items():
        if key not in desired.children:
            desired.children[key] = child
            desired.retired_children.add(key)
            if key not in live.retired_children:
                plan.steps.append(Step("retire_table", child.table))
    return plan


def _check_links(definition: FormDefinition, available: set[str], plan: Plan) -> None:
    for f in definition.fields:
        for g, base in [
            (f, "/schema"),
            *((c, f"/schema/properties/{f.key}/items") for c in f.children),
        ]:
            if g.link_target and g.link_target not in available:
                plan.refusals.append(
                    ErrorDetail(
                        f"{base}/properties/{g.key}/x-link",
                        f"{g.describe()} links to form {g.link_target!r}, which is not published",
                    )
                )


def _diff_table(
    live: TableLayout,
    fields: tuple[Field, ...],
    old_fields: tuple[Field, ...],
    base: str,
    plan: Plan,
    desired: TableLayout,
) -> None:
    """Append the steps turning ``live`` into ``desired`` for one table."""
    table = live.table
    old_by_key = {f.key: f for f in old_fields}
    renamed_away: set[str] = set()
    for f in fields:
        if f.column is None:
            continue
        pointer = f"{base}/properties/{f.key}"
        source = f.key
        if (
            f.renamed_from
            and f.key in live.retired
            and f.renamed_from in live.columns
            and f.renamed_from not in live.retired
        ):
            # Restoring the retired column would silently hide the live one.
            plan.refusals.append(
                ErrorDetail(
                    f"{pointer}/x-renamed-from",
                    f"cannot rename {f.renamed_from!r} to {f.key!r}: a retired field "
                    f"{f.key!r} still holds its data; choose another key",
                )
            )
            continue
        if f.renamed_from and f.key not in live.columns:
            if f.renamed_from not in live.columns:
                plan.refusals.append(
                    ErrorDetail(
                        f"{pointer}/x-renamed-from",
                        f"there is no field {f.renamed_from!r} to rename",
                    )
                )
                continue
            plan.steps.append(
                Step("rename_column", table, f.key, pointer, f.label, old_column=f.renamed_from)
            )
            source = f.renamed_from
            renamed_away.add(source)
        old_field = old_by_key.get(source)
        if source not in live.columns:
            plan.steps.append(Step("add_column", table, f.key, pointer, f.label, spec=f.column))
            if f.required and f.has_default:
                plan.steps.append(_backfill(table, f, pointer))
            elif f.required:
                plan.steps.append(Step("require", table, f.key, pointer, f.label))
        else:
            if source in live.retired:
                plan.steps.append(Step("restore_column", table, f.key, pointer, f.label))
            _diff_column(table, f, live.columns[source], pointer, plan)
            was_required = (
                old_field is not None and old_field.required and source not in live.retired
            )
            if f.required and not was_required:
                if f.has_default:
                    plan.steps.append(_backfill(table, f, pointer))
                plan.steps.append(Step("require", table, f.key, pointer, f.label))
            removed = _removed_options(old_field, f)
            if removed:
                plan.steps.append(
                    Step(
                        "remove_options",
                        table,
                        f.key,
                        pointer,
                        f.label,
                        spec=f.column,
                        options=tuple(removed),
                    )
                )
        _diff_index(table, f, source, live.indexes.get(source), pointer, plan)
    active = {f.key for f in fields if f.column is not None}
    for column in live.columns:
        if column in renamed_away:
            continue
        if column not in active:
            desired.columns.setdefault(column, live.columns[column])
            desired.retired.add(column)
            if column not in live.retired:
                label = old_by_key[column].label if column in old_by_key else ""
                plan.steps.append(Step("retire_column", table, column, label=label))
            if column in live.indexes:
                desired.indexes[column] = live.indexes[column]


def _backfill(table: str, f: Field, pointer: str) -> Step:
    """Fill a newly required field's empty rows with its default."""
    return Step("backfill", table, f.key, pointer, f.label, spec=f.column, value=f.prop["default"])


def _diff_column(table: str, f: Field, old: ColumnSpec, pointer: str, plan: Plan) -> None:
    new = f.column
    assert new is not None
    kind = change_kind(old, new)
    if kind == "same":
        return
    if kind == "incompatible":
        plan.refusals.append(
            ErrorDetail(
                pointer,
                f"{f.describe()} cannot change from {old.describe()} to {new.describe()}; "
                "add a new field and retire this one instead",
            )
        )
        return
    step_kind: StepKind = "widen_column" if kind == "widen" else "narrow_column"
    plan.steps.append(Step(step_kind, table, f.key, pointer, f.label, spec=new, old_spec=old))


def _diff_index(
    table: str, f: Field, source: str, old: str | None, pointer: str, plan: Plan
) -> None:
    new = "unique" if f.unique else "index" if f.indexed else None
    if old == new and source == f.key:
        return
    if old is not None:
        # Index names follow the column name, so a renamed column's index is rebuilt.
        plan.steps.append(
            Step("drop_index", table, source, pointer, f.label, unique=old == "unique")
        )
    if new is not None:
        plan.steps.append(Step("add_index", table, f.key, pointer, f.label, unique=new == "unique"))


def _options(f: Field) -> list[Any] | None:
    if f.type.name == "select":
        return list(f.prop.get("enum", []))
    if f.type.name == "multi_select":
        items: Mapping[str, Any] = f.prop.get("items", {})
        return list(items.get("enum", []))
    return None


def _removed_options(old: Field | None, new: Field) -> list[str]:
    if old is None or old.type.name != new.type.name:
        return []
    before, after = _options(old), _options(new)
    if before is None or after is None:
        return []
    return [o for o in before if o not in after]
