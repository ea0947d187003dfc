"""The closed field-type registry: schema fragments, checks, columns, JSON."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from engine.forms.checks import make_cn_id
from engine.forms.columns import ColumnSpec
from engine.forms.fieldtypes import FIELD_TYPES, INT64_MAX, INT64_MIN, infer_type

MAXLEN = [("/maxLength", "maxLength of a text field must be 1..4000; use long_text")]
PRECISION = [("/x-precision", "x-precision must be 1..18 and x-scale 0..x-precision")]
NO_OPTIONS = "a select field needs a non-empty 'enum' list of options"


def problem(type_name: str, value: Any, prop: dict[str, Any] | None = None) -> str | None:
    """What a record value meets: the JSON Schema fragment, then the type's check."""
    prop = prop or {}
    ftype = FIELD_TYPES[type_name]
    error = next(iter(Draft202012Validator(ftype.fragment(prop)).iter_errors(value)), None)
    if error is not None:
        return f"schema: {error.validator}"
    return ftype.check(value, prop)


def test_the_registry_is_closed() -> None:
    assert sorted(FIELD_TYPES) == [
        "attachment",
        "boolean",
        "cn_id_number",
        "computed",
        "date",
        "datetime",
        "decimal",
        "department",
        "email",
        "integer",
        "link",
        "long_text",
        "money",
        "multi_select",
        "phone",
        "select",
        "subtable",
        "text",
        "user",
    ]
    assert all(name == t.name for name, t in FIELD_TYPES.items())


@pytest.mark.parametrize(
    ("prop", "inferred"),
    [
        ({"type": "string"}, "text"),
        ({"type": "string", "format": "date"}, "date"),
        ({"type": "string", "format": "date-time"}, "datetime"),
        ({"type": "string", "format": "email"}, "email"),
        ({"type": "string", "format": "uri"}, "text"),
        ({"type": "string", "enum": ["a"]}, "select"),
        ({"type": "array", "items": {"type": "object", "properties": {}}}, "subtable"),
        ({"type": "array", "items": {"enum": ["a"]}}, "multi_select"),
        ({"type": "array"}, "multi_select"),
        ({"type": "integer"}, "integer"),
        ({"type": "number"}, "decimal"),
        ({"type": "boolean"}, "boolean"),
        ({"type": "null"}, None),
        ({"type": ["string", "null"]}, None),
        ({}, None),
    ],
)
def test_infer_type(prop: dict[str, Any], inferred: str | None) -> None:
    assert infer_type(prop) == inferred


@pytest.mark.parametrize(
    ("type_name", "prop", "column"),
    [
        ("text", {}, ColumnSpec("string", length=255)),
        ("text", {"maxLength": 20}, ColumnSpec("string", length=20)),
        ("long_text", {"maxLength": 20}, ColumnSpec("text")),
        ("integer", {}, ColumnSpec("integer")),
        ("decimal", {}, ColumnSpec("numeric", precision=18, scale=2)),
        (
            "decimal",
            {"x-precision": 10, "x-scale": 4},
            ColumnSpec("numeric", precision=10, scale=4),
        ),
        ("money", {}, ColumnSpec("numeric", precision=18, scale=2)),
        ("boolean", {}, ColumnSpec("boolean")),
        ("date", {}, ColumnSpec("date")),
        ("datetime", {}, ColumnSpec("datetime")),
        ("select", {"enum": ["a"]}, ColumnSpec("string", length=64)),
        ("multi_select", {"items": {"enum": ["a"]}}, ColumnSpec("json")),
        ("phone", {}, ColumnSpec("string", length=20)),
        ("email", {}, ColumnSpec("string", length=254)),
        ("cn_id_number", {}, ColumnSpec("string", length=18)),
        ("attachment", {}, ColumnSpec("string", length=255)),
        ("user", {}, ColumnSpec("fk", references="ff_user.id")),
        ("department", {}, ColumnSpec("fk", references="ff_department.id")),
        ("link", {"x-link": "customer"}, ColumnSpec("fk", references="form_customer.id")),
        ("subtable", {"items": {"properties": {}}}, None),
        ("computed", {"x-expression": "1"}, ColumnSpec("string", length=255)),
        ("computed", {"x-expression": "1", "x-result-type": "integer"}, ColumnSpec("integer")),
        (
            "computed",
            {"x-expression": "1", "x-result-type": "decimal", "x-precision": 9, "x-scale": 3},
            ColumnSpec("numeric", precision=9, scale=3),
        ),
    ],
)
def test_columns(type_name: str, prop: dict[str, Any], column: ColumnSpec | None) -> None:
    assert FIELD_TYPES[type_name].column(prop) == column


