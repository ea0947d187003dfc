"""Rows to JSON, and the per-definition cache of payload codecs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import sqlalchemy as sa

from engine.forms.definition import Field, FormDefinition
from engine.forms.fieldtypes import DateTimeType, FieldType
from engine.records.payload import PayloadCodec

SYSTEM_FIELDS = (
    "id",
    "version",
    "created_at",
    "created_by",
    "updated_at",
    "updated_by",
    "owner_id",
    "dept_id",
)
_DATETIME = DateTimeType()


@lru_cache(maxsize=512)
def codec_for(definition: FormDefinition) -> PayloadCodec:
    """One codec per published definition object (definitions hash by identity)."""
    return PayloadCodec(definition)


Converter = Callable[[Any], Any] | None


@lru_cache(maxsize=512)
def _converters(definition: FormDefinition) -> dict[str, Converter]:
    """Column key -> JSON converter, None where the value is already JSON.

    Built once per definition: converting a page of rows is the hot path of
    every list, so it must not ask each field its type again for each row.
    """
    out: dict[str, Converter] = {
        key: _DATETIME.to_json if key in ("created_at", "updated_at") else None
        for key in SYSTEM_FIELDS
    }
    for f in definition.column_fields:
        identity = type(f.type).to_json is FieldType.to_json
        out[f.key] = None if identity else f.type.to_json
    return out


def row_json(definition: FormDefinition, row: Mapping[Any, Any]) -> dict[str, Any]:
    """System fields first, then the form's fields, for the keys ``row`` has."""
    out: dict[str, Any] = {}
    for key, convert in _converters(definition).items():
        if key in row:
            value = row[key]
            out[key] = convert(value) if convert is not None and value is not None else value
    return out


def rows_json(definition: FormDefinition, rows: Sequence[sa.Row[Any]]) -> list[dict[str, Any]]:
    """A page of rows selected with the same columns: the plan is made once."""
    if not rows:
        return []
    position = {key: i for i, key in enumerate(rows[0]._fields)}
    # In the order of row_json (system fields, then the form's), whatever
    # order the columns were selected in.
    plan = [
        (position[key], key, convert)
        for key, convert in _converters(definition).items()
        if key in position
    ]
    return [
        {
            key: convert(row[i]) if convert is not None and row[i] is not None else row[i]
            for i, key, convert in plan
        }
        for row in rows
    ]


def fields_json(fields: Iterable[Field], row: Mapping[Any, Any]) -> dict[str, Any]:
    return {f.key: f.type.to_json(row[f.key]) for f in fields if f.key in row}


def child_json(sub: Field, row: Mapping[Any, Any]) -> dict[str, Any]:
    return {"id": row["id"], **fields_json(sub.children, row)}
