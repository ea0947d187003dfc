"""The catalogue of published forms: lookups on an empty and a filled database."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from engine.catalog import (
    fingerprint,
    get_published,
    get_version_definition,
    list_versions,
    load_schema,
    published_keys,
)
from engine.errors import NotFoundError
from engine.forms.definition import parse_definition
from engine.publish.service import publish

NOW = dt.datetime(2024, 5, 31, tzinfo=dt.UTC)


def form(key: str, **properties: dict[str, object]) -> dict[str, object]:
    return {"key": key, "schema": {"properties": properties or {"name": {"type": "string"}}}}


def test_an_empty_catalogue(connection: sa.Connection) -> None:
    assert get_published(connection, "customer") is None
    assert published_keys(connection) == set()
    assert fingerprint(connection) == ()
    assert list_versions(connection, "customer") == []
    schema = load_schema(connection)
    assert (schema.forms, schema.versions, schema.fingerprint) == ({}, {}, ())
    with pytest.raises(NotFoundError) as missing:
        get_version_definition(connection, "customer", 1)
    assert missing.value.message == "Form 'customer' has no version 1."


def test_fingerprint_changes_with_every_publish(connection: sa.Connection) -> None:
    publish(connection, parse_definition(form("branch")), now=NOW)
    publish(connection, parse_definition(form("account")), now=NOW)
    assert fingerprint(connection) == (("account", 1), ("branch", 1))
    publish(connection, parse_definition(form("branch", code={"type": "string"})), now=NOW)
    assert fingerprint(connection) == (("account", 1), ("branch", 2))
    # A no-op publish keeps it.
    publish(connection, parse_definition(form("branch", code={"type": "string"})), now=NOW)
    assert fingerprint(connection) == (("account", 1), ("branch", 2))
    assert published_keys(connection) == {"account", "branch"}
    schema = load_schema(connection)
    assert schema.fingerprint == fingerprint(connection)
    assert [c.name for c in schema.form("branch").table.c][-1] == "code"
    published = get_published(connection, "branch")
    assert published is not None
    assert (published.key, published.version) == ("branch", 2)
    assert published.layout.main.retired == {"name"}