# --- values -----------------------------------------------------------------


def test_text() -> None:
    prop = {"maxLength": 5, "minLength": 2, "pattern": "^[A-Z]+$"}
    assert problem("text", "ABCDE", prop) is None
    assert problem("text", "ABCDEF", prop) == "schema: maxLength"
    assert problem("text", "A", prop) == "schema: minLength"
    assert problem("text", "abc", prop) == "schema: pattern"
    assert problem("text", 5, prop) == "schema: type"
    assert problem("text", "x" * 255) is None
    assert problem("text", "x" * 256) == "schema: maxLength"


def test_integer_range_defaults_to_64_bits() -> None:
    assert problem("integer", INT64_MAX) is None
    assert problem("integer", INT64_MIN) is None
    assert problem("integer", INT64_MAX + 1) == "schema: maximum"
    assert problem("integer", INT64_MIN - 1) == "schema: minimum"
    assert problem("integer", 1.5) == "schema: type"
    assert (
        problem("integer", 5, {"minimum": 1, "exclusiveMaximum": 5}) == "schema: exclusiveMaximum"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("12.34", None),
        (12.34, None),
        (12, None),
        ("-12.3", None),
        ("12.300", None),  # extra zeros are not extra precision
        ("12.345", "must have at most 2 decimal places"),
        (12.345, "must have at most 2 decimal places"),
        ("9999999999999999.99", None),
        ("10000000000000000", "must have at most 16 digits before the decimal point"),
        ("-10000000000000000", "must have at most 16 digits before the decimal point"),
        # So large that rounding it to the scale overflows the decimal context.
        ("1" + "0" * 30 + ".001", "must have at most 16 digits before the decimal point"),
        ("1" + "0" * 40, "must have at most 16 digits before the decimal point"),
        ("1e3", "schema: pattern"),  # strings have no exponent
        ("12,34", "schema: pattern"),
        ("", "schema: pattern"),
        (True, "schema: type"),
        (None, "schema: type"),
        (1e300, "must have at most 16 digits before the decimal point"),
    ],
)
def test_decimal_values(value: Any, message: str | None) -> None:
    assert problem("decimal", value) == message


def test_decimal_precision_scale_and_bounds() -> None:
    prop = {"x-precision": 5, "x-scale": 3, "minimum": -1, "maximum": 10.5}
    assert problem("decimal", "10.5", prop) is None
    assert problem("decimal", "10.501", prop) == "must be at most 10.5"
    assert problem("decimal", "-1.001", prop) == "must be at least -1"
    assert problem("decimal", "1.0001", prop) == "must have at most 3 decimal places"
    assert problem("decimal", "100", {"x-precision": 5, "x-scale": 3}) == (
        "must have at most 2 digits before the decimal point"
    )
    assert FIELD_TYPES["decimal"].check("NaN", {}) == "must be a decimal number"
    assert FIELD_TYPES["decimal"].check("Infinity", {}) == "must be a decimal number"
    assert FIELD_TYPES["decimal"].check(False, {}) == "must be a decimal number"


def test_decimal_conversion_is_exact() -> None:
    decimal_type = FIELD_TYPES["decimal"]
    value = decimal_type.to_python(0.1, {})
    assert value == Decimal("0.10") and str(value) == "0.10"
    assert str(decimal_type.to_python("12.300", {"x-scale": 3})) == "12.300"
    assert decimal_type.to_json(Decimal("12.30")) == "12.30"
    assert decimal_type.to_json(None) is None
    assert decimal_type.openapi({})["type"] == "string"


def test_money_is_fixed_at_18_2() -> None:
    money = FIELD_TYPES["money"]
    assert money.check("9999999999999999.99", {"x-precision": 4}) is None
    assert money.check("0.001", {"x-scale": 3}) == "must have at most 2 decimal places"
    assert money.definition_problems({"x-precision": 99}) == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2024-05-31", None),
        ("2024-02-29", None),
        ("2023-02-29", "must be a date like 2024-05-31"),
        ("2024-5-31", "must be a date like 2024-05-31"),
        ("20240531", "must be a date like 2024-05-31"),
        ("2024-W22-5", "must be a date like 2024-05-31"),  # an ISO week date
        ("2024-05-31T00:00:00", "must be a date like 2024-05-31"),
        ("31/05/2024", "must be a date like 2024-05-31"),
        ("２０２４-05-31", "must be a date like 2024-05-31"),
    ],
)
def test_date_values(value: str, message: str | None) -> None:
    assert FIELD_TYPES["date"].check(value, {}) == message


