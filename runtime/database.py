"""The database at the edge: engines from settings, transactions, upgrades.

Commands and requests each open one transaction here and hand the
connection to the engine, which flushes but never commits.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine

from engine.db import create_engine
from engine.publish.layout import Layout
from engine.system import form_table
from migrations import alembic_config, is_current
from runtime.settings import Settings


class DatabaseUnavailable(Exception):
    """The database cannot be reached or is not ready for use."""


def safe_url(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    return sa.make_url(url).render_as_string(hide_password=True)


def engine_from_settings(settings: Settings, *, echo: bool = False) -> Engine:
    """An engine for ``settings.database_url``.

    For a SQLite file the folder is created first, so the default database
    in ``data_dir`` works on a fresh machine.
    """
    url = sa.make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return create_engine(
        settings.database_url, echo=echo, statement_timeout_ms=settings.statement_timeout_ms
    )


@contextmanager
def transaction(
    engine: Engine, *, require_upgraded: bool = True, commit: bool = True
) -> Iterator[sa.Connection]:
    """One transaction: committed if the block succeeds, else rolled back.

    ``commit=False`` always rolls back (a dry run). With
    ``require_upgraded`` the system tables must be at the newest revision.
    """
    try:
        conn = engine.connect()
    except sa.exc.OperationalError as exc:
        raise DatabaseUnavailable(
            f"Cannot connect to the database {safe_url(str(engine.url))}: {exc.orig}"
        ) from None
    with conn:
        trans = conn.begin()
        try:
            if require_upgraded and not is_current(conn):
                raise DatabaseUnavailable(
                    f"The database {safe_url(str(engine.url))} is not upgraded to this "
                    "version of Formflow; run `formflow db upgrade` first."
                )
            yield conn
        except BaseException:
            trans.rollback()
            raise
        if commit:
            trans.commit()
        else:
            trans.rollback()


def current_revisions(conn: sa.Connection) -> tuple[str, ...]:
    return tuple(sorted(MigrationContext.configure(conn).get_current_heads()))


def upgrade_database(conn: sa.Connection) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Bring the system tables to the newest revision in ``conn``'s transaction.

    Returns the revisions before and after.
    """
    before = current_revisions(conn)
    command.upgrade(alembic_config(conn), "head")
    return before, current_revisions(conn)


@dataclass(frozen=True)
class FormSummary:
    key: str
    version: int
    label: str
    table: str
    subtables: tuple[str, ...]  # live child tables (retired ones left out)


def list_forms(conn: sa.Connection) -> list[FormSummary]:
    """Every published form, by key."""
    rows = conn.execute(
        sa.select(
            form_table.c.key,
            form_table.c.current_version,
            form_table.c.label,
            form_table.c.table_name,
            form_table.c.layout,
        ).order_by(form_table.c.key)
    )
    forms = []
    for r in rows:
        layout = Layout.from_dict(r.layout)
        children = tuple(
            t.table for k, t in sorted(layout.children.items()) if k not in layout.retired_children
        )
        forms.append(FormSummary(r.key, r.current_version, r.label, r.table_name, children))
    return forms
