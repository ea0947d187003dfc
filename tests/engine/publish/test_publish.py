"""Publishing on a real database (SQLite and PostgreSQL): plan, check, apply."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from engine.catalog import (
    fingerprint,
    get_published,
    get_version_definition,
    list_versions,
    load_schema,
)
from engine.errors import NotFoundError, PlanRefusedError
from engine.forms.definition import parse_definition
from engine.publish.service import PublishResult, plan_publish, publish
from engine.system import form_table, form_version_table

NOW = dt.datetime(2024, 5, 31, 1, 30, tzinfo=dt.UTC)


# --- helpers ------------------------------------------------------------------


def doc(
    properties: dict[str, Any], required: list[str] | None = None, key: str = "customer"
) -> dict[str, Any]:
    schema: dict[str, Any] = {"title": "客户", "properties": properties}
    if required:
        schema["required"] = required
    return {"key": key, "schema": schema}


def sub(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    items: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        items["required"] = required
    return {"type": "array", "items": items}


def publish_doc(engine: sa.Engine, document: dict[str, Any]) -> PublishResult:
    with engine.begin() as conn:
        return publish(conn, parse_definition(document), now=NOW)


def refusal(engine: sa.Engine, document: dict[str, Any]) -> list[tuple[str, str]]:
    """Publish, expect a refusal, and check that nothing at all changed."""
    before = snapshot(engine)
    with pytest.raises(PlanRefusedError) as caught, engine.begin() as conn:
        publish(conn, parse_definition(document), now=NOW)
    assert caught.value.message == (
        f"Publishing form {document['key']!r} was refused; nothing was changed."
    )
    assert snapshot(engine) == before
    return [(e.pointer, e.message) for e in caught.value.errors]


def insert(
    engine: sa.Engine, form: str, *rows: dict[str, Any], child: str | None = None
) -> list[int]:
    """Insert rows through the published form's SQLAlchemy table; return their ids."""
    with engine.begin() as conn:
        tables = load_schema(conn).form(form)
        table = tables.children[child] if child else tables.table
        ids = []
        for row in rows:
            values = dict(row) if child else {"created_at": NOW, "updated_at": NOW, **row}
            ids.append(conn.execute(sa.insert(table).values(values)).inserted_primary_key[0])
        return ids


def select_all(engine: sa.Engine, table: str, *columns: str) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        t = sa.table(table, *(sa.column(c) for c in ("id", *columns)))
        return [tuple(r) for r in conn.execute(sa.select(*t.c).order_by(t.c.id))]


def soft_delete(engine: sa.Engine, table: str, row_id: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(f"UPDATE {table} SET deleted_at = :now WHERE id = :id"),
            {"now": NOW.replace(tzinfo=None), "id": row_id},
        )


def columns(engine: sa.Engine, table: str) -> dict[str, sa.types.TypeEngine[Any]]:
    with engine.connect() as conn:
        return {c["name"]: c["type"] for c in sa.inspect(conn).get_columns(table)}


def indexes(engine: sa.Engine, table: str) -> dict[str, tuple[list[str], bool]]:
    with engine.connect() as conn:
        return {
            str(i["name"]): (list(i["column_names"]), bool(i["unique"]))
            for i in sa.inspect(conn).get_indexes(table)
        }


def field_indexes(engine: sa.Engine, table: str) -> dict[str, tuple[list[str], bool]]:
    system = {"owner_id", "dept_id", "created_at", "parent_id"}
    return {k: v for k, v in indexes(engine, table).items() if v[0][0] not in system}


def foreign_keys(engine: sa.Engine, table: str) -> list[tuple[list[str], str, list[str]]]:
    with engine.connect() as conn:
        return sorted(
            (list(f["constrained_columns"]), f["referred_table"], list(f["referred_columns"]))
            for f in sa.inspect(conn).get_foreign_keys(table)
        )


