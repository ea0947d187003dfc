"""The audit trail: one row per change, with actor, version and the changed fields only."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from records_support import T0, Forms

from engine.errors import ConflictError, LinkError, RecordValidationError, StaleVersionError
from engine.records.audit import read_audit


def at(seconds: int) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def trail(forms: Forms, record_id: int = 1) -> list[dict[str, Any]]:
    """The record's audit rows without their own ids (which are asserted elsewhere)."""
    rows = read_audit(forms.conn, "specimen", record_id)
    return [{k: v for k, v in r.items() if k != "id"} for r in rows]


def test_create_writes_one_row_with_every_non_empty_field(forms: Forms) -> None:
    forms.store(user_id=2).create(
        {
            "title": "Audited",
            "qty": 0,
            "active": False,
            "rate": "2.5",
            "seen_at": "2024-05-01T09:30:00+08:00",
            "tags": [],
            "level": None,
            "docs": [{"kind": "passport", "pages": 2}],
        }
    )
    assert trail(forms) == [
        {
            "form_key": "specimen",
            "record_id": 1,
            "action": "create",
            "actor_id": 2,
            "at": at(0),
            "record_version": 1,
            "changes": {
                "title": {"before": None, "after": "Audited"},
                "qty": {"before": None, "after": 0},
                "active": {"before": None, "after": False},
                "rate": {"before": None, "after": "2.5000"},
                "seen_at": {"before": None, "after": "2024-05-01T01:30:00Z"},
                "stage": {"before": None, "after": "new"},
                "docs": {
                    "before": None,
                    "after": [{"id": 1, "kind": "passport", "pages": 2, "issuer": None}],
                },
            },
        }
    ]


def test_update_records_only_the_fields_that_changed(forms: Forms) -> None:
    store = forms.store()
    store.create({"title": "Audited", "qty": 1, "level": "low", "mail": "a@b.cn"})
    forms.store(user_id=2).update(
        1,
        {"title": "Audited", "qty": 2, "level": None, "mail": "a@B.CN", "rate": "1"},
        expected_version=1,
    )
    rows = trail(forms)
    assert len(rows) == 2
    assert rows[1] == {
        "form_key": "specimen",
        "record_id": 1,
        "action": "update",
        "actor_id": 2,
        "at": at(1),
        "record_version": 2,
        "changes": {
            "qty": {"before": 1, "after": 2},
            "level": {"before": "low", "after": None},
            "rate": {"before": None, "after": "1.0000"},
        },
    }


def test_a_no_op_update_writes_no_audit_row(forms: Forms) -> None:
    store = forms.store()
    store.create({"title": "Same", "qty": 1, "docs": [{"kind": "passport"}]})
    store.update(
        1, {"title": "Same", "qty": 1, "docs": [{"id": 1, "kind": "passport"}]}, expected_version=1
    )
    store.update(1, {}, expected_version=1)
    assert [r["action"] for r in trail(forms)] == ["create"]
    assert forms.audit_count() == 1
    assert store.get(1)["version"] == 1


def test_a_change_of_rows_is_audited_with_row_ids(forms: Forms) -> None:
    store = forms.store()
    store.create({"title": "Rows", "qty": 1, "docs": [{"kind": "passport"}, {"kind": "licence"}]})
    store.update(
        1,
        {"qty": 1, "docs": [{"id": 2, "kind": "licence", "pages": 4}, {"kind": "passport"}]},
        expected_version=1,
    )
    assert trail(forms)[1]["changes"] == {
        "docs": {
            "before": [
                {"id": 1, "kind": "passport", "pages": None, "issuer": None},
                {"id": 2, "kind": "licence", "pages": None, "issuer": None},
            ],
            "after": [
                {"id": 2, "kind": "licence", "pages": 4, "issuer": None},
                {"id": 3, "kind": "passport", "pages": None, "issuer": None},
            ],
        }
    }
    assert trail(forms)[1]["record_version"] == 2


def test_delete_is_audited_with_the_time_in_utc(forms: Forms) -> None:
    store = forms.store()
    store.create({"title": "Bye"})
    store.update(1, {"qty": 3}, expected_version=1)
    forms.store(user_id=2).delete(1, expected_version=2)
    rows = trail(forms)
    assert [(r["action"], r["record_version"], r["actor_id"], r["at"]) for r in rows] == [
        ("create", 1, 1, at(0)),
        ("update", 2, 1, at(1)),
        ("delete", 3, 2, at(2)),
    ]
    assert rows[2]["changes"] == {"deleted_at": {"before": None, "after": "2024-06-01T08:00:02Z"}}


def test_refused_writes_leave_no_audit_row(forms: Forms) -> None:
    store = forms.store()
    store.create({"title": "One", "mail": "x@a.cn"})
    store.create({"title": "Two"})
    refusals: list[tuple[type[Exception], Any]] = [
        (RecordValidationError, lambda: store.create({"title": None})),
        (ConflictError, lambda: store.create({"title": "Dup", "mail": "x@a.cn"})),
        (LinkError, lambda: store.create({"title": "Lnk", "company": 5})),
        (StaleVersionError, lambda: store.update(1, {"qty": 1}, expected_version=2)),
        (ConflictError, lambda: store.update(2, {"mail": "x@a.cn"}, expected_version=1)),
        (RecordValidationError, lambda: store.update(2, {"qty": -1}, expected_version=1)),
        (StaleVersionError, lambda: store.delete(2, expected_version=5)),
    ]
    for error, write in refusals:
        with pytest.raises(error):
            write()
    assert forms.audit_count() == 2


def test_each_record_has_its_own_trail_in_order(forms: Forms) -> None:
    store = forms.store()
    store.create({"title": "One"})
    store.create({"title": "Two"})
    store.update(2, {"qty": 1}, expected_version=1)
    store.update(1, {"qty": 1}, expected_version=1)
    store.update(2, {"qty": 2}, expected_version=2)
    assert [(r["action"], r["record_version"]) for r in trail(forms, 2)] == [
        ("create", 1),
        ("update", 2),
        ("update", 3),
    ]
    assert [(r["action"], r["record_version"]) for r in trail(forms, 1)] == [
        ("create", 1),
        ("update", 2),
    ]
    assert read_audit(forms.conn, "company", 1) == []
    assert forms.audit_count() == 5
