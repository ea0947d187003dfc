"""Defaults: a required field with a default may be left out; sub-table rows get theirs."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from engine.catalog import load_schema
from engine.errors import RecordValidationError
from engine.forms.definition import parse_definition
from engine.publish.service import publish
from engine.records.service import Actor, RecordStore

TICKET: dict[str, Any] = {
    "key": "ticket",
    "schema": {
        "title": "工单",
        "properties": {
            "title": {"type": "string", "title": "标题", "maxLength": 50},
            "status": {
                "type": "string",
                "title": "状态",
                "enum": ["open", "closed"],
                "default": "open",
            },
            "steps": {
                "x-type": "subtable",
                "title": "步骤",
                "items": {
                    "properties": {
                        "name": {"type": "string", "maxLength": 20},
                        "done": {"type": "boolean", "default": False},
                    },
                    "required": ["name", "done"],
                },
            },
        },
        "required": ["title", "status"],
    },
}


@pytest.fixture
def store(connection: sa.Connection) -> RecordStore:
    publish(connection, parse_definition(TICKET))
    return RecordStore(connection, load_schema(connection).form("ticket"), actor=Actor())


def test_required_field_with_default_may_be_left_out(store: RecordStore) -> None:
    record = store.create({"title": "a"})
    assert record["status"] == "open"


def test_required_field_with_default_cannot_be_emptied(store: RecordStore) -> None:
    with pytest.raises(RecordValidationError) as info:
        store.create({"title": "a", "status": None})
    assert [e.as_dict() for e in info.value.errors] == [
        {"pointer": "/status", "message": "状态 is required"}
    ]


def test_subtable_rows_get_their_defaults_on_create_and_update(store: RecordStore) -> None:
    record = store.create({"title": "a", "steps": [{"name": "x"}, {"name": "y", "done": True}]})
    assert [(s["name"], s["done"]) for s in record["steps"]] == [("x", False), ("y", True)]
    first = record["steps"][0]["id"]
    updated = store.update(
        record["id"], {"steps": [{"id": first, "name": "x2"}, {"name": "z"}]}, expected_version=1
    )
    assert [(s["name"], s["done"]) for s in updated["steps"]] == [("x2", False), ("z", False)]
    assert updated["steps"][0]["id"] == first


def test_a_missing_required_row_field_without_default_is_still_refused(store: RecordStore) -> None:
    with pytest.raises(RecordValidationError) as info:
        store.create({"title": "a", "steps": [{"done": True}]})
    assert [e.as_dict() for e in info.value.errors] == [
        {"pointer": "/steps/0/name", "message": "name is required"}
    ]