def snapshot(engine: sa.Engine) -> dict[str, Any]:
    """Every table's shape (columns, indexes, keys) and every row, for equality checks."""
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        result: dict[str, Any] = {}
        for name in sorted(inspector.get_table_names()):
            result[name] = {
                "columns": [
                    (c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(name)
                ],
                "indexes": sorted(
                    (str(i["name"]), tuple(i["column_names"]), bool(i["unique"]))
                    for i in inspector.get_indexes(name)
                ),
                "foreign_keys": sorted(
                    (tuple(f["constrained_columns"]), f["referred_table"])
                    for f in inspector.get_foreign_keys(name)
                ),
                "rows": [
                    tuple(map(repr, r))
                    for r in conn.execute(sa.text(f'SELECT * FROM "{name}" ORDER BY 1'))
                ],
            }
        return result


@contextmanager
def failing_statement(engine: sa.Engine, fragment: str) -> Iterator[list[str]]:
    """Make the database refuse the first statement containing ``fragment``.

    A fault at the outer boundary (the DBAPI call), standing in for a
    constraint, a lock timeout or a full disk; returns what ran before it.
    """
    ran: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if fragment in statement:
            raise sa.exc.OperationalError(statement, {}, RuntimeError("injected failure"))
        ran.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield ran
    finally:
        event.remove(engine, "before_cursor_execute", before)


NAME = {"type": "string", "title": "姓名", "maxLength": 20}
PHONE = {"x-type": "phone"}
CUSTOMER = doc({"name": NAME, "phone": PHONE})


# --- creating ---------------------------------------------------------------


def test_create_form(engine: sa.Engine, backend: str) -> None:
    result = publish_doc(
        engine,
        doc(
            {
                "name": NAME,
                "code": {"type": "string", "maxLength": 10, "x-unique": True},
                "phone": {**PHONE, "x-index": True},
                "amount": {"x-type": "money"},
                "born": {"type": "string", "format": "date"},
                "vip": {"type": "boolean"},
                "tags": {"type": "array", "items": {"enum": ["a", "b"]}},
                "owner": {"x-type": "user"},
                "docs": sub({"kind": {"type": "string", "enum": ["id", "income"]}}),
            },
            required=["name"],
        ),
    )
    assert (result.form_key, result.version, result.changed) == ("customer", 1, True)
    assert result.plan.describe() == [
        "create table form_customer",
        "create table form_customer__docs",
    ]
    cols = columns(engine, "form_customer")
    assert list(cols) == [
        "id",
        "created_at",
        "created_by",
        "updated_at",
        "updated_by",
        "owner_id",
        "dept_id",
        "version",
        "deleted_at",
        "name",
        "code",
        "phone",
        "amount",
        "born",
        "vip",
        "tags",
        "owner",
    ]
    assert cols["name"].length == 20 and cols["code"].length == 10
    if backend == "postgresql":
        assert (cols["amount"].precision, cols["amount"].scale) == (18, 2)
    else:
        assert isinstance(cols["amount"], sa.BIGINT)  # a scaled integer
    assert field_indexes(engine, "form_customer") == {
        "uq_form_customer_code": (["code"], True),
        "ix_form_customer_phone": (["phone"], False),
    }
    assert set(indexes(engine, "form_customer")) >= {
        "ix_form_customer_owner_id",
        "ix_form_customer_dept_id",
        "ix_form_customer_created_at",
    }
    assert foreign_keys(engine, "form_customer") == [
        (["created_by"], "ff_user", ["id"]),
        (["dept_id"], "ff_department", ["id"]),
        (["owner"], "ff_user", ["id"]),
        (["owner_id"], "ff_user", ["id"]),
        (["updated_by"], "ff_user", ["id"]),
    ]
    assert list(columns(engine, "form_customer__docs")) == ["id", "parent_id", "position", "kind"]
    assert foreign_keys(engine, "form_customer__docs") == [
        (["parent_id"], "form_customer", ["id"]),
    ]
    with engine.connect() as conn:
        form = conn.execute(sa.select(form_table)).one()
        assert (form.key, form.table_name, form.label, form.current_version) == (
            "customer",
            "form_customer",
            "客户",
            1,
        )
        assert form.layout["main"]["indexes"] == {"code": "unique", "phone": "index"}
        published = get_published(conn, "customer")
        assert published is not None and published.version == 1
        assert fingerprint(conn) == (("customer", 1),)


def test_a_form_with_rows_works_end_to_end(engine: sa.Engine) -> None:
    publish_doc(
        engine,
        doc(
            {"name": NAME, "amount": {"x-type": "money"}, "docs": sub({"kind": {"type": "string"}})}
        ),
    )
    (cid,) = insert(engine, "customer", {"name": "王五", "amount": Decimal("9999999999999999.99")})
    insert(engine, "customer", {"parent_id": cid, "position": 0, "kind": "id"}, child="docs")
    with engine.connect() as conn:
        table = load_schema(conn).form("customer").table
        assert conn.execute(sa.select(table.c.amount)).scalar_one() == Decimal(
            "9999999999999999.99"
        )
    assert select_all(engine, "form_customer__docs", "parent_id", "kind") == [(1, cid, "id")]


# --- adding -----------------------------------------------------------------


def test_add_nullable_column_rewrites_no_row(engine: sa.Engine, count_statements: Any) -> None:
    publish_doc(engine, CUSTOMER)
    insert(engine, "customer", {"name": "王五", "phone": "13800138000"}, {"name": "李四"})
    before = select_all(engine, "form_customer", "name", "phone", "updated_at", "version")
    with count_statements(engine) as log:
        result = publish_doc(
            engine, doc({"name": NAME, "phone": PHONE, "email": {"x-type": "email"}})
        )
    assert [(s.kind, s.column) for s in result.plan.steps] == [("add_column", "email")]
    assert result.version == 2
    assert select_all(engine, "form_customer", "name", "phone", "updated_at", "version") == before
    assert select_all(engine, "form_customer", "email") == [(1, None), (2, None)]
    ddl = [s for s in log.statements if s.lstrip().upper().startswith(("ALTER", "CREATE", "DROP"))]
    assert len(ddl) == 1 and "ADD COLUMN" in ddl[0].upper() and "email" in ddl[0]
    assert not [
        s for s in log.statements if s.lstrip().upper().startswith("UPDATE form_customer".upper())
    ]


def test_add_index(engine: sa.Engine) -> None:
    publish_doc(engine, CUSTOMER)
    insert(engine, "customer", {"phone": "13800138000"}, {"phone": "13800138000"})
    result = publish_doc(engine, doc({"name": NAME, "phone": {**PHONE, "x-index": True}}))
    assert [(s.kind, s.column, s.unique) for s in result.plan.steps] == [
        ("add_index", "phone", False),
    ]
    assert field_indexes(engine, "form_customer") == {"ix_form_customer_phone": (["phone"], False)}
    publish_doc(engine, CUSTOMER)
    assert field_indexes(engine, "form_customer") == {}


def test_add_unique_refused_while_live_rows_repeat_a_value(engine: sa.Engine) -> None:
    publish_doc(engine, CUSTOMER)
    insert(
        engine,
        "customer",
        *(
            {"phone": p}
            for p in [
                "13800000001",
                "13800000001",
                "13800000002",
                "13800000002",
                "13800000002",
                "13800000003",
                None,
                None,
            ]
        ),
    )
    assert refusal(engine, doc({"name": NAME, "phone": {**PHONE, "x-unique": True}})) == [
        (
            "/schema/properties/phone",
            "phone: 2 value(s) occur in more than one record, so it cannot be unique",
        ),
    ]


def test_add_unique_allowed_when_only_a_deleted_row_repeats(engine: sa.Engine) -> None:
    publish_doc(engine, CUSTOMER)
    ids = insert(
        engine,
        "customer",
        {"phone": "13800000001"},
        {"phone": "13800000001"},
        {"phone": None},
        {"phone": None},
    )
    soft_delete(engine, "form_customer", ids[0])
    result = publish_doc(engine, doc({"name": NAME, "phone": {**PHONE, "x-unique": True}}))
    assert [(s.kind, s.unique) for s in result.plan.steps] == [("add_index", True)]
    assert field_indexes(engine, "form_customer") == {"uq_form_customer_phone": (["phone"], True)}
    # The database enforces it among live rows only.
    with pytest.raises(sa.exc.IntegrityError):
        insert(engine, "customer", {"phone": "13800000001"})
    soft_delete(engine, "form_customer", ids[1])
    insert(engine, "customer", {"phone": "13800000001"})


def test_add_a_new_unique_field_to_a_table_with_rows(engine: sa.Engine) -> None:
    publish_doc(engine, CUSTOMER)
    insert(engine, "customer", {"name": "王五"}, {"name": "李四"})
    result = publish_doc(
        engine, doc({"name": NAME, "phone": PHONE, "code": {"type": "string", "x-unique": True}})
    )
    assert [(s.kind, s.column) for s in result.plan.steps] == [
        ("add_column", "code"),
        ("add_index", "code"),
    ]
    assert field_indexes(engine, "form_customer") == {"uq_form_customer_code": (["code"], True)}


# --- widening and narrowing -------------------------------------------------


def test_widen_text(engine: sa.Engine, backend: str) -> None:
    publish_doc(engine, CUSTOMER)
    insert(engine, "customer", {"name": "王" * 20})
    result = publish_doc(engine, doc({"name": {**NAME, "maxLength": 200}, "phone": PHONE}))
    assert [s.kind for s in result.plan.steps] == ["widen_column"]
    insert(engine, "customer", {"name": "李" * 200})
    assert select_all(engine, "form_customer", "name") == [(1, "王" * 20), (2, "李" * 200)]
    if backend == "postgresql":
        assert columns(engine, "form_customer")["name"].length == 200
    publish_doc(engine, doc({"name": {**NAME, "x-type": "long_text"}, "phone": PHONE}))
    assert isinstance(columns(engine, "form_customer")["name"], sa.Text) or backend == "sqlite"
    assert select_all(engine, "form_customer", "name") == [(1, "王" * 20), (2, "李" * 200)]


def test_narrow_text_when_the_data_fits(engine: sa.Engine, backend: str) -> None:
    publish_doc(engine, CUSTOMER)
    insert(engine, "customer", {"name": "王五"}, {"name": "司马相如"}, {"name": None})
    result = publish_doc(engine, doc({"name": {**NAME, "maxLength": 4}, "phone": PHONE}))
    assert [s.describe() for s in result.plan.steps] == [
        "narrow form_customer.name from text(20) to text(4) [姓名]",
    ]
    if backend == "postgresql":
        assert columns(engine, "form_customer")["name"].length == 4
    assert select_all(engine, "form_customer", "name") == [(1, "王五"), (2, "司马相如"), (3, None)]


def test_narrow_text_refused_with_the_rows_that_do_not_fit(engine: sa.Engine, backend: str) -> None:
    publish_doc(engine, CUSTOMER)
    ids = insert(
        engine,
        "customer",
        {"name": "王五"},
        {"name": "欧阳修远"},
        {"name": "诸葛孔明先生"},
        {"name": "abcd"},
        {"name": "abcde"},
    )
    soft_delete(engine, "form_customer", ids[2])  # deleted rows keep their data: they count
    assert refusal(engine, doc({"name": {**NAME, "maxLength": 3}, "phone": PHONE})) == [
        ("/schema/properties/name", "姓名 (name): 4 row(s) hold values that do not fit text(3)"),
    ]
    if backend == "postgresql":
        assert columns(engine, "form_customer")["name"].length == 20


def test_long_text_to_text_is_a_narrowing(engine: sa.Engine, backend: str) -> None:
    publish_doc(engine, doc({"notes": {"x-type": "long_text"}}))
    insert(engine, "customer", {"notes": "x" * 300}, {"notes": "short"})
    assert refusal(engine, doc({"notes": {"type": "string", "maxLength": 299}})) == [
        ("/schema/properties/notes", "notes: 1 row(s) hold values that do not fit text(299)"),
    ]
    publish_doc(engine, doc({"notes": {"type": "string", "maxLength": 300}}))
    if backend == "postgresql":
        assert columns(engine, "form_customer")["notes"].length == 300


def test_decimal_precision(engine: sa.Engine, backend: str) -> None:
    publish_doc(engine, doc({"rate": {"type": "number", "x-precision": 10, "x-scale": 2}}))
    insert(
        engine,
        "customer",
        {"rate": Decimal("12345678.91")},
        {"rate": Decimal("-999.99")},
        {"rate": Decimal("-1000.00")},
    )
    assert refusal(engine, doc({"rate": {"type": "number", "x-precision": 5, "x-scale": 2}})) == [
        ("/schema/properties/rate", "rate: 2 row(s) hold values that do not fit decimal(5,2)"),
    ]
    publish_doc(engine, doc({"rate": {"type": "number", "x-precision": 18, "x-scale": 2}}))
    insert(engine, "customer", {"rate": Decimal("9999999999999999.99")})
    if backend == "postgresql":
        rate = columns(engine, "form_customer")["rate"]
        assert (rate.precision, rate.scale) == (18, 2)
    with engine.connect() as conn:
        table = load_schema(conn).form("customer").table
        assert conn.execute(sa.select(table.c.rate).order_by(table.c.id)).scalars().all() == [
            Decimal("12345678.91"),
            Decimal("-999.99"),
            Decimal("-1000.00"),
            Decimal("9999999999999999.99"),
        ]


def test_incompatible_type_change_refused(engine: sa.Engine) -> None:
    publish_doc(engine, doc({"name": NAME, "born": {"type": "string", "format": "date"}}))
    assert refusal(
        engine,
        doc(
            {
                "name": {"type": "integer", "title": "姓名"},
                "born": {"type": "string", "format": "date-time"},
            }
        ),
    ) == [
        (
            "/schema/properties/name",
            "姓名 (name) cannot change from text(20) to integer; "
            "add a new field and retire this one instead",
        ),
        (
            "/schema/properties/born",
            "born cannot change from date to datetime; add a new field and retire this one instead",
        ),
    ]


# --- renaming and retiring --------------------------------------------------


def test_rename_keeps_data_and_rebuilds_the_index(engine: sa.Engine) -> None:
    publish_doc(engine, doc({"name": {**NAME, "x-index": True}, "phone": PHONE}))
    insert(engine, "customer", {"name": "王五", "phone": "13800138000"}, {"name": "李四"})
    result = publish_doc(
        engine,
        doc(
            {
                "full_name": {**NAME, "x-index": True, "x-renamed-from": "name"},
                "phone": PHONE,
            }
        ),
    )
    assert [s.describe() for s in result.plan.steps] == [
        "rename column form_customer.name to full_name [姓名]",
        "drop index on form_customer.name [姓名]",
        "add index on form_customer.full_name [姓名]",
    ]
    assert "name" not in columns(engine, "form_customer")
    assert select_all(engine, "form_customer", "full_name", "phone") == [
        (1, "王五", "13800138000"),
        (2, "李四", None),
    ]
    assert field_indexes(engine, "form_customer") == {
        "ix_form_customer_full_name": (["full_name"], False),
    }
    with engine.connect() as conn:
        published = get_published(conn, "customer")
        assert published is not None
        assert sorted(published.layout.main.columns) == ["full_name", "phone"]


def test_rename_with_a_narrowing_checks_the_old_column(engine: sa.Engine) -> None:
    publish_doc(engine, CUSTOMER)
    insert(engine, "customer", {"name": "abcdef"})
    assert refusal(
        engine,
        doc({"full_name": {**NAME, "maxLength": 5, "x-renamed-from": "name"}, "phone": PHONE}),
    ) == [
        (
            "/schema/properties/full_name",
            "姓名 (full_name): 1 row(s) hold values that do not fit text(5)",
        ),
    ]


def test_rename_of_a_unique_field_that_is_made_required(engine: sa.Engine) -> None:
    publish_doc(engine, doc({"code": {"type": "string", "x-unique": True}}))
    insert(engine, "customer", {"code": "A"}, {"code": None})
    assert refusal(
        engine,
        doc(
            {"number": {"type": "string", "x-unique": True, "x-renamed-from": "code"}},
            required=["number"],
        ),
    ) == [
        (
            "/schema/properties/number",
            "number: 1 row(s) have no value, so it cannot become required",
        ),
    ]
    publish_doc(
        engine, doc({"number": {"type": "string", "x-unique": True, "x-renamed-from": "code"}})
    )
    assert field_indexes(engine, "form_customer") == {
        "uq_form_customer_number": (["number"], True),
    }
    with pytest.raises(sa.exc.IntegrityError):
        insert(engine, "customer", {"number": "A"})


def test_rename_a_link_and_a_sub_table_field(engine: sa.Engine, backend: str) -> None:
    publish_doc(engine, doc({"name": NAME}, key="branch"))
    publish_doc(
        engine,
        doc(
            {
                "branch": {"x-type": "link", "x-link": "branch"},
                "docs": sub({"kind": {"type": "string", "maxLength": 10, "x-index": True}}),
            }
        ),
    )
    (bid,) = insert(engine, "branch", {"name": "总行"})
    (cid,) = insert(engine, "customer", {"branch": bid})
    insert(engine, "customer", {"parent_id": cid, "position": 0, "kind": "id"}, child="docs")
    result = publish_doc(
        engine,
        doc(
            {
                "home_branch": {"x-type": "link", "x-link": "branch", "x-renamed-from": "branch"},
                "docs": sub(
                    {
                        "doc_kind": {
                            "type": "string",
                            "maxLength": 30,
                            "x-index": True,
                            "x-renamed-from": "kind",
                        }
                    }
                ),
            }
        ),
    )
    assert [(s.kind, s.table, s.column) for s in result.plan.steps] == [
        ("rename_column", "form_customer", "home_branch"),
        ("drop_index", "form_customer", "branch"),
        ("add_index", "form_customer", "home_branch"),
        ("rename_column", "form_customer__docs", "doc_kind"),
        ("widen_column", "form_customer__docs", "doc_kind"),
        ("drop_index", "form_customer__docs", "kind"),
        ("add_index", "form_customer__docs", "doc_kind"),
    ]
    assert select_all(engine, "form_customer", "home_branch") == [(cid, bid)]
    assert select_all(engine, "form_customer__docs", "doc_kind") == [(1, "id")]
    assert field_indexes(engine, "form_customer") == {
        "ix_form_customer_home_branch": (["home_branch"], False),
    }
    assert field_indexes(engine, "form_customer__docs") == {
        "ix_form_customer__docs_doc_kind": (["doc_kind"], False),
    }
    if backend == "postgresql":
        assert columns(engine, "form_customer__docs")["doc_kind"].length == 30
    # The foreign key followed the column.
    assert (["home_branch"], "form_branch", ["id"]) in foreign_keys(engine, "form_customer")
    with pytest.raises(sa.exc.IntegrityError):
        insert(engine, "customer", {"home_branch": bid + 1})


def test_rename_from_a_missing_field_refused(engine: sa.Engine) -> None:
    publish_doc(engine, CUSTOMER)
    assert refusal(engine, doc({"name": NAME, "mobile": {**PHONE, "x-renamed-from": "tel"}})) == [
        ("/schema/properties/mobile/x-renamed-from", "there is no field 'tel' to rename"),
    ]


def test_retire_keeps_the_column_and_readding_restores_the_data(engine: sa.Engine) -> None:
    publish_doc(engine, doc({"name": NAME, "phone": {**PHONE, "x-index": True}}))
    insert(engine, "customer", {"name": "王五", "phone": "13800138000"})
    result = publish_doc(engine, doc({"name": NAME}))
    assert [s.describe() for s in result.plan.steps] == [
        "retire field form_customer.phone [phone] (hidden; data kept)",
    ]
    assert "phone" in columns(engine, "form_customer")
    assert select_all(engine, "form_customer", "phone") == [(1, "13800138000")]
    with engine.connect() as conn:
        # Hidden: the form's table no longer has the field.
        assert "phone" not in load_schema(conn).form("customer").table.c
    insert(engine, "customer", {"name": "李四"})
    result = publish_doc(engine, doc({"name": NAME, "phone": {**PHONE, "x-index": True}}))
    assert [s.kind for s in result.plan.steps] == ["restore_column"]
    with engine.connect() as conn:
        table = load_schema(conn).form("customer").table
        assert conn.execute(sa.select(table.c.name, table.c.phone).order_by(table.c.id)).all() == [
            ("王五", "13800138000"),
            ("李四", None),
        ]
    assert field_indexes(engine, "form_customer") == {"ix_form_customer_phone": (["phone"], False)}


# --- required, defaults, options --------------------------------------------


def test_required_refused_while_live_rows_have_no_value(engine: sa.Engine) -> None:
    publish_doc(engine, CUSTOMER)
    ids = insert(
        engine, "customer", {"name": "王五"}, {"name": None}, {"name": None}, {"name": None}
    )
    soft_delete(engine, "form_customer", ids[3])  # a deleted row does not count
    assert refusal(engine, doc({"name": NAME, "phone": PHONE}, required=["name"])) == [
        (
            "/schema/properties/name",
            "姓名 (name): 2 row(s) have no value, so it cannot become required",
        ),
    ]


def test_required_allowed_when_every_live_row_has_a_value(engine: sa.Engine) -> None:
    publish_doc(engine, CUSTOMER)
    ids = insert(engine, "customer", {"name": "王五"}, {"name": None})
    soft_delete(engine, "form_customer", ids[1])
    result = publish_doc(engine, doc({"name": NAME, "phone": PHONE}, required=["name"]))
    assert [s.kind for s in result.plan.steps] == ["require"]


def test_required_with_a_default_fills_the_empty_rows(engine: sa.Engine) -> None:
    publish_doc(
        engine,
        doc(
            {
                "name": NAME,
                "level": {"type": "string", "enum": ["a", "b"]},
                "since": {"type": "string", "format": "date"},
            }
        ),
    )
    insert(engine, "customer", {"level": "b", "since": dt.date(2020, 1, 2)}, {"name": "x"})
    result = publish_doc(
        engine,
        doc(
            {
                "name": NAME,
                "level": {"type": "string", "enum": ["a", "b"], "default": "a"},
                "since": {"type": "string", "format": "date", "default": "2024-01-01"},
            },
            required=["level", "since"],
        ),
    )
    assert [(s.kind, s.column) for s in result.plan.steps] == [
        ("backfill", "level"),
        ("require", "level"),
        ("backfill", "since"),
        ("require", "since"),
    ]
    with engine.connect() as conn:
        table = load_schema(conn).form("customer").table
        assert conn.execute(sa.select(table.c.level, table.c.since).order_by(table.c.id)).all() == [
            ("b", dt.date(2020, 1, 2)),
            ("a", dt.date(2024, 1, 1)),
        ]


def test_new_required_field(engine: sa.Engine) -> None:
    publish_doc(engine, CUSTOMER)
    ids = insert(engine, "customer", {"name": "王五"}, {"name": "李四"})
    soft_delete(engine, "form_customer", ids[1])
    new = {"name": NAME, "phone": PHONE, "tier": {"type": "integer"}}
    assert refusal(engine, doc(new, required=["tier"])) == [
        (
            "/schema/properties/tier",
            "tier: 1 existing row(s) would have no value; give the field "
            "a default or leave it optional",
        ),
    ]
    result = publish_doc(
        engine, doc({**new, "tier": {"type": "integer", "default": 3}}, required=["tier"])
    )
    assert [s.kind for s in result.plan.steps] == ["add_column", "backfill"]
    # Every row is filled, the deleted one too (it could be restored).
    assert select_all(engine, "form_customer", "tier") == [(1, 3), (2, 3)]


def test_defaults_fill_sub_table_rows_and_money(engine: sa.Engine) -> None:
    publish_doc(
        engine, doc({"fee": {"x-type": "money"}, "docs": sub({"kind": {"type": "string"}})})
    )
    (cid,) = insert(
        engine,
        "customer",
        {"fee": Decimal("12.30")},
    )
    insert(
        engine,
        "customer",
        {},
    )
    insert(
        engine,
        "customer",
        {"parent_id": cid, "position": 0, "kind": None},
        {"parent_id": cid, "position": 1, "kind": "id"},
        child="docs",
    )
    result = publish_doc(
        engine,
        doc(
            {
                "fee": {"x-type": "money", "default": "0.5"},
                "docs": sub(
                    {
                        "kind": {"type": "string", "default": "other"},
                        "pages": {"type": "integer", "default": 1},
                    },
                    required=["kind", "pages"],
                ),
            },
            required=["fee"],
        ),
    )
    assert [(s.kind, s.table, s.column) for s in result.plan.steps] == [
        ("backfill", "form_customer", "fee"),
        ("require", "form_customer", "fee"),
        ("backfill", "form_customer__docs", "kind"),
        ("require", "form_customer__docs", "kind"),
        ("add_column", "form_customer__docs", "pages"),
        ("backfill", "form_customer__docs", "pages"),
    ]
    with engine.connect() as conn:
        tables = load_schema(conn).form("customer")
        fees = conn.execute(sa.select(tables.table.c.fee).order_by(tables.table.c.id)).scalars()
        assert [str(f) for f in fees] == ["12.30", "0.50"]
        child = tables.children["docs"]
        assert conn.execute(sa.select(child.c.kind, child.c.pages).order_by(child.c.id)).all() == [
            ("other", 1),
            ("id", 1),
        ]


def test_new_required_field_on_an_empty_form(engine: sa.Engine) -> None:
    publish_doc(engine, CUSTOMER)
    result = publish_doc(
        engine, doc({"name": NAME, "phone": PHONE, "tier": {"type": "integer"}}, required=["tier"])
    )
    assert [s.kind for s in result.plan.steps] == ["add_column", "require"]


def test_removing_an_option_in_use_is_refused(engine: sa.Engine) -> None:
    status = {"type": "string", "enum": ["new", "open", "closed", "lost"]}
    publish_doc(engine, doc({"status": status}))
    ids = insert(
        engine,
        "customer",
        {"status": "new"},
        {"status": "closed"},
        {"status": "closed"},
        {"status": "open"},
        {"status": "lost"},
    )
    soft_delete(engine, "form_customer", ids[4])
    assert refusal(engine, doc({"status": {"type": "string", "enum": ["open", "lost"]}})) == [
        ("/schema/properties/status", "status: 3 row(s) still use option(s) ['new', 'closed']"),
    ]
    # Only a deleted row uses "lost": it may go.
    result = publish_doc(
        engine, doc({"status": {"type": "string", "enum": ["new", "open", "closed"]}})
    )
    assert [s.describe() for s in result.plan.steps] == [
        "remove options ['lost'] from form_customer.status [status]",
    ]


def test_removing_a_multi_select_option_in_use_is_refused(engine: sa.Engine) -> None:
    def tags(*options: str) -> dict[str, Any]:
        return {"x-type": "multi_select", "title": "标签", "items": {"enum": list(options)}}

    publish_doc(engine, doc({"tags": tags("vip", "payroll", "dormant", "young")}))
    ids = insert(
        engine,
        "customer",
        {"tags": ["vip", "payroll"]},
        {"tags": ["payroll"]},
        {"tags": []},
        {"tags": None},
        {"tags": ["young"]},
    )
    soft_delete(engine, "form_customer", ids[4])
    assert refusal(engine, doc({"tags": tags("dormant", "young")})) == [
        (
            "/schema/properties/tags",
            "标签 (tags): 2 row(s) still use option(s) ['vip', 'payroll']",
        ),
    ]
    # Only a deleted row uses "young", and nobody "dormant": both may go.
    result = publish_doc(engine, doc({"tags": tags("vip", "payroll")}))
    assert [s.describe() for s in result.plan.steps] == [
        "remove options ['dormant', 'young'] from form_customer.tags [标签]",
    ]


# --- links ------------------------------------------------------------------


def test_dangling_link_refused(engine: sa.Engine) -> None:
    assert refusal(
        engine,
        doc(
            {
                "branch": {"x-type": "link", "x-link": "branch", "title": "网点"},
                "docs": sub({"owner": {"x-type": "link", "x-link": "person"}}),
            }
        ),
    ) == [
        (
            "/schema/properties/branch/x-link",
            "网点 (branch) links to form 'branch', which is not published",
        ),
        (
            "/schema/properties/docs/items/properties/owner/x-link",
            "owner links to form 'person', which is not published",
        ),
    ]
    with engine.connect() as conn:
        assert get_published(conn, "customer") is None


def test_link_on_a_new_form_is_a_foreign_key(engine: sa.Engine) -> None:
    publish_doc(engine, doc({"name": NAME}, key="branch"))
    publish_doc(
        engine,
        doc(
            {
                "branch": {"x-type": "link", "x-link": "branch"},
                "referrer": {"x-type": "link", "x-link": "customer"},
                "docs": sub({"branch": {"x-type": "link", "x-link": "branch"}}),
            }
        ),
    )
    assert foreign_keys(engine, "form_customer")[:2] == [
        (["branch"], "form_branch", ["id"]),
        (["created_by"], "ff_user", ["id"]),
    ]
    assert (["referrer"], "form_customer", ["id"]) in foreign_keys(engine, "form_customer")
    assert (["branch"], "form_branch", ["id"]) in foreign_keys(engine, "form_customer__docs")
    assert field_indexes(engine, "form_customer") == {
        "ix_form_customer_branch": (["branch"], False),
        "ix_form_customer_referrer": (["referrer"], False),
    }
    (bid,) = insert(engine, "branch", {"name": "总行"})
    (cid,) = insert(engine, "customer", {"branch": bid})
    insert(engine, "customer", {"referrer": cid})
    for bad in ({"branch": bid + 100}, {"referrer": cid + 100}):
        with pytest.raises(sa.exc.IntegrityError):
            insert(engine, "customer", bad)
    with pytest.raises(sa.exc.IntegrityError):
        insert(engine, "customer", {"parent_id": cid, "position": 0, "branch": 999}, child="docs")


def test_link_added_to_a_published_form_is_a_foreign_key(engine: sa.Engine) -> None:
    publish_doc(engine, doc({"name": NAME}, key="branch"))
    publish_doc(engine, doc({"name": NAME, "docs": sub({"kind": {"type": "string"}})}))
    insert(engine, "customer", {"name": "王五"})
    result = publish_doc(
        engine,
        doc(
            {
                "name": NAME,
                "branch": {"x-type": "link", "x-link": "branch"},
                "manager": {"x-type": "user"},
                "docs": sub(
                    {"kind": {"type": "string"}, "branch": {"x-type": "link", "x-link": "branch"}}
                ),
            }
        ),
    )
    assert [(s.kind, s.table, s.column) for s in result.plan.steps] == [
        ("add_column", "form_customer", "branch"),
        ("add_index", "form_customer", "branch"),
        ("add_column", "form_customer", "manager"),
        ("add_column", "form_customer__docs", "branch"),
        ("add_index", "form_customer__docs", "branch"),
    ]
    assert (["branch"], "form_branch", ["id"]) in foreign_keys(engine, "form_customer")
    assert (["manager"], "ff_user", ["id"]) in foreign_keys(engine, "form_customer")
    assert (["branch"], "form_branch", ["id"]) in foreign_keys(engine, "form_customer__docs")
    (bid,) = insert(engine, "branch", {"name": "总行"})
    (cid,) = insert(engine, "customer", {"branch": bid})
    with pytest.raises(sa.exc.IntegrityError):
        insert(engine, "customer", {"branch": bid + 1})
    with pytest.raises(sa.exc.IntegrityError):
        insert(engine, "customer", {"manager": 12345})
    insert(engine, "customer", {"parent_id": cid, "position": 0, "branch": bid}, child="docs")
    with pytest.raises(sa.exc.IntegrityError):
        insert(
            engine, "customer", {"parent_id": cid, "position": 1, "branch": bid + 1}, child="docs"
        )


# --- sub-tables -------------------------------------------------------------


def test_sub_table_added_extended_retired_and_restored(engine: sa.Engine) -> None:
    publish_doc(engine, CUSTOMER)
    (cid,) = insert(engine, "customer", {"name": "王五"})
    result = publish_doc(
        engine, doc({"name": NAME, "phone": PHONE, "docs": sub({"kind": {"type": "string"}})})
    )
    assert result.plan.describe() == ["create table form_customer__docs"]
    assert foreign_keys(engine, "form_customer__docs") == [(["parent_id"], "form_customer", ["id"])]
    insert(engine, "customer", {"parent_id": cid, "position": 0, "kind": "id"}, child="docs")

    result = publish_doc(
        engine,
        doc(
            {
                "name": NAME,
                "phone": PHONE,
                "docs": sub(
                    {
                        "kind": {"type": "string"},
                        "pages": {"type": "integer", "x-index": True},
                    }
                ),
            }
        ),
    )
    assert [(s.kind, s.table, s.column) for s in result.plan.steps] == [
        ("add_column", "form_customer__docs", "pages"),
        ("add_index", "form_customer__docs", "pages"),
    ]
    assert list(columns(engine, "form_customer__docs")) == [
        "id",
        "parent_id",
        "position",
        "kind",
        "pages",
    ]
    assert field_indexes(engine, "form_customer__docs") == {
        "ix_form_customer__docs_pages": (["pages"], False),
    }

    result = publish_doc(engine, CUSTOMER)
    assert result.plan.describe() == ["retire sub-table form_customer__docs (hidden; data kept)"]
    assert select_all(engine, "form_customer__docs", "kind") == [(1, "id")]
    with engine.connect() as conn:
        assert dict(load_schema(conn).form("customer").children) == {}

    result = publish_doc(
        engine,
        doc({"name": NAME, "phone": PHONE, "docs": sub({"kind": {"type": "string"}})}, required=[]),
    )
    assert [s.kind for s in result.plan.steps] == ["restore_table", "retire_column"]
    with engine.connect() as conn:
        child = load_schema(conn).form("customer").children["docs"]
        assert conn.execute(sa.select(child.c.kind)).scalars().all() == ["id"]


def test_required_sub_table_field_counts_child_rows(engine: sa.Engine) -> None:
    publish_doc(engine, doc({"docs": sub({"kind": {"type": "string"}})}))
    (cid,) = insert(engine, "customer", {})
    insert(
        engine,
        "customer",
        {"parent_id": cid, "position": 0, "kind": None},
        {"parent_id": cid, "position": 1, "kind": "x"},
        child="docs",
    )
    assert refusal(engine, doc({"docs": sub({"kind": {"type": "string"}}, required=["kind"])})) == [
        (
            "/schema/properties/docs/items/properties/kind",
            "kind: 1 row(s) have no value, so it cannot become required",
        ),
    ]


# --- versions, no-ops, previews -----------------------------------------------


def test_publishing_the_same_document_is_a_no_op(engine: sa.Engine, count_statements: Any) -> None:
    publish_doc(engine, doc({"name": NAME}, key="branch"))
    document = doc({"name": NAME, "branch": {"x-type": "link", "x-link": "branch"}})
    publish_doc(engine, document)
    before = snapshot(engine)
    with count_statements(engine) as log:
        result = publish_doc(engine, document)
    assert (result.version, result.changed) == (1, False)
    assert result.plan.steps == [] and result.plan.refusals == []
    assert all(s.lstrip().upper().startswith("SELECT") for s in log.statements)
    assert snapshot(engine) == before


def test_versions_are_kept(engine: sa.Engine) -> None:
    first = publish_doc(engine, CUSTOMER)
    with engine.begin() as conn:
        second = publish(
            conn,
            parse_definition(doc({"name": {**NAME, "title": "名"}, "phone": PHONE})),
            actor_id=None,
            now=NOW + dt.timedelta(days=1),
        )
    third = publish_doc(engine, doc({"name": NAME, "email": {"x-type": "email"}}))
    assert [first.version, second.version, third.version] == [1, 2, 3]
    with engine.connect() as conn:
        versions = list_versions(conn, "customer")
        assert [v["version"] for v in versions] == [1, 2, 3]
        assert versions[1]["published_at"] == NOW + dt.timedelta(days=1)
        assert versions[0]["plan"] == {
            "form": "customer",
            "steps": [
                {
                    "kind": "create_table",
                    "table": "form_customer",
                    "description": "create table form_customer",
                },
            ],
        }
        assert versions[1]["plan"] == {"form": "customer", "steps": []}
        assert [s["kind"] for s in versions[2]["plan"]["steps"]] == ["add_column", "retire_column"]
        assert versions[2]["plan"]["steps"][0] == {
            "kind": "add_column",
            "table": "form_customer",
            "column": "email",
            "pointer": "/schema/properties/email",
            "description": "add column form_customer.email text(254) [email]",
        }
        assert (
            get_version_definition(conn, "customer", 2)["schema"]["properties"]["name"]["title"]
            == "名"
        )
        assert get_version_definition(conn, "customer", 1) == CUSTOMER
        with pytest.raises(NotFoundError) as missing:
            get_version_definition(conn, "customer", 4)
        assert missing.value.message == "Form 'customer' has no version 4."
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(form_version_table)).scalar() == 3
        )
        published = get_published(conn, "customer")
        assert published is not None and published.version == 3
        assert published.definition.document == doc({"name": NAME, "email": {"x-type": "email"}})
        assert published.layout.main.retired == {"phone"}
        assert fingerprint(conn) == (("customer", 3),)


