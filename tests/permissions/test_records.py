"""Enforcement: GuardedRecords applies the compiled access to every read and write."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from engine.catalog import load_schema
from engine.errors import NotFoundError, PermissionDeniedError, QueryError, RecordValidationError
from engine.forms.checks import make_cn_id
from engine.forms.definition import parse_definition
from engine.publish.service import publish
from engine.records.query import Filter, ListQuery, Sort
from engine.system import user_table
from permissions import org
from permissions.compile import AccessCompiler
from permissions.gate import Gate, load_caller
from permissions.policy import PolicyStore
from permissions.records import GuardedRecords

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
CUSTOMER = {
    "key": "customer",
    "schema": {
        "title": "客户",
        "properties": {
            "name": {"type": "string", "title": "姓名"},
            "phone": {"x-type": "phone", "x-index": True},
            "id_number": {"x-type": "cn_id_number"},
            "tier": {"type": "string", "enum": ["mass", "mid", "private"], "x-index": True},
            "note": {"type": "string"},
        },
        "required": ["name"],
    },
}
VISIT = {
    "key": "visit",
    "schema": {
        "title": "拜访",
        "properties": {
            "customer": {"x-type": "link", "x-link": "customer"},
            "summary": {"type": "string"},
        },
        "required": ["customer"],
    },
}
ALICE, BOB, CAROL, ROOT = 1, 2, 3, 4
PHONE = "13812345678"
ID_NUMBER = make_cn_id("110101", dt.date(1990, 3, 7), 777)
OTHER_ID = make_cn_id("110101", dt.date(1990, 3, 7), 123)


@pytest.fixture
def bank(connection: sa.Connection) -> dict[str, Any]:
    """Alice (RM in XH), Bob (RM in NB), Carol (head of HZ), Root (superuser)."""
    connection.execute(
        sa.insert(user_table),
        [
            {
                "id": i,
                "username": n,
                "display_name": n,
                "created_at": NOW,
                "is_superuser": i == ROOT,
            }
            for i, n in ((ALICE, "alice"), (BOB, "bob"), (CAROL, "carol"), (ROOT, "root"))
        ],
    )
    for code, parent in [("BANK", None), ("HZ", "BANK"), ("XH", "HZ"), ("NB", "BANK")]:
        org.create_department(
            connection, code=code, name=code, parent_code=parent, actor_id=None, now=NOW
        )
    for user, code in ((ALICE, "XH"), (BOB, "NB"), (CAROL, "HZ")):
        org.add_member(
            connection, user_id=user, dept_code=code, primary=True, actor_id=None, now=NOW
        )
    for doc in (CUSTOMER, VISIT):
        publish(connection, parse_definition(doc), now=NOW)
    s = PolicyStore(connection, actor_id=None, now=NOW)
    # Relationship managers: their own customers and visits; phone read-only, ID masked.
    for form in ("customer", "visit"):
        for action in ("create", "read", "update", "delete"):
            s.set_action("rm", form, action)
            s.set_scope("rm", form, action, "own")
        s.set_field("rm", form, "*", "write")
    s.set_field("rm", "customer", "phone", "write", "deny")  # at most read
    s.set_field("rm", "customer", "id_number", "read", "deny")  # at most mask
    s.set_field("rm", "customer", "note", "mask", "deny")  # hidden
    s.set_action("head", "customer", "read")
    s.set_scope("head", "customer", "read", "dept_tree")
    s.set_field("head", "customer", "*", "read")
    s.assign_role(ALICE, "rm")
    s.assign_role(BOB, "rm")
    s.assign_role(CAROL, "head")
    return {"ids": {}}


def mask(id_number: str) -> str:
    return id_number[:4] + "*" * 10 + id_number[-4:]


def records(conn: sa.Connection, user: int, form: str = "customer") -> GuardedRecords:
    superuser = user == ROOT
    gate = Gate.open(
        conn, AccessCompiler(), load_caller(conn, user, superuser=superuser), load_schema(conn)
    )
    return GuardedRecords(conn, gate, form, clock=lambda: NOW)


def make(conn: sa.Connection, user: int, **values: Any) -> dict[str, Any]:
    """A customer created by ``user`` as root would see it."""
    created = records(conn, user).create({"name": "王芳", **values})
    return records(conn, ROOT).get(created["id"])


def ids(conn: sa.Connection, user: int, query: ListQuery | None = None) -> list[int]:
    return [r["id"] for r in records(conn, user).page(query or ListQuery(limit=100)).page.items]


def test_rows_out_of_scope_answer_like_missing_ones(connection: sa.Connection, bank: Any) -> None:
    mine = make(connection, ALICE)
    theirs = make(connection, BOB)
    assert ids(connection, ALICE) == [mine["id"]]
    assert records(connection, ALICE).page(ListQuery(), count=True).total == 1
    with pytest.raises(NotFoundError) as out_of_scope:
        records(connection, ALICE).get(theirs["id"])
    with pytest.raises(NotFoundError) as missing:
        records(connection, ALICE).get(999_999)
    assert str(out_of_scope.value) == str(missing.value).replace("999999", str(theirs["id"]))
    for attempt in (
        lambda r: r.update(theirs["id"], {"name": "x"}, expected_version=1),
        lambda r: r.delete(theirs["id"], expected_version=1),
        lambda r: r.history(theirs["id"]),
    ):
        with pytest.raises(NotFoundError):
            attempt(records(connection, ALICE))
    assert records(connection, ROOT).get(theirs["id"]) == theirs  # untouched


def test_creates_are_filed_under_the_caller_and_their_department(
    connection: sa.Connection, bank: Any
) -> None:
    record = make(connection, ALICE)
    xh = org.user_departments(connection, ALICE)[0]
    assert (record["owner_id"], record["created_by"]) == (ALICE, ALICE)
    assert record["dept_id"] == xh.department_id
    # A scope the new record would fall outside of refuses the create.
    s = PolicyStore(connection, actor_id=None, now=NOW)
    s.unset_scope("rm", "customer", "create", "own")
    s.set_scope("rm", "customer", "create", "dept")
    org.remove_member(connection, user_id=BOB, dept_code="NB", actor_id=None, now=NOW)
    before = connection.execute(sa.text("SELECT count(*) FROM form_customer")).scalar_one()
    # The caller's transaction is rolled back on the error (here: a savepoint).
    with pytest.raises(PermissionDeniedError) as refused, connection.begin_nested():
        records(connection, BOB).create({"name": "李四"})
    assert "outside the records you may create" in refused.value.message
    after = connection.execute(sa.text("SELECT count(*) FROM form_customer")).scalar_one()
    assert after == before


def test_hidden_fields_are_left_out_and_masked_fields_masked_everywhere(
    connection: sa.Connection, bank: Any
) -> None:
    created = records(connection, ALICE).create({"name": "王芳"})
    root = records(connection, ROOT)
    full = root.update(
        created["id"],
        {"phone": PHONE, "id_number": ID_NUMBER, "note": "VIP, prefers mornings"},
        expected_version=1,
    )
    assert (full["phone"], full["id_number"], full["note"]) == (
        PHONE,
        ID_NUMBER,
        "VIP, prefers mornings",
    )
    root.update(created["id"], {"id_number": OTHER_ID}, expected_version=2)

    seen = records(connection, ALICE).get(created["id"])
    assert "note" not in seen
    assert seen["phone"] == PHONE
    assert seen["id_number"] == mask(OTHER_ID)
    listed = records(connection, ALICE).page(ListQuery()).page.items
    assert listed == [seen]
    history = records(connection, ALICE).history(created["id"])
    assert [e["action"] for e in history] == ["create", "update", "update"]
    assert history[1]["changes"] == {
        "phone": {"before": None, "after": PHONE},
        "id_number": {"before": None, "after": mask(ID_NUMBER)},
    }
    assert history[2]["changes"] == {
        "id_number": {"before": mask(ID_NUMBER), "after": mask(OTHER_ID)}
    }
    # The superuser's view is whole.
    assert "note" in records(connection, ROOT).history(created["id"])[1]["changes"]


def test_no_one_can_search_by_a_field_they_may_not_read(
    connection: sa.Connection, bank: Any
) -> None:
    make(connection, ALICE)
    alice = records(connection, ALICE)
    for query, kind in (
        (ListQuery(filters=[Filter("note", "eq", "VIP")]), QueryError),
        (ListQuery(fields=["name", "note"]), QueryError),
        (ListQuery(filters=[Filter("id_number", "eq", ID_NUMBER)]), PermissionDeniedError),
        (ListQuery(filters=[Filter("id_number", "isnull", "true")]), PermissionDeniedError),
        (ListQuery(sort=[Sort("id_number")]), PermissionDeniedError),
    ):
        with pytest.raises(kind) as refused:
            alice.page(query)
        pointer = refused.value.errors[0].pointer
        assert pointer in ("/filters/0", "/fields/1", "/sort/0"), pointer
    # A hidden field is reported exactly as a field that does not exist.
    with pytest.raises(QueryError) as hidden:
        alice.page(ListQuery(filters=[Filter("note", "eq", "x")]))
    with pytest.raises(QueryError) as unknown:
        alice.page(ListQuery(filters=[Filter("nothing", "eq", "x")]))
    assert hidden.value.errors[0].message == "unknown field 'note'"
    assert unknown.value.errors[0].message == "unknown field 'nothing'"
    # Filters on readable fields work, within the scope.
    found = alice.page(ListQuery(filters=[Filter("name", "eq", "王芳")])).page.items
    assert len(found) == 1


def test_writes_below_write_level_are_refused_and_masked_values_never_written(
    connection: sa.Connection, bank: Any
) -> None:
    record = make(connection, ALICE, phone=None)
    records(connection, ROOT).update(
        record["id"], {"phone": PHONE, "id_number": ID_NUMBER}, expected_version=1
    )
    alice = records(connection, ALICE)
    seen = alice.get(record["id"])
    with pytest.raises(PermissionDeniedError) as refused:
        alice.update(
            record["id"], {"phone": "13900000000", "id_number": ID_NUMBER}, expected_version=2
        )
    assert [(e.pointer, e.message) for e in refused.value.errors] == [
        ("/phone", "phone is read-only for you and cannot be changed"),
        ("/id_number", "id_number is masked for you and cannot be changed"),
    ]
    with pytest.raises(RecordValidationError) as hidden:
        alice.update(record["id"], {"note": "x"}, expected_version=2)
    assert hidden.value.errors[0].message == "unknown field 'note'"
    # A form sent back whole: unchanged and masked values are dropped, the rest saved.
    form_fields = {k: v for k, v in seen.items() if k in ("name", "phone", "id_number", "tier")}
    saved = alice.update(record["id"], {**form_fields, "name": "王芳芳"}, expected_version=2)
    assert saved["name"] == "王芳芳" and saved["version"] == 3
    whole = records(connection, ROOT).get(record["id"])
    assert (whole["phone"], whole["id_number"]) == (PHONE, ID_NUMBER)
    with pytest.raises(PermissionDeniedError):
        alice.create({"name": "x", "phone": PHONE})


def test_an_update_may_not_move_a_record_out_of_scope(connection: sa.Connection, bank: Any) -> None:
    s = PolicyStore(connection, actor_id=None, now=NOW)
    s.define_scope(
        parse_definition(CUSTOMER),
        "mass_market",
        {"field": "tier", "op": "in", "value": ["mass", "mid"]},
    )
    s.unset_scope("rm", "customer", "update", "own")
    s.set_scope("rm", "customer", "update", "mass_market")
    record = make(connection, ALICE, tier="mass")
    with pytest.raises(PermissionDeniedError) as refused, connection.begin_nested():
        records(connection, ALICE).update(record["id"], {"tier": "private"}, expected_version=1)
    assert "out of the records you may change" in refused.value.message
    assert records(connection, ROOT).get(record["id"])["tier"] == "mass"
    moved = records(connection, ALICE).update(record["id"], {"tier": "mid"}, expected_version=1)
    assert moved["tier"] == "mid"


def test_links_may_only_name_records_the_caller_may_read(
    connection: sa.Connection, bank: Any
) -> None:
    mine = make(connection, ALICE)
    theirs = make(connection, BOB)
    visits = records(connection, ALICE, "visit")
    visit = visits.create({"customer": mine["id"], "summary": "coffee"})
    assert visit["customer"] == mine["id"]
    with pytest.raises(Exception) as refused:
        visits.create({"customer": theirs["id"]})
    with pytest.raises(Exception) as missing:
        visits.create({"customer": 999_999})
    assert type(refused.value) is type(missing.value)
    assert refused.value.errors[0].message == f"customer record {theirs['id']} does not exist"
    # Expanding a link embeds only what the caller may read of the linked record.
    bob_visit = records(connection, ROOT, "visit").create({"customer": theirs["id"]})
    connection.execute(
        sa.text("UPDATE form_visit SET owner_id = :a WHERE id = :v"),
        {"a": ALICE, "v": bob_visit["id"]},
    )
    items = visits.page(ListQuery()).page.items
    visits.expand(items, ["customer"])
    embedded = {i["id"]: i["expand"]["customer"] for i in items}
    assert embedded[bob_visit["id"]] is None  # Bob's customer: as if deleted
    assert embedded[visit["id"]]["id"] == mine["id"]
    assert embedded[visit["id"]]["id_number"] is None or "*" in embedded[visit["id"]]["id_number"]
    assert "note" not in embedded[visit["id"]]


def test_department_tree_scope_follows_a_reorganisation(
    connection: sa.Connection, bank: Any
) -> None:
    in_xh = make(connection, ALICE)["id"]
    in_nb = make(connection, BOB)["id"]
    assert ids(connection, CAROL) == [in_xh]  # head of HZ: HZ and XH below it
    org.move_department(connection, code="NB", new_parent_code="HZ", actor_id=None, now=NOW)
    assert ids(connection, CAROL) == [in_xh, in_nb]
    org.move_department(connection, code="XH", new_parent_code="BANK", actor_id=None, now=NOW)
    assert ids(connection, CAROL) == [in_nb]


def test_default_deny_and_deny_over_allow(connection: sa.Connection, bank: Any) -> None:
    make(connection, ALICE)
    with pytest.raises(PermissionDeniedError, match="You may not read 拜访 records"):
        records(connection, CAROL, "visit").page(ListQuery())
    with pytest.raises(PermissionDeniedError, match="You may not delete 客户 records"):
        records(connection, CAROL).delete(1, expected_version=1)
    s = PolicyStore(connection, actor_id=None, now=NOW)
    s.set_action("auditor", "*", "read", "deny")
    s.assign_role(ALICE, "auditor")
    with pytest.raises(PermissionDeniedError):
        records(connection, ALICE).page(ListQuery())


def test_superusers_are_unrestricted(connection: sa.Connection, bank: Any) -> None:
    make(connection, ROOT, phone=PHONE)
    make(connection, BOB)
    root = records(connection, ROOT)
    assert len(root.page(ListQuery()).page.items) == 2
    assert root.gate.scope("customer", "read") is None
    assert (
        root.page(ListQuery(filters=[Filter("phone", "eq", PHONE)])).page.items[0]["phone"] == PHONE
    )
