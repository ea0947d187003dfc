"""What a user sees of a record: hidden fields left out, masked ones masked.

A :class:`FieldView` is built once per (access, form) from the compiled field
levels — never a policy check per row or per field — and then applied to
every record, sub-table row and audit entry a response carries, so the same
value is masked the same way on every path.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.forms.definition import Field, FormDefinition
from permissions.compile import Access, Level
from permissions.masking import mask, mask_kind


@dataclass(frozen=True)
class FieldView:
    form: FormDefinition
    hidden: frozenset[str]
    masked: Mapping[str, Field]  # key -> the field, for its mask kind and sub-table rows

    @classmethod
    def build(cls, form: FormDefinition, access: Access) -> FieldView:
        """The view of ``access``; a denied action sees no field at all."""
        if not access.allowed:
            return cls(form, frozenset(f.key for f in form.fields), {})
        hidden = frozenset(f.key for f in form.fields if access.level(f.key) == Level.HIDDEN)
        masked = {f.key: f for f in form.fields if access.level(f.key) == Level.MASK}
        return cls(form, hidden, masked)

    @property
    def everything(self) -> bool:
        return not self.hidden and not self.masked

    def visible(self, key: str) -> bool:
        return key not in self.hidden

    def record(self, record: dict[str, Any]) -> dict[str, Any]:
        """The record as this user may see it (a new dict; system keys always kept)."""
        if self.everything:
            return record
        # Few fields are hidden or masked: copy, then touch only those.
        out = dict(record)
        for key in self.hidden:
            out.pop(key, None)
        for key, f in self.masked.items():
            if key in out:
                out[key] = masked_value(f, out[key])
        return out

    def records(self, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return [self.record(r) for r in records]

    def changes(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """An audit entry's ``{field: {before, after}}``, old values masked like current ones."""
        out: dict[str, Any] = {}
        for key, change in changes.items():
            if key in self.hidden:
                continue
            f = self.masked.get(key)
            if f is None or not isinstance(change, Mapping):
                out[key] = change
            else:
                out[key] = {k: masked_value(f, v) for k, v in change.items()}
        return out


def masked_value(f: Field, value: Any) -> Any:
    """``value`` of field ``f`` as a user at level mask sees it."""
    if f.type.name == "subtable":
        if not isinstance(value, list):
            return value
        return [
            {
                k: v if k == "id" or c is None else mask(v, mask_kind(c))
                for k, v in row.items()
                for c in (_child(f, k),)
            }
            for row in value
        ]
    if isinstance(value, list):
        return [mask(v, mask_kind(f)) for v in value]
    return mask(value, mask_kind(f))


def _child(sub: Field, key: str) -> Field | None:
    for c in sub.children:
        if c.key == key:
            return c
    return None


def visible_document(form: FormDefinition, access: Access) -> dict[str, Any]:
    """The form's definition as the caller may see it: for UIs and integrators.

    Hidden fields are gone (from ``properties``, ``required`` and the UI
    schema); fields the caller may not write are ``readOnly``, masked ones
    also ``x-masked``. The stored definition is not touched.
    """
    doc = copy.deepcopy(dict(form.document))
    schema = doc.get("schema", {})
    props = schema.get("properties", {})
    for f in form.fields:
        level = access.level(f.key) if access.allowed else Level.HIDDEN
        if level == Level.HIDDEN:
            props.pop(f.key, None)
        elif level < Level.WRITE and f.key in props:
            props[f.key]["readOnly"] = True
            if level == Level.MASK:
                props[f.key]["x-masked"] = True
    if "required" in schema:
        schema["required"] = [k for k in schema["required"] if k in props]
    ui = doc.get("ui_schema")
    if isinstance(ui, dict):
        for key in [k for k in ui if k not in props and not k.startswith("ui:")]:
            del ui[key]
        if isinstance(ui.get("ui:order"), list):
            ui["ui:order"] = [k for k in ui["ui:order"] if k in props or k == "*"]
    return doc