def test_date_conversion() -> None:
    date_type = FIELD_TYPES["date"]
    assert date_type.to_python("2024-05-31", {}) == dt.date(2024, 5, 31)
    assert date_type.to_json(dt.date(2024, 5, 31)) == "2024-05-31"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2024-05-31T09:30:00+08:00", None),
        ("2024-05-31T01:30:00Z", None),
        ("2024-05-31T01:30:00.123456Z", None),
        ("2024-05-31T09:30:00", "must include a time zone offset, e.g. +08:00 or Z"),
        ("2024-05-31", "must be a date-time like 2024-05-31T09:30:00+08:00"),
        ("2024-05-31 09:30:00+08:00", "must be a date-time like 2024-05-31T09:30:00+08:00"),
        ("20240531T093000Z", "must be a date-time like 2024-05-31T09:30:00+08:00"),
        ("2024-W22-5T09:30:00Z", "must be a date-time like 2024-05-31T09:30:00+08:00"),
        ("yesterday", "must be a date-time like 2024-05-31T09:30:00+08:00"),
    ],
)
def test_datetime_values(value: str, message: str | None) -> None:
    assert FIELD_TYPES["datetime"].check(value, {}) == message


def test_datetime_conversion_to_utc() -> None:
    datetime_type = FIELD_TYPES["datetime"]
    value = datetime_type.to_python("2024-05-31T09:30:00+08:00", {})
    assert value == dt.datetime(2024, 5, 31, 1, 30, tzinfo=dt.UTC)
    assert value.utcoffset() == dt.timedelta(0)
    assert datetime_type.to_json(value) == "2024-05-31T01:30:00Z"
    assert datetime_type.to_json(dt.datetime(2024, 5, 31, 1, 30, 0, 5000, tzinfo=dt.UTC)) == (
        "2024-05-31T01:30:00.005000Z"
    )


def test_select_and_multi_select() -> None:
    assert problem("select", "a", {"enum": ["a", "b"]}) is None
    assert problem("select", "c", {"enum": ["a", "b"]}) == "schema: enum"
    prop = {"items": {"enum": ["a", "b"]}, "maxItems": 1}
    assert problem("multi_select", ["a"], prop) is None
    assert problem("multi_select", ["a", "b"], prop) == "schema: maxItems"
    assert problem("multi_select", ["c"], {"items": {"enum": ["a"]}}) == "schema: enum"
    assert problem("multi_select", ["a", "a"], {"items": {"enum": ["a"]}}) == "schema: uniqueItems"


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("13800138000", True),
        ("19912345678", True),
        ("12800138000", False),
        ("1380013800", False),
        ("138001380000", False),
        ("+8613800138000", False),
        ("13800138000\n", False),  # JSON Schema's "$" must not let a newline through
        ("１３８００１３８０００", False),
    ],
)
def test_phone_values(value: str, ok: bool) -> None:
    assert (problem("phone", value) is None) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("wang@example.com", True),
        ("wang.wu+crm@Bank.Example.CN", True),
        ("wang@example", False),
        ("wang example@example.com", False),
        ("@example.com", False),
        ("a@b@example.com", False),
        ("wang@example.com\n", False),
        ("x" * 65 + "@example.com", False),
    ],
)
def test_email_values(value: str, ok: bool) -> None:
    assert (problem("email", value) is None) is ok


def test_email_domain_is_lower_cased() -> None:
    assert (
        FIELD_TYPES["email"].to_python("Wang.Wu@Bank.Example.CN", {}) == "Wang.Wu@bank.example.cn"
    )


def test_cn_id_number_values() -> None:
    valid = make_cn_id("110105", dt.date(1949, 12, 31), 2)
    assert problem("cn_id_number", valid) is None
    assert problem("cn_id_number", valid.lower()) is None
    assert FIELD_TYPES["cn_id_number"].to_python(valid.lower(), {}) == "11010519491231002X"
    assert problem("cn_id_number", "110105194912310021") == (
        "has a wrong check digit; please re-check the number"
    )
    assert problem("cn_id_number", "1101051949123100") == "schema: pattern"
    assert problem("cn_id_number", valid + "\n") == (
        "must be 18 characters: 17 digits and a final digit or X"
    )


def test_references_are_positive_64_bit_ids() -> None:
    for name in ("user", "department", "link"):
        assert problem(name, 1, {"x-link": "a"}) is None
        assert problem(name, 0, {"x-link": "a"}) == "schema: minimum"
        assert problem(name, INT64_MAX + 1, {"x-link": "a"}) == "schema: maximum"
        assert problem(name, "1", {"x-link": "a"}) == "schema: type"


