"""Physical tables for a form definition: names, system columns, indexes, keys."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from engine.catalog import new_metadata
from engine.forms.definition import parse_definition
from engine.forms.keys import MAX_IDENTIFIER_LENGTH
from engine.tables import build_tables, index_name

LOAN = parse_definition(
    {
        "key": "loan",
        "schema": {
            "properties": {
                "code": {"type": "string", "maxLength": 12, "x-unique": True},
                "phone": {"x-type": "phone", "x-index": True},
                "referrer": {"x-type": "link", "x-link": "loan"},
                "notes": {"x-type": "long_text"},
                "docs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "kind": {"type": "string", "x-index": True},
                            "checked_by": {"x-type": "user"},
                        },
                    },
                },
            }
        },
    }
)
NOW = dt.datetime(2024, 5, 31, tzinfo=dt.UTC)


def test_index_names() -> None:
    assert index_name("form_customer", "phone") == "ix_form_customer_phone"
    assert index_name("form_customer", "id_number", unique=True) == "uq_form_customer_id_number"
    long = index_name("form_" + "a" * 41, "b" * 41)
    assert len(long) == MAX_IDENTIFIER_LENGTH
    assert long.startswith("ix_form_aaaa") and long[-9] == "_"
    assert int(long[-8:], 16) >= 0
    # Deterministic, and different for names that share the cut prefix.
    assert long == index_name("form_" + "a" * 41, "b" * 41)
    assert long != index_name("form_" + "a" * 41, "b" * 40 + "c")
    assert long != index_name("form_" + "a" * 41, "b" * 41, unique=True)


def test_build_tables() -> None:
    tables = build_tables(LOAN, new_metadata())
    table = tables.table
    assert table.name == "form_loan"
    assert [c.name for c in table.c] == [
        "id",
        "created_at",
        "created_by",
        "updated_at",
        "updated_by",
        "owner_id",
        "dept_id",
        "version",
        "deleted_at",
        "code",
        "phone",
        "referrer",
        "notes",
    ]
    assert all(table.c[k].nullable for k in ("code", "phone", "referrer", "notes"))
    assert not table.c.created_at.nullable and not table.c.version.nullable
    assert table.c.id.primary_key
    indexes = {i.name: i for i in table.indexes}
    assert sorted(indexes) == [
        "ix_form_loan_created_at",
        "ix_form_loan_dept_id",
        "ix_form_loan_owner_id",
        "ix_form_loan_phone",
        "ix_form_loan_referrer",
        "uq_form_loan_code",
    ]
    unique = indexes["uq_form_loan_code"]
    assert unique.unique
    # Unique among live records only, on both databases.
    assert str(unique.dialect_options["postgresql"]["where"]) == "deleted_at IS NULL"
    assert str(unique.dialect_options["sqlite"]["where"]) == "deleted_at IS NULL"
    (fk,) = table.c.referrer.foreign_keys
    assert fk.target_fullname == "form_loan.id"

    child = tables.children["docs"]
    assert child.name == "form_loan__docs"
    assert [c.name for c in child.c] == ["id", "parent_id", "position", "kind", "checked_by"]
    (parent,) = child.c.parent_id.foreign_keys
    assert (parent.target_fullname, parent.ondelete) == ("form_loan.id", "CASCADE")
    assert sorted((i.name, tuple(c.name for c in i.columns)) for i in child.indexes) == [
        ("ix_form_loan__docs_kind", ("kind",)),
        ("ix_form_loan__docs_parent_id", ("parent_id", "position")),
    ]
    (user,) = child.c.checked_by.foreign_keys
    assert user.target_fullname == "ff_user.id"


def test_tables_on_the_database(connection: sa.Connection) -> None:
    tables = build_tables(LOAN, new_metadata())
    tables.table.create(connection)
    tables.children["docs"].create(connection)
    loan = connection.execute(
        sa.insert(tables.table).values(created_at=NOW, updated_at=NOW, code="A")
    ).inserted_primary_key[0]
    assert connection.execute(sa.select(tables.table.c.version)).scalar_one() == 1
    connection.execute(
        sa.insert(tables.children["docs"]),
        [{"parent_id": loan, "position": i, "kind": "x"} for i in range(3)],
    )
    # A duplicate is refused while the first is live, and allowed once it is deleted.
    with pytest.raises(sa.exc.IntegrityError), connection.begin_nested():
        connection.execute(sa.insert(tables.table).values(created_at=NOW, updated_at=NOW, code="A"))
    connection.execute(sa.update(tables.table).values(deleted_at=NOW))
    connection.execute(sa.insert(tables.table).values(created_at=NOW, updated_at=NOW, code="A"))
    # Child rows go with their parent.
    connection.execute(sa.delete(tables.table).where(tables.table.c.id == loan))
    assert (
        connection.execute(
            sa.select(sa.func.count()).select_from(tables.children["docs"])
        ).scalar_one()
        == 0
    )
    with pytest.raises(sa.exc.IntegrityError), connection.begin_nested():
        connection.execute(sa.insert(tables.children["docs"]).values(parent_id=999, position=0))
