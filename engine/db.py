"""Database engines with the same transactional behaviour on every backend."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine


def create_engine(
    url: str, *, echo: bool = False, statement_timeout_ms: int | None = None
) -> Engine:
    """Create an engine for ``url``.

    On SQLite the driver's own transaction handling is replaced so that
    ``BEGIN`` is emitted by SQLAlchemy: DDL then runs inside the transaction
    and a failed publish rolls back completely, as it does on PostgreSQL.
    """
    kwargs: dict[str, Any] = {"echo": echo}
    sa_url = sa.make_url(url)
    if sa_url.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    elif statement_timeout_ms and sa_url.get_backend_name() == "postgresql":
        kwargs["connect_args"] = {"options": f"-c statement_timeout={int(statement_timeout_ms)}"}
    engine = sa.create_engine(sa_url, **kwargs)
    if sa_url.get_backend_name() == "sqlite":
        _make_sqlite_transactional(engine)
    return engine


def _make_sqlite_transactional(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # A connection that will write may ask for the write lock up front
        # (execution option sqlite_begin="IMMEDIATE"): a deferred transaction
        # that reads first cannot wait for another writer, it fails with
        # SQLITE_BUSY_SNAPSHOT when it tries to write.
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode not in ("DEFERRED", "IMMEDIATE", "EXCLUSIVE"):
            raise ValueError(f"sqlite_begin must be DEFERRED, IMMEDIATE or EXCLUSIVE, not {mode!r}")
        conn.exec_driver_sql(f"BEGIN {mode}")
