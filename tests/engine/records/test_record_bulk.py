"""create_many: many records in a fixed number of statements, all or nothing."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
import sqlalchemy as sa

from engine.catalog import load_schema
from engine.errors import ConflictError, LinkError, RecordValidationError
from engine.forms.definition import parse_definition
from engine.publish.service import publish
from engine.records.service import Actor, RecordStore
from engine.system import audit_table

Counter = Callable[[sa.Engine | sa.Connection], AbstractContextManager[Any]]

BRANCH: dict[str, Any] = {
    "key": "branch",
    "schema": {"properties": {"name": {"type": "string", "maxLength": 20}}},
}
ACCOUNT: dict[str, Any] = {
    "key": "account",
    "schema": {
        "title": "账户",
        "properties": {
            "no": {"type": "string", "title": "账号", "maxLength": 20, "x-unique": True},
            "branch": {"x-type": "link", "x-link": "branch"},
            "lines": {
                "x-type": "subtable",
                "items": {"properties": {"memo": {"type": "string", "maxLength": 10}}},
            },
        },
        "required": ["no"],
    },
}


def stores(conn: sa.Connection) -> tuple[RecordStore, RecordStore]:
    publish(conn, parse_definition(BRANCH))
    publish(conn, parse_definition(ACCOUNT))
    schema = load_schema(conn)
    actor = Actor(user_id=None)
    return (
        RecordStore(conn, schema.form("branch"), actor=actor),
        RecordStore(conn, schema.form("account"), actor=actor),
    )


def payloads(n: int, branch_id: int) -> list[dict[str, Any]]:
    return [{"no": f"A{i:05d}", "branch": branch_id, "lines": [{"memo": "x"}]} for i in range(n)]


@pytest.mark.parametrize("n", [1, 10, 200])
def test_statement_count_does_not_grow_with_the_batch(
    connection: sa.Connection, count_statements: Counter, n: int
) -> None:
    branches, accounts = stores(connection)
    branch_id = branches.create({"name": "总行"})["id"]
    with count_statements(connection) as log:
        records = accounts.create_many(payloads(n, branch_id))
    # reference check, unique check, insert, sub-table insert, read back,
    # sub-table read back, audit: seven statements whatever n is.
    assert log.count == 7, log.statements
    assert [r["no"] for r in records] == [f"A{i:05d}" for i in range(n)]
    assert all(r["lines"][0]["memo"] == "x" and r["version"] == 1 for r in records)
    audits = connection.execute(
        sa.select(sa.func.count())
        .select_from(audit_table)
        .where(audit_table.c.form_key == "account")
    ).scalar_one()
    assert audits == n


def test_every_problem_of_every_payload_is_reported_with_its_index(
    connection: sa.Connection,
) -> None:
    _, accounts = stores(connection)
    with pytest.raises(RecordValidationError) as info:
        accounts.create_many([{"no": "ok"}, {"no": None}, {"no": "x" * 21, "bogus": 1}])
    assert [e.as_dict() for e in info.value.errors] == [
        {"pointer": "/1/no", "message": "账号 is required"},
        {"pointer": "/2/bogus", "message": "unknown field 'bogus'"},
        {"pointer": "/2/no", "message": "账号 must be at most 20 characters"},
    ]
    assert (
        accounts.conn.execute(sa.select(sa.func.count()).select_from(accounts.table)).scalar_one()
        == 0
    )


def test_duplicates_inside_the_batch_and_against_the_table_are_refused(
    connection: sa.Connection,
) -> None:
    _, accounts = stores(connection)
    first = accounts.create({"no": "A1"})
    with pytest.raises(ConflictError) as info:
        accounts.create_many([{"no": "A1"}, {"no": "B"}, {"no": "B"}])
    assert [e.as_dict() for e in info.value.errors] == [
        {"pointer": "/0/no", "message": f"账号 A1 is already used by record {first['id']}"},
        {"pointer": "/2/no", "message": "账号 B is also given at /1/no"},
    ]


def test_dangling_links_are_reported_per_payload(connection: sa.Connection) -> None:
    _, accounts = stores(connection)
    with pytest.raises(LinkError) as info:
        accounts.create_many([{"no": "A", "branch": 99}, {"no": "B", "branch": 99}])
    assert [e.as_dict() for e in info.value.errors] == [
        {"pointer": "/0/branch", "message": "branch record 99 does not exist"},
        {"pointer": "/1/branch", "message": "branch record 99 does not exist"},
    ]
