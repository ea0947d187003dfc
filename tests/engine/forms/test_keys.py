"""Machine keys become SQL identifiers: the rules in engine.forms.keys."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from engine.forms.keys import (
    MAX_IDENTIFIER_LENGTH,
    SQL_RESERVED,
    SYSTEM_COLUMNS,
    child_table_name,
    key_problem,
    table_name,
)

PATTERN_MESSAGE = (
    "key {!r} must start with a lower-case letter and contain only "
    "a-z, 0-9 and '_' (at most 41 characters)"
)


@pytest.mark.parametrize("key", ["a", "customer", "loan_2", "a_", "x" * 41, "id_number"])
def test_valid_keys_have_no_problem(key: str) -> None:
    assert key_problem(key) is None


@pytest.mark.parametrize(
    "key", ["", "Customer", "1abc", "_a", "a-b", "a b", "客户", "x" * 42, "café", "a\n"]
)
def test_keys_outside_the_portable_pattern_are_refused(key: str) -> None:
    assert key_problem(key) == PATTERN_MESSAGE.format(key)


@pytest.mark.parametrize("key", [None, 3, b"abc", ["a"]])
def test_a_key_must_be_a_string(key: object) -> None:
    assert key_problem(key) == "a key must be a string"


@pytest.mark.parametrize("key", ["select", "user", "order", "group", "end", "do", "window"])
def test_reserved_words_are_refused(key: str) -> None:
    assert key_problem(key) == f"key {key!r} is an SQL reserved word; choose another key"


@pytest.mark.parametrize("key", sorted(SYSTEM_COLUMNS))
def test_system_columns_are_refused(key: str) -> None:
    assert key_problem(key) == f"key {key!r} is a system column; choose another key"


def test_double_underscore_is_reserved_for_sub_tables() -> None:
    assert key_problem("loan__documents") == (
        "key 'loan__documents' must not contain '__' (reserved for sub-table names)"
    )


def test_physical_names() -> None:
    assert table_name("customer") == "form_customer"
    assert child_table_name("loan", "documents") == "form_loan__documents"
    # The longest form key still gives a legal PostgreSQL table name.
    assert len(table_name("x" * 41)) <= MAX_IDENTIFIER_LENGTH


def test_every_postgresql_reserved_word_is_refused(connection: sa.Connection, backend: str) -> None:
    """Compare with the server's own list (catcode R: reserved, T: reserved
    but usable as a function or type name)."""
    if backend == "postgresql":
        words = set(
            connection.exec_driver_sql(
                "SELECT word FROM pg_get_keywords() WHERE catcode IN ('R', 'T')"
            ).scalars()
        )
    else:
        # Without a server at hand, SQLAlchemy's copy of PostgreSQL's list.
        from sqlalchemy.dialects.postgresql.base import RESERVED_WORDS

        words = set(RESERVED_WORDS)
    assert len(words) > 70
    assert sorted(words - SQL_RESERVED) == []