def test_plan_publish_is_a_read_only_preview(engine: sa.Engine) -> None:
    publish_doc(engine, CUSTOMER)
    before = snapshot(engine)
    with engine.begin() as conn:
        plan = plan_publish(
            conn, parse_definition(doc({"name": NAME, "email": {"x-type": "email"}}))
        )
    assert plan.describe() == [
        "add column form_customer.email text(254) [email]",
        "retire field form_customer.phone [phone] (hidden; data kept)",
    ]
    assert snapshot(engine) == before
    with pytest.raises(PlanRefusedError), engine.begin() as conn:
        plan_publish(conn, parse_definition(doc({"name": {"type": "integer"}})))


def test_load_schema_links_forms_in_one_metadata(engine: sa.Engine) -> None:
    publish_doc(engine, doc({"name": NAME}, key="branch"))
    publish_doc(engine, doc({"branch": {"x-type": "link", "x-link": "branch"}}))
    with engine.connect() as conn:
        schema = load_schema(conn)
    assert sorted(schema.forms) == ["branch", "customer"]
    assert schema.versions == {"branch": 1, "customer": 1}
    (fk,) = schema.form("customer").table.c.branch.foreign_keys
    assert fk.column is schema.form("branch").table.c.id
    with pytest.raises(NotFoundError) as missing:
        schema.form("nope")
    assert missing.value.message == "There is no published form 'nope'."


