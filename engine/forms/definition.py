"""Parsing and validating a form definition document.

A definition is checked in two passes before anything touches a database:
the meta-schema (structure) and the field-type registry (per-type rules).
Every problem is reported at once, each at the JSON pointer of the offending
part, so an author can fix a whole file in one round.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

from engine.errors import DefinitionError, ErrorDetail
from engine.forms.columns import ColumnSpec
from engine.forms.fieldtypes import COMMON_KEYWORDS, FIELD_TYPES, FieldType, infer_type
from engine.forms.keys import (
    MAX_IDENTIFIER_LENGTH,
    child_table_name,
    key_problem,
    stored_key_problem,
    table_name,
)

_META = Draft202012Validator(
    json.loads(resources.files("engine.forms").joinpath("metaschema.json").read_text("utf-8"))
)


@dataclass(frozen=True, eq=False)
class Field:
    key: str
    type: FieldType
    prop: Mapping[str, Any]
    required: bool
    children: tuple[Field, ...] = ()

    @property
    def label(self) -> str:
        return str(self.prop.get("title", self.key))

    @property
    def unique(self) -> bool:
        return bool(self.prop.get("x-unique", False))

    @property
    def indexed(self) -> bool:
        return bool(self.prop.get("x-index", False)) or self.unique or self.type.name == "link"

    @property
    def renamed_from(self) -> str | None:
        value = self.prop.get("x-renamed-from")
        return str(value) if value else None

    @property
    def link_target(self) -> str | None:
        return str(self.prop["x-link"]) if self.type.name == "link" else None

    @property
    def writable(self) -> bool:
        return self.type.writable and not self.prop.get("readOnly", False)

    @property
    def has_default(self) -> bool:
        return "default" in self.prop

    @cached_property
    def column(self) -> ColumnSpec | None:
        return self.type.column(self.prop)

    def describe(self) -> str:
        return f"{self.label} ({self.key})" if self.label != self.key else self.key


@dataclass(frozen=True, eq=False)
class FormDefinition:
    key: str
    document: Mapping[str, Any]
    fields: tuple[Field, ...]
    _by_key: dict[str, Field] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_key.update({f.key: f for f in self.fields})

    @property
    def label(self) -> str:
        return str(self.document["schema"].get("title", self.key))

    @property
    def table_name(self) -> str:
        return table_name(self.key)

    def field(self, key: str) -> Field | None:
        return self._by_key.get(key)

    @cached_property
    def column_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.column is not None)

    @cached_property
    def subtables(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.type.name == "subtable")

    def link_targets(self) -> set[str]:
        """Other forms this form links to (its sub-tables' links included)."""
        targets = set()
        for f in self.fields:
            for g in (f, *f.children):
                if g.link_target and g.link_target != self.key:
                    targets.add(g.link_target)
        return targets

    def child_table_name(self, subtable: Field) -> str:
        return child_table_name(self.key, subtable.key)


KeyCheck = Callable[[object], "str | None"]


def parse_definition(document: Any, *, source: str = "", stored: bool = False) -> FormDefinition:
    """Validate ``document`` and return the parsed definition.

    Raises :class:`DefinitionError` listing every problem found.
    """
    where = f" in {source}" if source else ""
    if not isinstance(document, Mapping):
        raise DefinitionError(f"A form definition must be a JSON object{where}.")
    problems = [
        ErrorDetail(_pointer(e.absolute_path), e.message)
        for e in sorted(_META.iter_errors(document), key=lambda e: list(map(str, e.path)))
    ]
    if problems:
        raise DefinitionError(f"The form definition{where} does not match the format.", problems)

    key = document["key"]
    check_key: KeyCheck = stored_key_problem if stored else key_problem
    if (why := check_key(key)) is not None:
        problems.append(ErrorDetail("/key", why))
    elif len(table_name(key)) > MAX_IDENTIFIER_LENGTH:
        problems.append(ErrorDetail("/key", "key is too long"))
    fields = tuple(
        _parse_object(
            document["schema"], "/schema", problems, depth=0, form_key=key, check_key=check_key
        )
    )
    if problems:
        raise DefinitionError(f"Form {key!r}{where} has {len(problems)} problem(s).", problems)
    return FormDefinition(key=key, document=document, fields=fields)


def _parse_object(
    schema: Mapping[str, Any],
    base: str,
    problems: list[ErrorDetail],
    *,
    depth: int,
    form_key: str,
    check_key: KeyCheck,
) -> Iterator[Field]:
    properties: Mapping[str, Any] = schema.get("properties", {})
    required = list(schema.get("required", []))
    for name in required:
        if name not in properties:
            problems.append(
                ErrorDetail(f"{base}/required", f"required field {name!r} is not defined")
            )
    renames: dict[str, str] = {}
    for fkey, prop in properties.items():
        pointer = f"{base}/properties/{_escape(fkey)}"
        parsed = _parse_field(
            fkey, prop, pointer, problems, depth=depth, form_key=form_key, check_key=check_key
        )
        if parsed is None:
            continue
        if parsed.renamed_from:
            if parsed.renamed_from in renames.values() or parsed.renamed_from in properties:
                problems.append(
                    ErrorDetail(
                        f"{pointer}/x-renamed-from",
                        f"{parsed.renamed_from!r} is still defined or renamed twice",
                    )
                )
            renames[fkey] = parsed.renamed_from
        yield Field(
            key=parsed.key,
            type=parsed.type,
            prop=parsed.prop,
            required=fkey in required,
            children=parsed.children,
        )


def _parse_field(
    fkey: str,
    prop: Mapping[str, Any],
    pointer: str,
    problems: list[ErrorDetail],
    *,
    depth: int,
    form_key: str,
    check_key: KeyCheck,
) -> Field | None:
    start = len(problems)
    if (why := check_key(fkey)) is not None:
        problems.append(ErrorDetail(pointer, why))
    if "$ref" in prop:
        problems.append(
            ErrorDetail(f"{pointer}/$ref", "$ref is not supported; define fields inline")
        )
        return None
    type_name = prop.get("x-type") or infer_type(prop)
    ftype = FIELD_TYPES.get(str(type_name)) if type_name else None
    if ftype is None:
        known = ", ".join(sorted(FIELD_TYPES))
        what = f"unknown field type {type_name!r}" if type_name else "no field type"
        problems.append(ErrorDetail(f"{pointer}/x-type", f"{what}; use one of: {known}"))
        return None
    if "type" in prop and ftype.json_types and not _json_type_fits(prop["type"], ftype):
        problems.append(
            ErrorDetail(
                f"{pointer}/type", f"JSON type {prop['type']!r} does not fit a {ftype.name} field"
            )
        )
    allowed = COMMON_KEYWORDS | ftype.keywords
    for kw in prop:
        if kw not in allowed:
            problems.append(
                ErrorDetail(
                    f"{pointer}/{_escape(kw)}", f"{kw!r} is not allowed on a {ftype.name} field"
                )
            )
    for rel, message in ftype.definition_problems(prop):
        problems.append(ErrorDetail(pointer + rel, message))
    if "pattern" in prop:
        try:
            re.compile(str(prop["pattern"]))
        except re.error as exc:
            problems.append(ErrorDetail(f"{pointer}/pattern", f"invalid regular expression: {exc}"))
    if prop.get("x-unique") and not ftype.sortable:
        problems.append(
            ErrorDetail(f"{pointer}/x-unique", f"a {ftype.name} field cannot be unique")
        )
    if prop.get("x-unique") and depth > 0:
        problems.append(ErrorDetail(f"{pointer}/x-unique", "sub-table fields cannot be unique"))
    if prop.get("x-index") and not ftype.sortable:
        problems.append(
            ErrorDetail(f"{pointer}/x-index", f"a {ftype.name} field cannot be indexed")
        )
    if ftype.name == "link" and (target := prop.get("x-link")) is not None:
        if (why := check_key(target)) is not None:
            problems.append(ErrorDetail(f"{pointer}/x-link", why))
    elif ftype.name == "link":
        problems.append(
            ErrorDetail(f"{pointer}/x-link", "a link field needs x-link: the target form key")
        )
    children: tuple[Field, ...] = ()
    if ftype.name == "subtable":
        children = _parse_subtable(
            fkey, prop, pointer, problems, depth=depth, form_key=form_key, check_key=check_key
        )
    if len(problems) > start:
        return None
    result = Field(key=fkey, type=ftype, prop=prop, required=False, children=children)
    if "default" in prop:
        _check_default(result, pointer, problems)
    return result


def _parse_subtable(
    fkey: str,
    prop: Mapping[str, Any],
    pointer: str,
    problems: list[ErrorDetail],
    *,
    depth: int,
    form_key: str,
    check_key: KeyCheck,
) -> tuple[Field, ...]:
    if depth > 0:
        problems.append(ErrorDetail(pointer, "sub-tables cannot contain sub-tables"))
        return ()
    items = prop.get("items")
    if not isinstance(items, Mapping) or not isinstance(items.get("properties"), Mapping):
        problems.append(ErrorDetail(f"{pointer}/items", "a sub-table needs items.properties"))
        return ()
    if len(child_table_name(form_key, fkey)) > MAX_IDENTIFIER_LENGTH:
        problems.append(ErrorDetail(pointer, "form key plus sub-table key is too long (63 max)"))
    extra = set(items) - {"type", "properties", "required", "title", "additionalProperties"}
    if extra:
        problems.append(ErrorDetail(f"{pointer}/items", f"unsupported keywords: {sorted(extra)}"))
    return tuple(
        _parse_object(
            items,
            f"{pointer}/items",
            problems,
            depth=depth + 1,
            form_key=form_key,
            check_key=check_key,
        )
    )


def _check_default(f: Field, pointer: str, problems: list[ErrorDetail]) -> None:
    value = f.prop["default"]
    if f.type.name in ("subtable", "computed"):
        problems.append(ErrorDetail(f"{pointer}/default", f"a {f.type.name} field has no default"))
        return
    validator = Draft202012Validator(f.type.fragment(f.prop))
    error = next(iter(validator.iter_errors(value)), None)
    message = error.message if error else f.type.check(value, f.prop)
    if message:
        problems.append(ErrorDetail(f"{pointer}/default", f"default is invalid: {message}"))


def _json_type_fits(declared: Any, ftype: FieldType) -> bool:
    names = declared if isinstance(declared, list) else [declared]
    return all(isinstance(n, str) and n in ftype.json_types for n in names)


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _pointer(path: Any) -> str:
    return "".join(f"/{_escape(str(p))}" for p in path)
