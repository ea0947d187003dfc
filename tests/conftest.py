"""Real databases for tests, on the backend CI chose.

``FORMFLOW_TEST_DATABASE_URL`` selects PostgreSQL (its role needs CREATEDB;
the database it names is only used to create the session's own databases).
Unset, every test gets SQLite files under its ``tmp_path``. Tests never share
state: each ``engine`` starts on an empty, migrated database, and
``connection`` is rolled back.

Running Alembic for every test would dominate the suite, so each backend gets
a cheaper route to the same state (measured on the 2-core CI machine):

* SQLite: migrate one template file per session and copy it per test
  (~3 ms against ~14 ms for running the migrations).
* PostgreSQL: one scratch database per session whose ``public`` schema is
  dropped and migrated again per test (~45 ms, nearly all of it the server
  running the CREATE TABLEs). Cloning a migrated template per test with
  ``CREATE DATABASE ... TEMPLATE`` measured 30-300 ms: it copies the whole
  catalogue and waits for checkpoints, so it varied with the server's load.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest
import sqlalchemy as sa
from sqlalchemy import event

import migrations
from engine.db import create_engine as create_formflow_engine

Backend = Literal["sqlite", "postgresql"]

URL_VARIABLE = "FORMFLOW_TEST_DATABASE_URL"


def _render(url: sa.URL) -> str:
    # str(URL) masks the password as "***", which cannot connect.
    return url.render_as_string(hide_password=False)


def _migrate(url: str) -> None:
    engine = create_formflow_engine(url)
    try:
        migrations.upgrade(engine)
    finally:
        engine.dispose()


class _SQLiteDatabases:
    """Database files copied from one migrated template."""

    def __init__(self, session_dir: Path) -> None:
        self._template = session_dir / "template.db"
        template_engine = create_formflow_engine(f"sqlite:///{self._template}")
        try:
            migrations.upgrade(template_engine)
        finally:
            template_engine.dispose()
        # Fold the WAL into the main file, so that copying that one file
        # copies the whole database. It stays a WAL database: switching
        # each copy back to WAL on first connect would cost ~15 ms a test.
        with closing(sqlite3.connect(self._template)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._shared = self._copy(session_dir / "shared.db")

    def _copy(self, path: Path) -> str:
        shutil.copyfile(self._template, path)
        return f"sqlite:///{path}"

    def fresh(self, tmp_path: Path, *, migrated: bool) -> str:
        if migrated:
            return self._copy(tmp_path / "formflow.db")
        return f"sqlite:///{tmp_path / 'empty.db'}"

    def release(self) -> None:
        pass

    def shared(self) -> str:
        return self._shared

    def reset_shared(self, session_dir: Path) -> None:
        self._shared = self._copy(session_dir / f"shared-{secrets.token_hex(4)}.db")

    def close(self) -> None:
        pass


def _terminate_own_sessions(conn: sa.Connection, database: str) -> None:
    # Only our role's: ending anyone else's (autovacuum included) needs
    # privileges the test role does not have.
    conn.execute(
        sa.text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :database"
            " AND usename = current_user AND pid <> pg_backend_pid()"
        ),
        {"database": database},
    )


class _PostgresDatabases:
    """Two databases per session: a scratch one reset per test, a shared one."""

    def __init__(self, url: str) -> None:
        base = sa.make_url(url)
        # Named per session so concurrent runs against one server never meet.
        prefix = f"{base.database}_{os.getpid()}_{secrets.token_hex(3)}"
        self._admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
        self._names = [f"{prefix}_scratch", f"{prefix}_shared"]
        self._scratch_url, self._shared = (_render(base.set(database=n)) for n in self._names)
        # Resets run on this long-lived engine: a new PostgreSQL connection
        # (SCRAM authentication) costs ~10 ms, a pooled one nothing.
        self._scratch = create_formflow_engine(self._scratch_url)
        self._scratch_busy = False
        try:
            with self._admin.connect() as conn:
                for name in self._names:
                    conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
            _migrate(self._shared)
        except BaseException:
            self.close()
            raise

    def fresh(self, _tmp_path: Path, *, migrated: bool) -> str:
        if self._scratch_busy:
            raise RuntimeError(
                "one test asked for two fresh PostgreSQL databases; use either "
                "`database_url`/`engine` or `empty_database_url`"
            )
        with self._scratch.begin() as conn:
            # Connections a previous test leaked would block DROP SCHEMA.
            _terminate_own_sessions(conn, self._names[0])
            conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
        if migrated:
            migrations.upgrade(self._scratch)
        self._scratch_busy = True  # only now: a failed reset must not block later tests
        return self._scratch_url

    def release(self) -> None:
        self._scratch_busy = False

    def shared(self) -> str:
        return self._shared

    def reset_shared(self, _session_dir: Path) -> None:
        engine = create_formflow_engine(self._shared)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql("DROP SCHEMA public CASCADE")
                conn.exec_driver_sql("CREATE SCHEMA public")
            migrations.upgrade(engine)
        finally:
            engine.dispose()

    def close(self) -> None:
        self._scratch.dispose()
        with self._admin.connect() as conn:
            for name in self._names:
                _terminate_own_sessions(conn, name)
                # Not WITH (FORCE): that refuses to end an autovacuum worker
                # for a role without pg_signal_backend; plain DROP stops it.
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        self._admin.dispose()


_Databases = _SQLiteDatabases | _PostgresDatabases


@pytest.fixture(scope="session")
def backend() -> Backend:
    """The backend this run tests: "sqlite" or "postgresql"."""
    url = os.environ.get(URL_VARIABLE)
    if not url:
        return "sqlite"
    name = sa.make_url(url).get_backend_name()
    if name != "postgresql":
        raise pytest.UsageError(f"{URL_VARIABLE} must be a PostgreSQL URL, not {name}")
    return "postgresql"


@pytest.fixture(scope="session")
def _databases(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Databases]:
    databases: _Databases
    if backend == "postgresql":
        databases = _PostgresDatabases(os.environ[URL_VARIABLE])
    else:
        databases = _SQLiteDatabases(tmp_path_factory.mktemp("databases"))
    try:
        yield databases
    finally:
        databases.close()


@pytest.fixture
def database_url(_databases: _Databases, tmp_path: Path) -> Iterator[str]:
    """URL of a database of its own for this test, migrated to head, no data."""
    yield _databases.fresh(tmp_path, migrated=True)
    _databases.release()


@pytest.fixture
def empty_database_url(_databases: _Databases, tmp_path: Path) -> Iterator[str]:
    """URL of a database without any table, for tests of the migrations."""
    yield _databases.fresh(tmp_path, migrated=False)
    _databases.release()


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    """Formflow's engine on this test's own database; commit as you please."""
    engine = create_formflow_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def connection(
    _databases: _Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sa.Connection]:
    """A connection inside a transaction that is rolled back after the test.

    Much cheaper than ``engine``: the migrated database is shared by the
    whole session, and the rollback (DDL included, on both backends) keeps it
    empty. So the test must not commit; for an ORM session use
    ``Session(connection, join_transaction_mode="create_savepoint")``.
    """
    engine = create_formflow_engine(_databases.shared())
    try:
        with engine.connect() as conn:
            outer = conn.begin()
            if conn.dialect.name == "postgresql":
                # Sequences ignore rollbacks: without this, ids would go on
                # from where the previous test left them, not start at 1.
                conn.exec_driver_sql(
                    "SELECT setval(quote_ident(schemaname) || '.' || quote_ident(sequencename),"
                    " 1, false) FROM pg_sequences WHERE schemaname = 'public'"
                )
            yield conn
            committed = not outer.is_active
            if outer.is_active:
                outer.rollback()
    finally:
        engine.dispose()
    if committed:
        _databases.reset_shared(tmp_path_factory.mktemp("databases"))
        pytest.fail("the test ended the `connection` fixture's transaction; use `engine`")


# Statements that only delimit transactions: SQLite's recipe in engine.db
# sends BEGIN as SQL while psycopg does not, so counting them would make the
# same code count differently on the two backends.
_TRANSACTION_CONTROL = re.compile(r"\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.I)


@dataclass
class StatementLog:
    """SQL statements sent to the database while a ``count_statements`` block ran."""

    statements: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.statements)


CountStatements = Callable[[sa.Engine | sa.Connection], AbstractContextManager[StatementLog]]


@pytest.fixture
def count_statements() -> CountStatements:
    """Count round trips, e.g. to prove that a list page costs one query.

    ``with count_statements(engine) as log: ...`` then ``assert log.count == 1``
    (``log.statements`` shows what ran). An ``executemany`` counts once.
    Transaction control is not counted. Annotate the fixture with a local
    ``Callable[[Engine | Connection], AbstractContextManager[Any]]``: the
    suite has several ``conftest`` modules, so importing from one is a race.
    """

    @contextmanager
    def counting(target: sa.Engine | sa.Connection) -> Iterator[StatementLog]:
        log = StatementLog()

        def before_cursor_execute(
            _conn: sa.Connection, _cursor: Any, statement: str, *_: Any
        ) -> None:
            if not _TRANSACTION_CONTROL.match(statement):
                log.statements.append(statement)

        event.listen(target, "before_cursor_execute", before_cursor_execute)
        try:
            yield log
        finally:
            event.remove(target, "before_cursor_execute", before_cursor_execute)

    return counting
