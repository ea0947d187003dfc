"""Payload validation and the JSON form of every field type, through a real database."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from records_support import ID_A, ID_B, ID_WITH_X, T0, Forms

from engine.errors import RecordValidationError
from engine.forms.checks import make_cn_id


def z(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def problems(exc: pytest.ExceptionInfo[RecordValidationError]) -> list[tuple[str, str]]:
    return [(e.pointer, e.message) for e in exc.value.errors]


def reject(forms: Forms, payload: Any) -> list[tuple[str, str]]:
    """The (pointer, message) pairs of a refused create; the database is unchanged."""
    before = (forms.rows(), forms.audit_count(), forms.child_rows())
    with pytest.raises(RecordValidationError) as exc:
        forms.store().create(payload)
    assert (forms.rows(), forms.audit_count(), forms.child_rows()) == before
    return problems(exc)


# -- every field type, create -> get -------------------------------------------


def test_every_field_type_round_trips_through_create_and_get(forms: Forms) -> None:
    company = forms.company("Acme")  # reads the clock once: T0
    store = forms.store()
    payload = {
        "title": "Alpha",
        "code": "ABC",
        "notes": "第一行\n第二行",
        "qty": 7,
        "rate": "3.14",
        "amount": "9999999999999999.99",
        "active": False,
        "born": "1990-01-02",
        "seen_at": "2024-05-01T09:30:00.123456+08:00",
        "level": "mid",
        "tags": ["blue", "red"],
        "mobile": "13812345678",
        "mail": "Zhang.San@Example.COM",
        "id_no": ID_WITH_X.lower(),
        "photo": "files/2024/contract.pdf",
        "handler": 2,
        "team": 1,
        "company": company,
        "docs": [{"kind": "passport", "pages": 3, "issuer": company}, {"kind": "licence"}],
    }
    created = store.create(payload, dept_id=2)
    at = z(T0 + dt.timedelta(seconds=1))
    expected = {
        "id": 1,
        "version": 1,
        "created_at": at,
        "created_by": 1,
        "updated_at": at,
        "updated_by": 1,
        "owner_id": 1,
        "dept_id": 2,
        "title": "Alpha",
        "code": "ABC",
        "notes": "第一行\n第二行",
        "qty": 7,
        "rate": "3.1400",
        "amount": "9999999999999999.99",
        "active": False,
        "born": "1990-01-02",
        "seen_at": "2024-05-01T01:30:00.123456Z",
        "level": "mid",
        "stage": "new",
        "tags": ["blue", "red"],
        "mobile": "13812345678",
        "mail": "Zhang.San@example.com",
        "id_no": "11010119900102007X",
        "photo": "files/2024/contract.pdf",
        "handler": 2,
        "team": 1,
        "company": company,
        "frozen": None,
        "score": None,
        "docs": [
            {"id": 1, "kind": "passport", "pages": 3, "issuer": company},
            {"id": 2, "kind": "licence", "pages": None, "issuer": None},
        ],
    }
    assert created == expected
    assert store.get(1) == expected
    assert forms.store(user_id=2).get(1) == expected


def test_a_minimal_record_has_nulls_and_defaults(forms: Forms) -> None:
    record = forms.store(user_id=None).create({"title": "Hi"})
    fields = {k: v for k, v in record.items() if k not in ("created_at", "updated_at")}
    assert fields == {
        "id": 1,
        "version": 1,
        "created_by": None,
        "updated_by": None,
        "owner_id": None,
        "dept_id": None,
        "title": "Hi",
        **dict.fromkeys(
            [
                "code",
                "notes",
                "qty",
                "rate",
                "amount",
                "active",
                "born",
                "seen_at",
                "level",
                "tags",
                "mobile",
                "mail",
                "id_no",
                "photo",
                "handler",
                "team",
                "company",
                "frozen",
                "score",
            ]
        ),
        "stage": "new",
        "docs": [],
    }


def test_an_explicit_null_overrides_a_default(forms: Forms) -> None:
    assert forms.store().create({"title": "Hi", "stage": None})["stage"] is None
    assert forms.store().create({"title": "Ho", "stage": "done"})["stage"] == "done"


MONEY: list[tuple[Any, str]] = [
    ("9999999999999999.99", "9999999999999999.99"),
    ("-9999999999999999.99", "-9999999999999999.99"),
    ("0.01", "0.01"),
    ("0.1", "0.10"),
    (0.1, "0.10"),
    (0.3, "0.30"),
    (5, "5.00"),
    ("1.230", "1.23"),
    ("00012.5", "12.50"),
    ("-0.00", "0.00"),
    ("1234567890123456.78", "1234567890123456.78"),
]


def round_trips(forms: Forms, key: str, cases: list[tuple[Any, str]]) -> None:
    """Each sent value comes back as stored, from create and from get."""
    store = forms.store()
    created = {repr(sent): store.create({"title": "Value", key: sent}) for sent, _ in cases}
    assert {sent: record[key] for sent, record in created.items()} == {
        repr(sent): stored for sent, stored in cases
    }
    assert {sent: store.get(record["id"])[key] for sent, record in created.items()} == {
        repr(sent): stored for sent, stored in cases
    }


def test_money_is_exact(forms: Forms) -> None:
    round_trips(forms, "amount", MONEY)


def test_decimals_come_back_as_strings_with_the_field_scale(forms: Forms) -> None:
    cases = [("3.14", "3.1400"), (2, "2.0000"), ("-9.9999", "-9.9999"), ("1000", "1000.0000")]
    round_trips(forms, "rate", cases)


def test_datetimes_are_stored_and_returned_in_utc(forms: Forms) -> None:
    cases = [
        ("2024-05-01T09:30:00+08:00", "2024-05-01T01:30:00Z"),
        ("2024-05-01T00:30:00+08:00", "2024-04-30T16:30:00Z"),
        ("2024-05-01T09:30:00Z", "2024-05-01T09:30:00Z"),
        ("2024-05-01T09:30:00-05:30", "2024-05-01T15:00:00Z"),
        ("2024-12-31T23:59:59.5+00:00", "2024-12-31T23:59:59.500000Z"),
    ]
    round_trips(forms, "seen_at", cases)


def test_email_domain_is_lower_cased_and_local_part_kept(forms: Forms) -> None:
    cases = [
        ("Li.Si@Example.COM", "Li.Si@example.com"),
        ("a@B.CN", "a@b.cn"),
        ("MiXeD@mixed.org", "MiXeD@mixed.org"),
    ]
    round_trips(forms, "mail", cases)


def test_cn_id_number_is_stored_with_upper_case_x(forms: Forms) -> None:
    store = forms.store()
    assert store.create({"title": "Id1", "id_no": "11010119900102007x"})["id_no"] == ID_WITH_X
    assert store.create({"title": "Id2", "id_no": ID_A})["id_no"] == ID_A


def test_multi_select_keeps_the_order_given_and_accepts_an_empty_list(forms: Forms) -> None:
    store = forms.store()
    assert store.create({"title": "T1", "tags": ["green", "red", "blue"]})["tags"] == [
        "green",
        "red",
        "blue",
    ]
    assert store.get(1)["tags"] == ["green", "red", "blue"]
    assert store.create({"title": "T2", "tags": []})["tags"] == []


def test_computed_field_is_read_only_and_stays_null(forms: Forms) -> None:
    store = forms.store()
    assert reject(forms, {"title": "Comp", "score": 4}) == [("/score", "得分 (score) is read-only")]
    record = store.create({"title": "Comp", "qty": 2})
    assert record["score"] is None
    with pytest.raises(RecordValidationError) as exc:
        store.update(record["id"], {"score": 4}, expected_version=1)
    assert problems(exc) == [("/score", "得分 (score) is read-only")]
    assert store.get(record["id"])["version"] == 1


# -- validation: every problem at once -------------------------------------------


def test_every_problem_is_reported_at_once_with_its_pointer(forms: Forms) -> None:
    payload = {
        "title": None,
        "code": "abcd",
        "notes": "x" * 51,
        "qty": 101,
        "rate": "1.23456",
        "amount": "12,50",
        "active": "yes",
        "born": "1990-02-30",
        "seen_at": "2024-05-01T09:30:00",
        "level": "huge",
        "tags": ["red", "pink"],
        "mobile": "23812345678",
        "mail": "no-at-sign",
        "id_no": ID_WITH_X[:17] + "1",
        "photo": "",
        "handler": 0,
        "team": "1",
        "company": 1.5,
        "frozen": "thaw",
        "score": 3,
        "id": 5,
        "version": 2,
        "deleted_at": None,
        "bogus": 1,
        "docs": [{"kind": "visa", "pages": 0, "extra": 1}, {"pages": 2}, "row"],
    }
    assert reject(forms, payload) == [
        ("/active", "active must be true or false"),
        ("/amount", "金额 must be an amount like 1234.56"),
        ("/bogus", "unknown field 'bogus'"),
        ("/born", "born must be a date like 2024-05-31"),
        ("/code", "code must match the pattern ^[A-Z]{3}$"),
        ("/company", "company must be a whole number"),
        ("/deleted_at", "deleted_at is a system field and cannot be written"),
        ("/docs/0/extra", "unknown field 'extra'"),
        ("/docs/0/kind", "类型 must be one of: passport, licence"),
        ("/docs/0/pages", "pages must be at least 1"),
        ("/docs/1/kind", "类型 is required"),
        ("/docs/2", "材料 must be an object"),
        ("/frozen", "frozen is read-only"),
        ("/handler", "handler must be at least 1"),
        ("/id", "id is a system field and cannot be written"),
        ("/id_no", "身份证号 has a wrong check digit; please re-check the number"),
        ("/level", "level must be one of: low, mid, high"),
        ("/mail", "mail must be an email address"),
        ("/mobile", "手机 must be a mainland China mobile number (11 digits, starting with 1)"),
        ("/notes", "notes must be at most 50 characters"),
        ("/photo", "photo must be at least 1 characters"),
        ("/qty", "数量 must be at most 100"),
        ("/rate", "rate must have at most 4 decimal places"),
        ("/score", "得分 (score) is read-only"),
        ("/seen_at", "seen_at must include a time zone offset, e.g. +08:00 or Z"),
        ("/tags/1", "tags must be one of: red, green, blue"),
        ("/team", "team must be a whole number"),
        ("/title", "标题 is required"),
        ("/version", "version is a system field and cannot be written"),
    ]


def test_the_error_message_counts_the_problems(forms: Forms) -> None:
    with pytest.raises(RecordValidationError) as exc:
        forms.store().create({"qty": -1})
    assert exc.value.message == "The 样本 record has 2 problem(s)."
    assert str(exc.value) == (
        "The 样本 record has 2 problem(s).\n"
        "  /qty: 数量 must be at least 0\n"
        "  /title: 标题 is required"
    )


PROBLEMS: list[tuple[dict[str, Any], list[tuple[str, str]]]] = [
    ({}, [("/title", "标题 is required")]),
    ({"title": "A"}, [("/title", "标题 must be at least 2 characters")]),
    ({"title": "x" * 21}, [("/title", "标题 must be at most 20 characters")]),
    ({"title": 12}, [("/title", "标题 must be text")]),
    ({"title": "OK", "qty": "5"}, [("/qty", "数量 must be a whole number")]),
    ({"title": "OK", "qty": 5.5}, [("/qty", "数量 must be a whole number")]),
    ({"title": "OK", "qty": True}, [("/qty", "数量 must be a whole number")]),
    (
        {"title": "OK", "rate": "10000"},
        [("/rate", "rate must have at most 4 digits before the decimal point")],
    ),
    ({"title": "OK", "rate": "1000.0001"}, [("/rate", "rate must be at most 1000")]),
    ({"title": "OK", "rate": "-10.5"}, [("/rate", "rate must be at least -10")]),
    ({"title": "OK", "rate": "abc"}, [("/rate", "rate must be a decimal number")]),
    ({"title": "OK", "rate": "1e3"}, [("/rate", "rate must be a decimal number")]),
    ({"title": "OK", "rate": True}, [("/rate", "rate must be a number or text")]),
    (
        {"title": "OK", "amount": "10000000000000000"},
        [("/amount", "金额 must have at most 16 digits before the decimal point")],
    ),
    (
        {"title": "OK", "amount": "1.234"},
        [("/amount", "金额 must have at most 2 decimal places")],
    ),
    (
        {"title": "OK", "amount": 0.125},
        [("/amount", "金额 must have at most 2 decimal places")],
    ),
    ({"title": "OK", "active": 1}, [("/active", "active must be true or false")]),
    ({"title": "OK", "born": "1990-1-2"}, [("/born", "born must be a date like 2024-05-31")]),
    ({"title": "OK", "born": "19900102"}, [("/born", "born must be a date like 2024-05-31")]),
    (
        {"title": "OK", "born": "1990-01-02T00:00:00Z"},
        [("/born", "born must be a date like 2024-05-31")],
    ),
    (
        {"title": "OK", "seen_at": "2024-05-01"},
        [("/seen_at", "seen_at must be a date-time like 2024-05-31T09:30:00+08:00")],
    ),
    (
        {"title": "OK", "seen_at": "yesterday"},
        [("/seen_at", "seen_at must be a date-time like 2024-05-31T09:30:00+08:00")],
    ),
    (
        {"title": "OK", "seen_at": "2024-05-01T09:30"},
        [("/seen_at", "seen_at must include a time zone offset, e.g. +08:00 or Z")],
    ),
    ({"title": "OK", "level": "LOW"}, [("/level", "level must be one of: low, mid, high")]),
    ({"title": "OK", "tags": "red"}, [("/tags", "tags must be a list")]),
    (
        {"title": "OK", "tags": ["red", "red"]},
        [("/tags", "tags must not contain the same option twice")],
    ),
    ({"title": "OK", "tags": [1]}, [("/tags/0", "tags must be text")]),
    (
        {"title": "OK", "mobile": "1381234567"},
        [
            (
                "/mobile",
                "手机 must be a mainland China mobile number (11 digits, starting with 1)",
            )
        ],
    ),
    (
        {"title": "OK", "mobile": "12812345678"},
        [
            (
                "/mobile",
                "手机 must be a mainland China mobile number (11 digits, starting with 1)",
            )
        ],
    ),
    (
        {"title": "OK", "mobile": "+8613812345678"},
        [
            (
                "/mobile",
                "手机 must be a mainland China mobile number (11 digits, starting with 1)",
            )
        ],
    ),
    ({"title": "OK", "mail": "a b@c.cn"}, [("/mail", "mail must be an email address")]),
    ({"title": "OK", "mail": "a@localhost"}, [("/mail", "mail must be an email address")]),
    ({"title": "OK", "mail": "a@@b.cn"}, [("/mail", "mail must be an email address")]),
    (
        {"title": "OK", "id_no": "12345"},
        [("/id_no", "身份证号 must be 18 characters: 17 digits and a final digit or X")],
    ),
    (
        {"title": "OK", "id_no": "11010119900230001X"},
        [("/id_no", "身份证号 contains an impossible birth date (19900230)")],
    ),
    (
        {"title": "OK", "id_no": make_cn_id("110101", dt.date(2990, 1, 2), 1)},
        [("/id_no", "身份证号 contains a birth date out of range (2990-01-02)")],
    ),
    (
        {"title": "OK", "id_no": ID_B[:17] + "X"},
        [("/id_no", "身份证号 has a wrong check digit; please re-check the number")],
    ),
    ({"title": "OK", "photo": "x" * 256}, [("/photo", "photo must be at most 255 characters")]),
    ({"title": "OK", "photo": 3}, [("/photo", "photo must be text")]),
    ({"title": "OK", "handler": "2"}, [("/handler", "handler must be a whole number")]),
    ({"title": "OK", "team": -1}, [("/team", "team must be at least 1")]),
    (
        {"title": "OK", "company": 2**63},
        [("/company", "company must be at most 9223372036854775807")],
    ),
    ({"title": "OK", "docs": None}, [("/docs", "材料 must be a list (use [] to empty it)")]),
    ({"title": "OK", "docs": {"kind": "passport"}}, [("/docs", "材料 must be a list")]),
    (
        {"title": "OK", "docs": [{"kind": "passport", "id": "7"}]},
        [("/docs/0/id", "id must be the integer id of an existing row")],
    ),
    (
        {"title": "OK", "docs": [{"kind": None}]},
        [("/docs/0/kind", "类型 is required")],
    ),
    (
        {"title": "OK", "docs": [{"kind": "passport", "version": 1}]},
        [("/docs/0/version", "version is a system field and cannot be written")],
    ),
    (
        {"title": "OK", "docs": [{"kind": "passport", "issuer": "x"}]},
        [("/docs/0/issuer", "issuer must be a whole number")],
    ),
    (
        {"title": "OK", "parent_id": 1},
        [("/parent_id", "parent_id is a system field and cannot be written")],
    ),
]


def test_each_problem_has_its_pointer_and_message(forms: Forms) -> None:
    # One database for all cases; a dict so that a failure shows every wrong case.
    actual = {repr(payload): reject(forms, payload) for payload, _ in PROBLEMS}
    assert actual == {repr(payload): expected for payload, expected in PROBLEMS}
    assert len(actual) == len(PROBLEMS)


def test_a_payload_must_be_an_object(forms: Forms) -> None:
    for payload in ([], "title", 3, None):
        assert reject(forms, payload) == [("", "must be a JSON object")]


def test_rows_of_a_new_record_cannot_carry_ids(forms: Forms) -> None:
    before = (forms.rows(), forms.audit_count())
    with pytest.raises(RecordValidationError) as exc:
        forms.store().create(
            {"title": "OK", "docs": [{"kind": "passport"}, {"id": 3, "kind": "licence"}]}
        )
    assert [(e.pointer, e.message) for e in exc.value.errors] == [
        ("/docs/1/id", "a new record's rows cannot carry ids")
    ]
    assert (forms.rows(), forms.audit_count(), forms.child_rows()) == (*before, [])


def test_a_row_with_a_null_id_is_a_new_row(forms: Forms) -> None:
    store = forms.store()
    created = store.create({"title": "OK", "docs": [{"id": None, "kind": "passport"}]})
    assert created["docs"] == [{"id": 1, "kind": "passport", "pages": None, "issuer": None}]
    updated = store.update(
        1,
        {"docs": [{"id": 1, "kind": "passport"}, {"id": None, "kind": "licence"}]},
        expected_version=1,
    )
    assert updated["docs"] == [
        {"id": 1, "kind": "passport", "pages": None, "issuer": None},
        {"id": 2, "kind": "licence", "pages": None, "issuer": None},
    ]


def test_a_patch_needs_no_required_fields_but_cannot_null_them(forms: Forms) -> None:
    store = forms.store()
    store.create({"title": "Keep", "qty": 1})
    assert store.update(1, {"qty": 2}, expected_version=1)["title"] == "Keep"
    audits = forms.audit_count()
    with pytest.raises(RecordValidationError) as exc:
        store.update(1, {"title": None, "qty": 500, "nope": 1}, expected_version=2)
    assert problems(exc) == [
        ("/nope", "unknown field 'nope'"),
        ("/qty", "数量 must be at most 100"),
        ("/title", "标题 is required"),
    ]
    record = store.get(1)
    assert (record["version"], record["title"], record["qty"]) == (2, "Keep", 2)
    assert forms.audit_count() == audits


def test_a_rejected_update_of_rows_changes_nothing(forms: Forms) -> None:
    store = forms.store()
    store.create({"title": "Rows", "docs": [{"kind": "passport", "pages": 1}]})
    before = (store.get(1), forms.child_rows(), forms.audit_count())
    with pytest.raises(RecordValidationError) as exc:
        store.update(
            1,
            {"docs": [{"id": 1, "kind": "passport", "pages": 2}, {"kind": "visa"}]},
            expected_version=1,
        )
    assert problems(exc) == [("/docs/1/kind", "类型 must be one of: passport, licence")]
    assert (store.get(1), forms.child_rows(), forms.audit_count()) == before
