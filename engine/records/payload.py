"""Turning a JSON payload into validated Python values, and rows back into JSON.

Validation reports every problem at once, each at the JSON pointer of the
offending value and worded for the person who typed it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaError

from engine.errors import ErrorDetail, RecordValidationError
from engine.forms.definition import Field, FormDefinition
from engine.forms.keys import SYSTEM_COLUMNS

PATTERN_MESSAGES = {
    "phone": "must be a mainland China mobile number (11 digits, starting with 1)",
    "email": "must be an email address",
    "cn_id_number": "must be 18 characters: 17 digits and a final digit or X",
    "decimal": "must be a decimal number",
    "money": "must be an amount like 1234.56",
}


@dataclass
class ParsedPayload:
    """Validated values: column values, and sub-table rows by field key."""

    values: dict[str, Any] = field(default_factory=dict)
    children: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


class PayloadCodec:
    """Validation and JSON conversion for one form definition (cache it per version)."""

    def __init__(self, definition: FormDefinition) -> None:
        self.definition = definition

    @cached_property
    def _validator(self) -> Draft202012Validator:
        return Draft202012Validator(_object_schema(self.definition.fields, item_ids=False))

    def parse(self, payload: Any, *, partial: bool) -> ParsedPayload:
        if not isinstance(payload, Mapping):
            raise RecordValidationError(
                "A record must be a JSON object.", [ErrorDetail("", "must be a JSON object")]
            )
        errors: list[ErrorDetail] = []
        cleaned = _precheck(self.definition.fields, payload, "", errors, partial=partial)
        for err in self._validator.iter_errors(cleaned):
            if err.validator == "required" and partial and not err.path:
                continue  # a PATCH names only the fields it changes
            errors.extend(_describe(err, self.definition.fields))
        failed = {e.pointer for e in errors}
        parsed = ParsedPayload()
        for key, value in payload.items():
            f = self.definition.field(key)
            if f is None or not f.writable or f"/{key}" in failed:
                continue
            if f.type.name == "subtable":
                rows = _parse_rows(f, value, errors, failed)
                parsed.children[key] = rows
            else:
                parsed.values[key] = _convert(f, value, f"/{key}", errors)
        if errors:
            unique = list({e.pointer: e for e in reversed(errors)}.values())
            raise RecordValidationError(
                f"The {self.definition.label} record has {len(unique)} problem(s).",
                sorted(unique, key=lambda e: e.pointer),
            )
        return parsed

    def defaults(self) -> dict[str, Any]:
        return {
            f.key: f.type.to_python(f.prop["default"], f.prop)
            for f in self.definition.fields
            if f.has_default and f.writable
        }


def _precheck(
    fields: tuple[Field, ...],
    payload: Mapping[str, Any],
    base: str,
    errors: list[ErrorDetail],
    *,
    partial: bool,
    allow_id: bool = False,
) -> dict[str, Any]:
    """Report system, read-only, unknown and emptied fields; return what JSON Schema checks."""
    by_key = {f.key: f for f in fields}
    cleaned: dict[str, Any] = {}
    for key, value in payload.items():
        pointer = f"{base}/{key}"
        f = by_key.get(key)
        if allow_id and key == "id":
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                errors.append(ErrorDetail(pointer, "id must be the integer id of an existing row"))
            continue
        if f is None:
            if key in SYSTEM_COLUMNS:
                errors.append(
                    ErrorDetail(pointer, f"{key} is a system field and cannot be written")
                )
            else:
                errors.append(ErrorDetail(pointer, f"unknown field {key!r}"))
            continue
        if not f.writable:
            errors.append(ErrorDetail(pointer, f"{f.describe()} is read-only"))
            continue
        if value is None:
            if f.required:
                errors.append(ErrorDetail(pointer, f"{f.label} is required"))
            elif f.type.name == "subtable":
                errors.append(
                    ErrorDetail(pointer, f"{f.label} must be a list (use [] to empty it)")
                )
            continue
        if f.type.name == "subtable" and isinstance(value, list):
            cleaned[key] = [
                _precheck(f.children, row, f"{pointer}/{i}", errors, partial=False, allow_id=True)
                if isinstance(row, Mapping)
                else row
                for i, row in enumerate(value)
            ]
            continue
        cleaned[key] = value
    return cleaned


def _object_schema(fields: tuple[Field, ...], *, item_ids: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for f in fields:
        if not f.writable:
            continue
        fragment = f.type.fragment(f.prop)
        if f.type.name == "subtable":
            fragment = {**fragment, "items": _object_schema(f.children, item_ids=True)}
        properties[f.key] = fragment
    if item_ids:
        properties["id"] = {"type": "integer"}
    return {
        "type": "object",
        "properties": properties,
        # A required field with a default is filled in when absent, not refused.
        "required": [f.key for f in fields if f.required and f.writable and not f.has_default],
    }


def _describe(err: SchemaError, fields: tuple[Field, ...]) -> list[ErrorDetail]:
    path = [str(p) for p in err.absolute_path]
    pointer = "".join(f"/{p}" for p in path)
    f = _field_at(fields, path)
    if err.validator == "required":
        instance = err.instance if isinstance(err.instance, Mapping) else {}
        missing = [r for r in err.validator_value if r not in instance]
        owner = _children_at(fields, path)
        return [ErrorDetail(f"{pointer}/{m}", f"{_label(owner, m)} is required") for m in missing]
    label = f.label if f is not None else (path[-1] if path else "record")
    return [ErrorDetail(pointer, f"{label} {_message(err, f)}")]


def _message(err: SchemaError, f: Field | None) -> str:
    v = err.validator_value
    match err.validator:
        case "type":
            kinds = v if isinstance(v, list) else [v]
            names = {
                "string": "text",
                "integer": "a whole number",
                "number": "a number",
                "boolean": "true or false",
                "array": "a list",
                "object": "an object",
            }
            return "must be " + " or ".join(names.get(str(k), str(k)) for k in kinds)
        case "maxLength":
            return f"must be at most {v} characters"
        case "minLength":
            return f"must be at least {v} characters"
        case "minimum":
            return f"must be at least {v}"
        case "maximum":
            return f"must be at most {v}"
        case "exclusiveMinimum":
            return f"must be greater than {v}"
        case "exclusiveMaximum":
            return f"must be less than {v}"
        case "enum":
            return "must be one of: " + ", ".join(map(str, v))
        case "pattern":
            return PATTERN_MESSAGES.get(f.type.name if f else "", f"must match the pattern {v}")
        case "maxItems":
            return f"must have at most {v} items"
        case "minItems":
            return f"must have at least {v} items"
        case "uniqueItems":
            return "must not contain the same option twice"
    return str(err.message)


def _field_at(fields: tuple[Field, ...], path: list[str]) -> Field | None:
    if not path:
        return None
    f = next((g for g in fields if g.key == path[0]), None)
    if f is not None and f.type.name == "subtable" and len(path) >= 3:
        return next((c for c in f.children if c.key == path[2]), None)
    if f is not None and f.type.name == "multi_select" and len(path) == 2:
        return f
    return f


def _children_at(fields: tuple[Field, ...], path: list[str]) -> tuple[Field, ...]:
    if len(path) >= 2:
        f = next((g for g in fields if g.key == path[0]), None)
        if f is not None:
            return f.children
    return fields


def _label(fields: tuple[Field, ...], key: str) -> str:
    f = next((g for g in fields if g.key == key), None)
    return f.label if f is not None else key


def _convert(f: Field, value: Any, pointer: str, errors: list[ErrorDetail]) -> Any:
    if value is None:
        return None
    problem = f.type.check(value, f.prop)
    if problem:
        errors.append(ErrorDetail(pointer, f"{f.label} {problem}"))
        return None
    return f.type.to_python(value, f.prop)


def _parse_rows(
    f: Field, rows: list[Any], errors: list[ErrorDetail], failed: set[str]
) -> list[dict[str, Any]]:
    parsed: list[dict[str, Any]] = []
    by_key = {c.key: c for c in f.children}
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping) or f"/{f.key}/{i}" in failed:
            continue
        out: dict[str, Any] = {}
        for key, value in row.items():
            pointer = f"/{f.key}/{i}/{key}"
            if key == "id":
                if value is not None:  # a null id marks a new row, like a missing one
                    out["id"] = value
            elif key in by_key and pointer not in failed:
                out[key] = _convert(by_key[key], value, pointer, errors)
        # A row is written whole, so an absent field takes its default.
        for c in f.children:
            if c.key not in row and c.has_default and c.writable:
                out[c.key] = c.type.to_python(c.prop["default"], c.prop)
        parsed.append(out)
    return parsed