def test_attachment() -> None:
    assert problem("attachment", "files/2024/a.pdf") is None
    assert problem("attachment", "") == "schema: minLength"


def test_subtable_fragment() -> None:
    assert FIELD_TYPES["subtable"].fragment({}) == {"type": "array", "maxItems": 1000}
    assert FIELD_TYPES["subtable"].fragment({"maxItems": 5, "minItems": 1}) == {
        "type": "array",
        "maxItems": 5,
        "minItems": 1,
    }


# --- computed ---------------------------------------------------------------


def test_computed_is_read_only_and_typed_by_its_result() -> None:
    computed = FIELD_TYPES["computed"]
    prop = {"x-expression": "a + b", "x-result-type": "integer"}
    assert computed.writable is False
    assert computed.fragment(prop) == {
        "type": "integer",
        "minimum": INT64_MIN,
        "maximum": INT64_MAX,
        "readOnly": True,
    }
    assert computed.openapi({"x-expression": "1", "x-result-type": "decimal"})["readOnly"] is True


def test_computed_serialises_like_its_result() -> None:
    computed = FIELD_TYPES["computed"]
    assert computed.to_json(Decimal("1.50")) == "1.50"
    assert computed.to_json(dt.date(2024, 5, 31)) == "2024-05-31"
    shanghai = dt.timezone(dt.timedelta(hours=8))
    # The same representation as a datetime field: UTC with "Z".
    assert computed.to_json(dt.datetime(2024, 5, 31, 9, 30, tzinfo=shanghai)) == (
        "2024-05-31T01:30:00Z"
    )
    assert computed.to_json(7) == 7
    assert computed.to_json(None) is None


NO_EXPRESSION = [("/x-expression", "a computed field needs an x-expression (1..2000 characters)")]
RESULT_TYPES = "text, integer, decimal, money, boolean, date, datetime"


@pytest.mark.parametrize(
    ("prop", "problems"),
    [
        ({"x-expression": "a"}, []),
        ({}, NO_EXPRESSION),
        ({"x-expression": "  "}, NO_EXPRESSION),
        ({"x-expression": "a" * 2001}, NO_EXPRESSION),
        (
            {"x-expression": "a", "x-result-type": "link"},
            [("/x-result-type", f"x-result-type must be one of {RESULT_TYPES}")],
        ),
        # The result type's own rules apply too.
        (
            {"x-expression": "a", "x-result-type": "decimal", "x-precision": 30},
            PRECISION,
        ),
        (
            {"x-expression": "a", "x-result-type": "text", "maxLength": 5000},
            MAXLEN,
        ),
    ],
)
def test_computed_definition_problems(
    prop: dict[str, Any], problems: list[tuple[str, str]]
) -> None:
    assert FIELD_TYPES["computed"].definition_problems(prop) == problems


# --- definition problems of the other types ---------------------------------


@pytest.mark.parametrize(
    ("type_name", "prop", "problems"),
    [
        ("text", {"maxLength": 4000}, []),
        ("text", {"maxLength": 4001}, MAXLEN),
        ("text", {"maxLength": 0}, MAXLEN),
        ("text", {"maxLength": "10"}, MAXLEN),
        ("decimal", {"x-precision": 18, "x-scale": 18}, []),
        ("decimal", {"x-precision": 19}, PRECISION),
        ("decimal", {"x-precision": 4, "x-scale": 5}, PRECISION),
        ("decimal", {"x-scale": -1}, PRECISION),
        ("select", {"enum": ["a", "b"]}, []),
        ("select", {}, [("/enum", NO_OPTIONS)]),
        ("select", {"enum": []}, [("/enum", NO_OPTIONS)]),
        ("select", {"enum": ["a", "a"]}, [("/enum", "options must be unique")]),
        (
            "select",
            {"enum": ["a", 1, ""]},
            [("/enum", "options must be strings of 1..64 characters: [1, '']")],
        ),
        (
            "select",
            {"enum": ["x" * 65]},
            [("/enum", f"options must be strings of 1..64 characters: ['{'x' * 65}']")],
        ),
        ("multi_select", {"items": {"enum": ["a"]}}, []),
        ("multi_select", {}, [("/items", "a multi_select field needs 'items': {'enum': [...]}")]),
        ("multi_select", {"items": {}}, [("/items/enum", NO_OPTIONS)]),
    ],
)
def test_definition_problems(
    type_name: str, prop: dict[str, Any], problems: list[tuple[str, str]]
) -> None:
    assert FIELD_TYPES[type_name].definition_problems(prop) == problems
