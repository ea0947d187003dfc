"""Rows to JSON, and the per-definition cache of payload codecs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from engine.forms.definition import Field, FormDefinition
from engine.forms.fieldtypes import DateTimeType
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


def system_json(row: Mapping[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in SYSTEM_FIELDS:
        if key in row:
            value = row[key]
            out[key] = _DATETIME.to_json(value) if isinstance(value, dt.datetime) else value
    return out


def fields_json(fields: Iterable[Field], row: Mapping[Any, Any]) -> dict[str, Any]:
    return {f.key: f.type.to_json(row[f.key]) for f in fields if f.key in row}


def row_json(definition: FormDefinition, row: Mapping[Any, Any]) -> dict[str, Any]:
    return {**system_json(row), **fields_json(definition.column_fields, row)}


def child_json(sub: Field, row: Mapping[Any, Any]) -> dict[str, Any]:
    return {"id": row["id"], **fields_json(sub.children, row)}
