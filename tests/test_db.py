"""engine.db and the system-table migrations, on the backend under test.

These pin down what the rest of the engine relies on: publishing a form runs
DDL inside one transaction and must leave nothing behind when it fails, and
foreign keys hold on SQLite as they do on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import migrations
from engine.db import create_engine
from engine.system import form_table, form_version_table, metadata, user_table

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)

# The fixture's type, spelled out: `from conftest import ...` would pick
# whichever of the suite's conftest modules was imported first.
CountStatements = Callable[[sa.Engine | sa.Connection], AbstractContextManager[Any]]


def _tables(conn: sa.Connection) -> set[str]:
    return set(sa.inspect(conn).get_table_names())


def test_migrations_bring_an_empty_database_to_head(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)
    try:
        with engine.connect() as conn:
            assert not migrations.is_current(conn)
        migrations.upgrade(engine)
        with engine.connect() as conn:
            assert migrations.is_current(conn)
            assert _tables(conn) == {*metadata.tables, "alembic_version"}
    finally:
        engine.dispose()


def test_migrations_match_the_table_definitions(connection: sa.Connection) -> None:
    # A change to engine/system.py without a migration shows up here.
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": True}
    )
    assert compare_metadata(context, metadata) == []


def test_migrations_downgrade_to_base_and_upgrade_again(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        command.downgrade(migrations.alembic_config(conn), "base")
    with engine.connect() as conn:
        assert _tables(conn) <= {"alembic_version"}
    migrations.upgrade(engine)
    with engine.connect() as conn:
        assert migrations.is_current(conn)


def test_a_failed_transaction_leaves_no_ddl_behind(engine: sa.Engine) -> None:
    # What a failed publish looks like: DDL succeeds, a later step fails.
    with pytest.raises(sa.exc.DBAPIError), engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE form_probe (id INTEGER PRIMARY KEY)")
        conn.exec_driver_sql("ALTER TABLE ff_user ADD COLUMN probe INTEGER")
        assert "form_probe" in _tables(conn)
        conn.exec_driver_sql("CREATE TABLE form_probe (id INTEGER PRIMARY KEY)")
    # A new connection sees only what was committed.
    with engine.connect() as conn:
        assert "form_probe" not in _tables(conn)
        columns = {column["name"] for column in sa.inspect(conn).get_columns("ff_user")}
        assert "probe" not in columns


def test_foreign_keys_are_enforced(connection: sa.Connection) -> None:
    version = {
        "form_key": "customer",
        "version": 1,
        "definition": {},
        "plan": {},
        "published_at": NOW,
    }
    # A savepoint, because PostgreSQL refuses every later statement of a
    # transaction in which one failed.
    with pytest.raises(sa.exc.IntegrityError), connection.begin_nested():
        connection.execute(form_version_table.insert().values(version))

    connection.execute(
        form_table.insert().values(
            key="customer",
            table_name="form_customer",
            label="Customer",
            current_version=1,
            layout={},
            updated_at=NOW,
        )
    )
    connection.execute(form_version_table.insert().values(version))


def test_count_statements_ignores_transaction_control(
    engine: sa.Engine, count_statements: CountStatements
) -> None:
    # On SQLite engine.db sends BEGIN itself; a page that costs one query
    # must count one on both backends.
    with count_statements(engine) as log, engine.begin() as conn:
        conn.execute(sa.select(user_table.c.id))
        with conn.begin_nested():
            conn.execute(sa.select(form_table.c.key))
    assert log.count == 2, log.statements


@pytest.mark.parametrize("run", ["first", "second"])
def test_each_connection_test_starts_with_fresh_ids(connection: sa.Connection, run: str) -> None:
    # Run twice: the second run sees what the first one's rollback left.
    # PostgreSQL sequences ignore rollbacks, so the fixture resets them.
    row = {"username": f"user-{run}", "display_name": run, "created_at": NOW}
    assert connection.execute(user_table.insert().values(row)).inserted_primary_key == (1,)


def test_statement_timeout_cancels_a_long_statement(database_url: str, backend: str) -> None:
    """A runaway query is cancelled by the server instead of holding a worker."""
    engine = create_engine(database_url, statement_timeout_ms=100)
    try:
        with engine.connect() as conn:
            if backend == "postgresql":
                with pytest.raises(sa.exc.OperationalError, match="statement timeout"):
                    conn.execute(sa.text("SELECT pg_sleep(2)"))
            else:
                # SQLite has no server-side timeout; the option must not break it.
                assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()