# --- a refusal leaves the database exactly as it was -------------------------


def test_a_refused_publish_changes_nothing(engine: sa.Engine) -> None:
    publish_doc(
        engine,
        doc(
            {
                "name": {**NAME, "x-index": True},
                "phone": PHONE,
                "docs": sub({"kind": {"type": "string"}}),
            }
        ),
    )
    (cid,) = insert(
        engine,
        "customer",
        {"name": "王五"},
    )
    insert(engine, "customer", {"parent_id": cid, "position": 0, "kind": "a"}, child="docs")
    # Renames, new columns, new tables and indexes would be fine; one field is not.
    assert refusal(
        engine,
        doc(
            {
                "full_name": {**NAME, "x-renamed-from": "name", "x-unique": True},
                "phone": {"type": "integer"},
                "email": {"x-type": "email", "x-index": True},
                "notes": sub({"text": {"type": "string"}}),
            }
        ),
    ) == [
        (
            "/schema/properties/phone",
            "phone cannot change from text(20) to integer; "
            "add a new field and retire this one instead",
        )
    ]


@pytest.mark.parametrize(
    ("failing", "already_done"),
    [
        ("CREATE UNIQUE INDEX", ["RENAME", "ADD COLUMN", "DROP INDEX", "CREATE INDEX", "UPDATE"]),
        (
            "INSERT INTO ff_form_version",
            [
                "RENAME",
                "ADD COLUMN",
                "DROP INDEX",
                "CREATE INDEX",
                "UPDATE",
                "CREATE UNIQUE INDEX",
                "CREATE TABLE",
            ],
        ),
    ],
)
def test_a_failure_inside_the_database_rolls_back_every_ddl_step(
    engine: sa.Engine, failing: str, already_done: list[str]
) -> None:
    """DDL that already ran (a rename, new columns, a new table, dropped and
    created indexes) is rolled back with the failing statement, on both
    databases."""
    publish_doc(
        engine,
        doc(
            {
                "name": {**NAME, "x-index": True},
                "phone": PHONE,
                "amount": {"type": "number", "x-precision": 10},
                "status": {"type": "string", "enum": ["a", "b"]},
            }
        ),
    )
    insert(
        engine,
        "customer",
        {"name": "王五", "phone": "13800138000", "amount": Decimal("1.5")},
        {"name": "李四"},
    )
    before = snapshot(engine)
    new = doc(
        {
            "full_name": {**NAME, "maxLength": 40, "x-renamed-from": "name"},
            "amount": {"type": "number", "x-precision": 12},
            "status": {"type": "string", "enum": ["a", "b"], "default": "a"},
            "email": {"x-type": "email", "x-index": True},
            "code": {"type": "string", "x-unique": True},
            "docs": sub({"kind": {"type": "string"}}),
        },
        required=["status"],
    )
    with (
        failing_statement(engine, failing) as ran,
        pytest.raises(sa.exc.OperationalError),
        engine.begin() as conn,
    ):
        publish(conn, parse_definition(new), now=NOW)
    # The failure came late: most of the plan had run.
    ddl = " ".join(ran).upper()
    assert [done for done in already_done if done not in ddl] == []
    assert snapshot(engine) == before
    # And the same publish then succeeds.
    result = publish_doc(engine, new)
    assert result.version == 2
    assert select_all(engine, "form_customer", "full_name", "status") == [
        (1, "王五", "a"),
        (2, "李四", "a"),
    ]


