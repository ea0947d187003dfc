"""RecordStore: create/get/update/delete, optimistic locking, sub-tables, links, unique values."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa
from records_support import ID_A, ID_B, T0, Forms, open_forms

from engine.errors import ConflictError, LinkError, NotFoundError, StaleVersionError
from engine.records.audit import read_audit
from engine.records.service import Actor, RecordStore


def z(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def at(seconds: int) -> str:
    return z(T0 + dt.timedelta(seconds=seconds))


def pairs(exc: pytest.ExceptionInfo[Any]) -> list[tuple[str, str]]:
    return [(e.pointer, e.message) for e in exc.value.errors]


def snapshot(forms: Forms) -> tuple[Any, ...]:
    """Everything a refused write must leave as it was."""
    table = forms.schema.form("specimen").table
    rows = forms.conn.execute(sa.select(table).order_by(table.c.id)).all()
    return ([tuple(r) for r in rows], forms.child_rows(), forms.audit_count())


# -- create / get / update / delete ----------------------------------------------


def test_create_fills_the_system_columns(forms: Forms) -> None:
    record = forms.store(user_id=2).create({"title": "Sys"}, owner_id=1, dept_id=1)
    system = {k: record[k] for k in ("id", "version", "created_at", "created_by", "updated_at")}
    assert system == {
        "id": 1,
        "version": 1,
        "created_at": at(0),
        "created_by": 2,
        "updated_at": at(0),
    }
    assert (record["updated_by"], record["owner_id"], record["dept_id"]) == (2, 1, 1)
    table = forms.schema.form("specimen").table
    assert forms.conn.execute(sa.select(table.c.deleted_at)).scalar_one() is None


def test_owner_and_department_default_to_the_actor(forms: Forms) -> None:
    store = RecordStore(
        forms.conn, forms.schema.form("specimen"), actor=Actor(user_id=2, dept_id=2)
    )
    record = store.create({"title": "Own"})
    assert (record["owner_id"], record["dept_id"], record["created_by"]) == (2, 2, 2)


def test_get_of_a_missing_record_is_not_found(forms: Forms) -> None:
    with pytest.raises(NotFoundError) as exc:
        forms.store().get(42)
    assert str(exc.value) == "样本 42 does not exist."


def test_get_with_fields_returns_only_those_plus_id_and_version(forms: Forms) -> None:
    store = forms.store()
    store.create({"title": "Pick", "qty": 3, "docs": [{"kind": "passport"}]})
    assert store.get(1, fields=["qty"]) == {"id": 1, "version": 1, "qty": 3}
    assert store.get(1, fields=["title", "docs"]) == {
        "id": 1,
        "version": 1,
        "title": "Pick",
        "docs": [{"id": 1, "kind": "passport", "pages": None, "issuer": None}],
    }


def test_update_changes_only_the_named_fields_and_bumps_the_version(forms: Forms) -> None:
    forms.store(user_id=1).create({"title": "Before", "qty": 1, "level": "low"})
    updated = forms.store(user_id=2).update(
        1, {"qty": 2, "level": None, "tags": ["red"]}, expected_version=1
    )
    assert {k: updated[k] for k in ("title", "qty", "level", "tags", "version")} == {
        "title": "Before",
        "qty": 2,
        "level": None,
        "tags": ["red"],
        "version": 2,
    }
    assert (updated["created_at"], updated["created_by"]) == (at(0), 1)
    assert (updated["updated_at"], updated["updated_by"]) == (at(1), 2)
    assert forms.store().get(1) == updated


def test_update_of_a_missing_record_is_not_found(forms: Forms) -> None:
    with pytest.raises(NotFoundError) as exc:
        forms.store().update(7, {"qty": 1}, expected_version=1)
    assert str(exc.value) == "样本 7 does not exist."


def test_a_stale_version_is_refused_with_the_actual_version(forms: Forms) -> None:
    store = forms.store()
    store.create({"title": "Lock", "qty": 1})
    store.update(1, {"qty": 2}, expected_version=1)
    store.update(1, {"qty": 3}, expected_version=2)
    before = snapshot(forms)
    with pytest.raises(StaleVersionError) as exc:
        store.update(1, {"qty": 9}, expected_version=1)
    assert (exc.value.expected, exc.value.actual) == (1, 3)
    assert str(exc.value) == (
        "样本 1 was changed by someone else (you read version 1, it is now 3); "
        "reload it and apply your change again."
    )
    assert isinstance(exc.value, ConflictError)
    with pytest.raises(StaleVersionError) as ahead:
        store.update(1, {"qty": 9}, expected_version=4)
    assert (ahead.value.expected, ahead.value.actual) == (4, 3)
    assert snapshot(forms) == before


def test_a_stale_version_is_refused_even_for_a_no_op_update(forms: Forms) -> None:
    store = forms.store()
    store.create({"title": "Lock", "qty": 1})
    store.update(1, {"qty": 2}, expected_version=1)
    with pytest.raises(StaleVersionError) as exc:
        store.update(1, {"qty": 2}, expected_version=1)
    assert (exc.value.expected, exc.value.actual) == (1, 2)


def test_a_stale_delete_is_refused(forms: Forms) -> None:
    store = forms.store()
    store.create({"title": "Lock"})
    store.update(1, {"qty": 2}, expected_version=1)
    before = snapshot(forms)
    with pytest.raises(StaleVersionError) as exc:
        store.delete(1, expected_version=1)
    assert (exc.value.expected, exc.value.actual) == (1, 2)
    assert snapshot(forms) == before


def test_a_no_op_update_keeps_the_version(forms: Forms) -> None:
    store = forms.store()
    created = store.create(
        {"title": "Same", "rate": "1.5", "mail": "a@B.cn", "seen_at": "2024-01-01T08:00:00+08:00"}
    )
    same = store.update(
        1,
        {
            "title": "Same",
            "rate": "1.5000",
            "mail": "a@b.CN",
            "seen_at": "2024-01-01T00:00:00Z",
            "level": None,
        },
        expected_version=1,
    )
    assert same == created


def test_soft_delete_hides_the_record_but_keeps_the_row(forms: Forms) -> None:
    store = forms.store()
    store.create({"title": "Gone", "docs": [{"kind": "passport"}]})
    store.create({"title": "Stays"})
    store.delete(1, expected_version=1)
    with pytest.raises(NotFoundError):
        store.get(1)
    with pytest.raises(NotFoundError):
        store.update(1, {"qty": 1}, expected_version=2)
    with pytest.raises(NotFoundError):
        store.delete(1, expected_version=2)
    assert [r["title"] for r in forms.list().items] == ["Stays"]
    assert forms.count([]) == 1
    table = forms.schema.form("specimen").table
    row = forms.conn.execute(sa.select(table).where(table.c.id == 1)).one()
    assert (row.version, row.deleted_at, row.updated_at) == (
        2,
        T0 + dt.timedelta(seconds=2),
        T0 + dt.timedelta(seconds=2),
    )
    assert len(forms.child_rows()) == 1


# -- concurrent writers, real commits ----------------------------------------------


def race(engine: sa.Engine, writes: list[dict[str, Any]]) -> list[Exception | dict[str, Any]]:
    """Each writer reads the record, waits for the others, then writes; all commit."""
    barrier = threading.Barrier(len(writes))
    results: list[Exception | dict[str, Any]] = [RuntimeError("did not run")] * len(writes)

    def writer(i: int) -> None:
        try:
            with engine.begin() as conn:
                store = open_forms(conn).store(user_id=i + 1)
                version = store.get(1)["version"]
                barrier.wait(timeout=10)
                results[i] = store.update(1, writes[i], expected_version=version)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(len(writes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    return results


@pytest.mark.parametrize("attempt", range(3))
def test_two_racing_writers_never_lose_an_update(committed_engine: sa.Engine, attempt: int) -> None:
    with committed_engine.begin() as conn:
        open_forms(conn).store().create({"title": "Race", "qty": 0, "notes": "start"})
    results = race(committed_engine, [{"qty": 1, "notes": "one"}, {"qty": 2, "notes": "two"}])
    won = [r for r in results if isinstance(r, dict)]
    lost = [r for r in results if isinstance(r, Exception)]
    assert len(won) == 1, results
    assert len(lost) == 1 and isinstance(lost[0], ConflictError), results
    if isinstance(lost[0], StaleVersionError):
        assert (lost[0].expected, lost[0].actual) == (1, 2)
    with committed_engine.connect() as conn:
        forms = open_forms(conn)
        final = forms.store().get(1)
        assert final == won[0]
        assert (final["version"], final["qty"], final["notes"]) in [(2, 1, "one"), (2, 2, "two")]
        audit = read_audit(conn, "specimen", 1)
        assert [(a["action"], a["record_version"]) for a in audit] == [("create", 1), ("update", 2)]
        assert audit[1]["actor_id"] == final["updated_by"]


def test_an_update_racing_a_delete_never_resurrects_the_record(committed_engine: sa.Engine) -> None:
    with committed_engine.begin() as conn:
        open_forms(conn).store().create({"title": "Race", "qty": 0})
    barrier = threading.Barrier(2)
    outcome: dict[str, Any] = {}

    def act(name: str) -> None:
        try:
            with committed_engine.begin() as conn:
                store = open_forms(conn).store()
                version = store.get(1)["version"]
                barrier.wait(timeout=10)
                if name == "delete":
                    store.delete(1, expected_version=version)
                    outcome[name] = "deleted"
                else:
                    outcome[name] = store.update(1, {"qty": 1}, expected_version=version)
        except Exception as exc:
            outcome[name] = exc

    threads = [threading.Thread(target=act, args=(n,)) for n in ("delete", "update")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    with committed_engine.connect() as conn:
        table = open_forms(conn).schema.form("specimen").table
        row = conn.execute(sa.select(table)).one()
        actions = [a["action"] for a in read_audit(conn, "specimen", 1)]
    if outcome["delete"] == "deleted":
        # The update lost: the record was gone (PostgreSQL) or changed under it (SQLite).
        assert isinstance(outcome["update"], NotFoundError | ConflictError), outcome
        assert (row.version, row.qty, row.deleted_at is not None) == (2, 0, True)
        assert actions == ["create", "delete"]
    else:
        assert isinstance(outcome["delete"], ConflictError), outcome
        assert isinstance(outcome["update"], dict), outcome
        assert (row.version, row.qty, row.deleted_at) == (2, 1, None)
        assert actions == ["create", "update"]


def test_a_writer_that_read_before_a_commit_gets_a_stale_version(
    committed_engine: sa.Engine,
) -> None:
    with committed_engine.begin() as conn:
        open_forms(conn).store().create({"title": "Seq", "qty": 0})
    with committed_engine.connect() as first, committed_engine.connect() as second:
        seen = open_forms(second).store().get(1)["version"]
        second.commit()
        with first.begin():
            open_forms(first).store().update(1, {"qty": 1}, expected_version=1)
        with pytest.raises(StaleVersionError) as exc, second.begin():
            open_forms(second).store().update(1, {"qty": 2}, expected_version=seen)
        assert (exc.value.expected, exc.value.actual) == (1, 2)
    with committed_engine.connect() as conn:
        assert open_forms(conn).store().get(1)["qty"] == 1


# -- sub-tables ----------------------------------------------------------------------


def docs(record: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(d["id"], d["kind"], d["pages"]) for d in record["docs"]]


def test_rows_are_created_in_order(forms: Forms) -> None:
    record = forms.store().create(
        {
            "title": "Rows",
            "docs": [{"kind": "passport", "pages": 3}, {"kind": "licence"}, {"kind": "passport"}],
        }
    )
    assert docs(record) == [(1, "passport", 3), (2, "licence", None), (3, "passport", None)]
    assert [(r["id"], r["parent_id"], r["position"]) for r in forms.child_rows()] == [
        (1, 1, 0),
        (2, 1, 1),
        (3, 1, 2),
    ]


def test_update_keeps_reorders_deletes_and_inserts_rows(forms: Forms) -> None:
    store = forms.store()
    store.create(
        {
            "title": "Rows",
            "docs": [
                {"kind": "passport", "pages": 1},
                {"kind": "licence", "pages": 2},
                {"kind": "passport", "pages": 3},
            ],
        }
    )
    updated = store.update(
        1,
        {
            "docs": [
                {"id": 3, "kind": "passport", "pages": 30},
                {"kind": "licence", "pages": 4},
                {"id": 1, "kind": "licence", "pages": 1},
            ]
        },
        expected_version=1,
    )
    assert docs(updated) == [(3, "passport", 30), (4, "licence", 4), (1, "licence", 1)]
    assert updated["version"] == 2
    assert docs(store.get(1)) == docs(updated)
    assert [(r["id"], r["position"]) for r in forms.child_rows()] == [(1, 2), (3, 0), (4, 1)]


def test_a_row_sent_without_a_field_clears_it(forms: Forms) -> None:
    store = forms.store()
    store.create({"title": "Rows", "docs": [{"kind": "passport", "pages": 5}]})
    updated = store.update(1, {"docs": [{"id": 1, "kind": "passport"}]}, expected_version=1)
    assert docs(updated) == [(1, "passport", None)]


def test_an_empty_list_deletes_every_row_and_other_records_keep_theirs(forms: Forms) -> None:
    store = forms.store()
    store.create({"title": "One", "docs": [{"kind": "passport"}, {"kind": "licence"}]})
    store.create({"title": "Two", "docs": [{"kind": "licence"}]})
    assert store.update(1, {"docs": []}, expected_version=1)["docs"] == []
    assert [(r["id"], r["parent_id"]) for r in forms.child_rows()] == [(3, 2)]
    assert docs(store.get(2)) == [(3, "licence", None)]


def test_rows_of_another_record_are_refused(forms: Forms) -> None:
    store = forms.store()
    store.create({"title": "Mine", "docs": [{"kind": "passport"}]})
    store.create({"title": "Other", "docs": [{"kind": "licence"}]})
    before = snapshot(forms)
    with pytest.raises(LinkError) as exc:
        store.update(
            1,
            {
                "title": "Mine!",
                "docs": [{"id": 1, "kind": "licence"}, {"id": 2, "kind": "licence"}],
            },
            expected_version=1,
        )
    assert exc.value.message == "样本: rows refer to ids that are not rows of this record."
    assert pairs(exc) == [("/docs/1/id", "no such row in this record")]
    assert snapshot(forms) == before


def test_a_foreign_row_id_is_refused_even_when_nothing_else_changes(forms: Forms) -> None:
    store = forms.store()
    store.create({"title": "Mine", "docs": [{"kind": "passport"}]})
    store.create({"title": "Other", "docs": [{"kind": "passport"}]})
    before = snapshot(forms)
    with pytest.raises(LinkError) as exc:
        store.update(1, {"docs": [{"id": 2, "kind": "passport"}]}, expected_version=1)
    assert pairs(exc) == [("/docs/0/id", "no such row in this record")]
    assert snapshot(forms) == before


def test_the_same_row_twice_is_refused(forms: Forms) -> None:
    store = forms.store()
    store.create({"title": "Mine", "docs": [{"kind": "passport"}, {"kind": "licence"}]})
    before = snapshot(forms)
    with pytest.raises(LinkError) as exc:
        store.update(
            1,
            {"docs": [{"id": 1, "kind": "passport"}, {"id": 1, "kind": "licence"}]},
            expected_version=1,
        )
    assert pairs(exc) == [("/docs/1/id", "row 1 appears twice")]
    assert snapshot(forms) == before


def test_a_deleted_row_id_cannot_come_back(forms: Forms) -> None:
    store = forms.store()
    store.create({"title": "Mine", "docs": [{"kind": "passport"}, {"kind": "licence"}]})
    store.update(1, {"docs": [{"id": 2, "kind": "licence"}]}, expected_version=1)
    with pytest.raises(LinkError) as exc:
        store.update(1, {"docs": [{"id": 1, "kind": "passport"}]}, expected_version=2)
    assert pairs(exc) == [("/docs/0/id", "no such row in this record")]


# -- links, users, departments ---------------------------------------------------


def test_links_users_and_departments_must_exist(forms: Forms) -> None:
    acme = forms.company("Acme")
    before = snapshot(forms)
    with pytest.raises(LinkError) as exc:
        forms.store().create(
            {
                "title": "Dangling",
                "company": 99,
                "handler": 77,
                "team": 66,
                "docs": [{"kind": "passport", "issuer": acme}, {"kind": "licence", "issuer": 98}],
            }
        )
    assert exc.value.message == "样本: a linked record does not exist."
    assert sorted(pairs(exc)) == [
        ("/company", "company record 99 does not exist"),
        ("/docs/1/issuer", "company record 98 does not exist"),
        ("/handler", "user 77 does not exist"),
        ("/team", "department 66 does not exist"),
    ]
    assert snapshot(forms) == before


def test_a_link_to_a_soft_deleted_record_is_refused(forms: Forms) -> None:
    acme = forms.company("Acme")
    forms.store("company").delete(acme, expected_version=1)
    with pytest.raises(LinkError) as exc:
        forms.store().create({"title": "Late", "company": acme})
    assert pairs(exc) == [("/company", f"company record {acme} does not exist")]
    forms.store().create({"title": "Fine"})
    with pytest.raises(LinkError) as upd:
        forms.store().update(
            1, {"docs": [{"kind": "passport", "issuer": acme}]}, expected_version=1
        )
    assert pairs(upd) == [("/docs/0/issuer", f"company record {acme} does not exist")]


def test_valid_references_are_stored(forms: Forms) -> None:
    acme, beta = forms.company("Acme"), forms.company("Beta")
    record = forms.store().create(
        {
            "title": "Refs",
            "company": acme,
            "handler": 2,
            "team": 2,
            "docs": [{"kind": "passport", "issuer": beta}],
        }
    )
    assert (record["company"], record["handler"], record["team"]) == (acme, 2, 2)
    updated = forms.store().update(1, {"company": beta, "handler": None}, expected_version=1)
    assert (updated["company"], updated["handler"]) == (beta, None)


def test_references_cost_one_query_per_target_table(forms: Forms, count_statements: Any) -> None:
    companies = [forms.company(f"C{i}") for i in range(4)]
    payload = {
        "title": "Many",
        "company": companies[0],
        "handler": 1,
        "team": 1,
        "docs": [{"kind": "passport", "issuer": c} for c in companies],
    }
    with count_statements(forms.conn) as log:
        forms.store().create(payload)
    lookups = [s for s in log.statements if s.lstrip().upper().startswith("SELECT")]
    targets = sorted(
        t for s in lookups for t in ("form_company", "ff_user", "ff_department") if f"FROM {t}" in s
    )
    assert targets == ["ff_department", "ff_user", "form_company"]


# -- unique values ---------------------------------------------------------------------


def test_a_duplicate_unique_value_is_refused_with_its_pointer(forms: Forms) -> None:
    store = forms.store()
    store.create({"title": "First", "mail": "x@a.cn", "id_no": ID_A})
    before = snapshot(forms)
    with pytest.raises(ConflictError) as exc:
        store.create({"title": "Second", "mail": "x@A.CN"})
    assert exc.value.message == "样本: a unique value is already taken."
    assert pairs(exc) == [("/mail", "mail x@a.cn is already used by record 1")]
    assert snapshot(forms) == before


def test_every_clashing_unique_field_is_reported(forms: Forms) -> None:
    store = forms.store()
    store.create({"title": "First", "mail": "x@a.cn"})
    store.create({"title": "Second", "id_no": ID_A})
    with pytest.raises(ConflictError) as exc:
        store.create({"title": "Third", "mail": "x@a.cn", "id_no": ID_A})
    assert pairs(exc) == [
        ("/mail", "mail x@a.cn is already used by record 1"),
        ("/id_no", f"身份证号 {ID_A} is already used by record 2"),
    ]


def test_an_update_may_keep_its_own_unique_value_but_not_take_another(forms: Forms) -> None:
    store = forms.store()
    store.create({"title": "First", "id_no": ID_A})
    store.create({"title": "Second", "id_no": ID_B})
    assert store.update(1, {"id_no": ID_A, "qty": 1}, expected_version=1)["version"] == 2
    with pytest.raises(ConflictError) as exc:
        store.update(1, {"id_no": ID_B}, expected_version=2)
    assert pairs(exc) == [("/id_no", f"身份证号 {ID_B} is already used by record 2")]
    assert store.get(1)["id_no"] == ID_A


def test_a_soft_deleted_record_frees_its_unique_value(forms: Forms) -> None:
    store = forms.store()
    store.create({"title": "Old", "mail": "x@a.cn"})
    store.delete(1, expected_version=1)
    assert store.create({"title": "New", "mail": "x@a.cn"})["id"] == 2
    with pytest.raises(ConflictError) as exc:
        store.create({"title": "Newer", "mail": "x@a.cn"})
    assert pairs(exc) == [("/mail", "mail x@a.cn is already used by record 2")]


def test_a_duplicate_that_slips_past_the_pre_check_is_a_conflict(
    committed_engine: sa.Engine, backend: str
) -> None:
    """Writer B checks while A's insert is uncommitted, then A commits: B must lose."""
    outcome: list[BaseException | dict[str, Any]] = []

    def second_writer() -> None:
        try:
            with committed_engine.begin() as conn:
                outcome.append(open_forms(conn).store().create({"title": "Bb", "mail": "x@a.cn"}))
        except Exception as exc:
            outcome.append(exc)

    with committed_engine.connect() as first:
        with first.begin():
            open_forms(first).store().create({"title": "Aa", "mail": "x@a.cn"})
            thread = threading.Thread(target=second_writer)
            thread.start()
            wait_until_blocked(committed_engine, backend)
        thread.join(timeout=60)
    assert len(outcome) == 1 and isinstance(outcome[0], ConflictError), outcome
    expected = {
        # PostgreSQL: B's INSERT waited on the unique index, then failed.
        "postgresql": "样本: the change conflicts with a concurrent change "
        "(a unique value or a linked record); reload and try again.",
        # SQLite: B's INSERT waited for the write lock; its snapshot is stale.
        "sqlite": "样本: another change was saved at the same time; reload and try again.",
    }
    assert outcome[0].message == expected[backend]
    with committed_engine.connect() as conn:
        assert [r["title"] for r in open_forms(conn).list().items] == ["Aa"]


def wait_until_blocked(engine: sa.Engine, backend: str) -> None:
    """Until another session waits for a lock (PostgreSQL), or a while (SQLite)."""
    if backend == "sqlite":
        time.sleep(0.5)
        return
    deadline = time.monotonic() + 10
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
            conn.rollback()
            if waiting:
                return
            time.sleep(0.01)
    raise AssertionError("the second writer never blocked")
