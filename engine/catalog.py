"""Reading the catalogue of published forms and building their tables.

A :class:`Schema` is an immutable snapshot: every published form's current
definition with its SQLAlchemy tables in one ``MetaData``, so links between
forms resolve. Callers cache it by :func:`fingerprint` and rebuild only when
a form is published.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from engine.errors import NotFoundError
from engine.forms.definition import FormDefinition, parse_definition
from engine.publish.layout import Layout
from engine.system import (
    NAMING_CONVENTION,
    department_table,
    form_table,
    form_version_table,
    user_table,
)
from engine.tables import FormTables, build_tables


@dataclass(frozen=True)
class PublishedForm:
    key: str
    version: int
    definition: FormDefinition
    layout: Layout


def get_published(conn: sa.Connection, key: str, *, lock: bool = False) -> PublishedForm | None:
    """The current version of form ``key``; ``lock`` holds its row until commit
    (PostgreSQL), so two publishes of one form run one after the other."""
    query = (
        sa.select(
            form_table.c.current_version, form_table.c.layout, form_version_table.c.definition
        )
        .join(
            form_version_table,
            sa.and_(
                form_version_table.c.form_key == form_table.c.key,
                form_version_table.c.version == form_table.c.current_version,
            ),
        )
        .where(form_table.c.key == key)
    )
    if lock:
        query = query.with_for_update(of=form_table)
    row = conn.execute(query).one_or_none()
    if row is None:
        return None
    return PublishedForm(
        key=key,
        version=row.current_version,
        definition=parse_definition(row.definition, source=f"published form {key!r}", stored=True),
        layout=Layout.from_dict(row.layout),
    )


def published_keys(conn: sa.Connection) -> set[str]:
    return set(conn.execute(sa.select(form_table.c.key)).scalars())


def fingerprint(conn: sa.Connection) -> tuple[tuple[str, int], ...]:
    """Changes whenever any form is published: the key of a schema cache."""
    rows = conn.execute(
        sa.select(form_table.c.key, form_table.c.current_version).order_by(form_table.c.key)
    )
    return tuple((r.key, r.current_version) for r in rows)


def list_versions(conn: sa.Connection, key: str) -> list[dict[str, object]]:
    rows = conn.execute(
        sa.select(
            form_version_table.c.version,
            form_version_table.c.published_at,
            form_version_table.c.published_by,
            form_version_table.c.plan,
        )
        .where(form_version_table.c.form_key == key)
        .order_by(form_version_table.c.version)
    )
    return [dict(r._mapping) for r in rows]


def get_version_definition(conn: sa.Connection, key: str, version: int) -> dict[str, object]:
    row = conn.execute(
        sa.select(form_version_table.c.definition).where(
            form_version_table.c.form_key == key, form_version_table.c.version == version
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFoundError(f"Form {key!r} has no version {version}.")
    return dict(row)


@dataclass(frozen=True)
class Schema:
    fingerprint: tuple[tuple[str, int], ...]
    forms: Mapping[str, FormTables]
    versions: Mapping[str, int]
    metadata: sa.MetaData

    def form(self, key: str) -> FormTables:
        try:
            return self.forms[key]
        except KeyError:
            raise NotFoundError(f"There is no published form {key!r}.") from None


def new_metadata() -> sa.MetaData:
    """A MetaData holding the system tables that form tables reference."""
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    user_table.to_metadata(metadata)
    department_table.to_metadata(metadata)
    return metadata


def load_schema(conn: sa.Connection) -> Schema:
    rows = conn.execute(
        sa.select(form_table.c.key, form_table.c.current_version, form_version_table.c.definition)
        .join(
            form_version_table,
            sa.and_(
                form_version_table.c.form_key == form_table.c.key,
                form_version_table.c.version == form_table.c.current_version,
            ),
        )
        .order_by(form_table.c.key)
    ).all()
    metadata = new_metadata()
    forms: dict[str, FormTables] = {}
    for row in rows:
        definition = parse_definition(
            row.definition, source=f"published form {row.key!r}", stored=True
        )
        forms[row.key] = build_tables(definition, metadata)
    return Schema(
        fingerprint=tuple((r.key, r.current_version) for r in rows),
        forms=forms,
        versions={r.key: r.current_version for r in rows},
        metadata=metadata,
    )