# --- names -------------------------------------------------------------------


def test_an_index_name_taken_by_another_form_is_refused(engine: sa.Engine) -> None:
    """ix_<table>_<column> repeats across forms: loan.application_date and
    loan_application.date both make ix_form_loan_application_date."""
    date = {"type": "string", "format": "date", "x-index": True}
    publish_doc(engine, doc({"application_date": date}, key="loan"))
    assert refusal(
        engine,
        doc({"date": date, "code": {"type": "string", "x-index": True}}, key="loan_application"),
    ) == [
        (
            "/schema/properties/date",
            "the index name 'ix_form_loan_application_date' is already taken (by a field of a "
            "form or sub-table with a similar name); choose another key",
        ),
    ]
    # The same through an added index on a published form.
    publish_doc(engine, doc({"day": date}, key="loan_application"))
    assert refusal(engine, doc({"day": date, "date": date}, key="loan_application")) == [
        (
            "/schema/properties/date",
            "the index name 'ix_form_loan_application_date' is already taken (by a field of a "
            "form or sub-table with a similar name); choose another key",
        ),
    ]
    # A system index of a new form can clash too.
    publish_doc(engine, doc({"b_owner_id": {"type": "integer", "x-index": True}}, key="a"))
    assert refusal(engine, doc({"x": {"type": "integer"}}, key="a_b")) == [
        (
            "/key",
            "the index name 'ix_form_a_b_owner_id' is already taken (by a field of a "
            "form or sub-table with a similar name); choose another key",
        ),
    ]


def test_index_names_clashing_inside_one_form_are_refused(engine: sa.Engine) -> None:
    indexed = {"type": "integer", "x-index": True}
    assert refusal(engine, doc({"s": sub({"t_x": indexed}), "s_t": sub({"x": indexed})})) == [
        (
            "/schema/properties/s_t/items/properties/x",
            "the index name 'ix_form_customer__s_t_x' is already taken (by a field of a "
            "form or sub-table with a similar name); choose another key",
        ),
    ]


def test_renaming_onto_a_retired_field_is_refused(engine: sa.Engine) -> None:
    publish_doc(engine, doc({"name": NAME, "alias": {"type": "string"}}))
    insert(engine, "customer", {"name": "王五", "alias": "老王"})
    publish_doc(engine, doc({"name": NAME}))  # alias retired, its data kept
    assert refusal(engine, doc({"alias": {**NAME, "x-renamed-from": "name"}})) == [
        (
            "/schema/properties/alias/x-renamed-from",
            "cannot rename 'name' to 'alias': a retired field 'alias' still holds its data; "
            "choose another key",
        ),
    ]
    # Re-adding alias without the marker restores it; name is then retired.
    result = publish_doc(engine, doc({"alias": {"type": "string"}}))
    assert [s.kind for s in result.plan.steps] == ["restore_column", "retire_column"]
    assert select_all(engine, "form_customer", "name", "alias") == [(1, "王五", "老王")]
