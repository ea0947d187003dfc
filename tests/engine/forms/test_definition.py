"""parse_definition: the meta-schema pass, the registry pass, JSON pointers."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from engine.errors import DefinitionError, ErrorDetail
from engine.forms.columns import ColumnSpec
from engine.forms.definition import FormDefinition, parse_definition


def form(
    properties: dict[str, Any],
    *,
    required: list[str] | None = None,
    key: str = "customer",
    **schema: Any,
) -> dict[str, Any]:
    return {
        "key": key,
        "schema": {
            "title": "客户",
            "properties": properties,
            **({"required": required} if required is not None else {}),
            **schema,
        },
    }


def problems_of(document: Any) -> list[tuple[str, str]]:
    with pytest.raises(DefinitionError) as caught:
        parse_definition(document)
    return [(e.pointer, e.message) for e in caught.value.errors]


LOAN = {
    "key": "loan",
    "description": "A loan application.",
    "schema": {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "title": "贷款申请",
        "x-labels": {"en": "Loan application"},
        "properties": {
            "customer": {"title": "客户", "x-type": "link", "x-link": "customer"},
            "referrer": {"x-type": "link", "x-link": "loan"},
            "amount": {"title": "金额", "x-type": "money", "x-currency": "CNY", "minimum": 0},
            "status": {"type": "string", "enum": ["new", "approved"], "default": "new"},
            "phone": {"x-type": "phone", "x-index": True},
            "code": {"type": "string", "maxLength": 20, "x-unique": True},
            "notes": {"x-type": "long_text", "readOnly": True},
            "score": {
                "x-type": "computed",
                "x-expression": "amount / 2",
                "x-result-type": "decimal",
            },
            "documents": {
                "title": "材料",
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "kind": {"type": "string", "enum": ["id", "income"]},
                        "owner": {"x-type": "link", "x-link": "person"},
                        "received": {"type": "boolean", "default": False},
                    },
                    "required": ["kind"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["customer", "amount"],
        "additionalProperties": False,
    },
    "ui_schema": {"ui:order": ["customer"]},
}


def test_a_full_definition_parses() -> None:
    definition = parse_definition(LOAN)
    assert isinstance(definition, FormDefinition)
    assert definition.key == "loan"
    assert definition.label == "贷款申请"
    assert definition.table_name == "form_loan"
    assert [f.key for f in definition.fields] == [
        "customer",
        "referrer",
        "amount",
        "status",
        "phone",
        "code",
        "notes",
        "score",
        "documents",
    ]
    by_key = {f.key: f for f in definition.fields}
    assert [k for k, f in by_key.items() if f.required] == ["customer", "amount"]
    assert by_key["amount"].type.name == "money"
    assert by_key["amount"].label == "金额"
    assert by_key["amount"].describe() == "金额 (amount)"
    assert by_key["phone"].describe() == "phone"
    assert by_key["status"].type.name == "select" and by_key["status"].has_default
    assert by_key["documents"].type.name == "subtable"
    assert [c.key for c in by_key["documents"].children] == ["kind", "owner", "received"]
    assert [c.required for c in by_key["documents"].children] == [True, False, False]
    # Indexes: x-index, x-unique (implies an index) and every link.
    assert {k for k, f in by_key.items() if f.indexed} == {"customer", "referrer", "phone", "code"}
    assert {k for k, f in by_key.items() if f.unique} == {"code"}
    assert by_key["customer"].link_target == "customer"
    assert by_key["amount"].link_target is None
    assert not by_key["notes"].writable and not by_key["score"].writable
    assert by_key["amount"].writable
    assert by_key["score"].column == ColumnSpec("numeric", precision=18, scale=2)
    assert [f.key for f in definition.subtables] == ["documents"]
    assert "documents" not in [f.key for f in definition.column_fields]
    assert definition.child_table_name(by_key["documents"]) == "form_loan__documents"
    # Other forms only (not the form itself), sub-tables included.
    assert definition.link_targets() == {"customer", "person"}
    assert definition.field("phone") is by_key["phone"]
    assert definition.field("nope") is None


def test_renamed_from() -> None:
    definition = parse_definition(form({"full_name": {"type": "string", "x-renamed-from": "name"}}))
    assert definition.fields[0].renamed_from == "name"


def test_not_an_object() -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_definition([], source="forms/x.json")
    assert caught.value.message == "A form definition must be a JSON object in forms/x.json."
    assert caught.value.errors == []


def test_meta_schema_problems_with_pointers() -> None:
    document = form({"name": {"type": "string", "title": 5, "x-index": "yes"}}, extra=1)
    document["colour"] = "red"
    with pytest.raises(DefinitionError) as caught:
        parse_definition(document, source="forms/customer.json")
    assert caught.value.message == (
        "The form definition in forms/customer.json does not match the format."
    )
    assert [(e.pointer, e.message) for e in caught.value.errors] == [
        ("", "Additional properties are not allowed ('colour' was unexpected)"),
        ("/schema", "Additional properties are not allowed ('extra' was unexpected)"),
        ("/schema/properties/name/title", "5 is not of type 'string'"),
        ("/schema/properties/name/x-index", "'yes' is not of type 'boolean'"),
    ]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            {"schema": {"properties": {"a": {"type": "string"}}}},
            [("", "'key' is a required property")],
        ),
        ({"key": "a"}, [("", "'schema' is a required property")]),
        (
            {"key": "a", "schema": {"properties": {}}},
            [("/schema/properties", "{} should be non-empty")],
        ),
        (
            {"key": "a", "schema": {"type": "array", "properties": {"b": {"type": "string"}}}},
            [("/schema/type", "'object' was expected")],
        ),
        (
            {
                "key": "a",
                "schema": {"additionalProperties": True, "properties": {"b": {"type": "string"}}},
            },
            [("/schema/additionalProperties", "False was expected")],
        ),
        (
            {"key": "a", "schema": {"allOf": [], "properties": {"b": {"type": "string"}}}},
            [("/schema", "Additional properties are not allowed ('allOf' was unexpected)")],
        ),
        (
            {"key": "a", "schema": {"properties": {"b": "text"}}},
            [("/schema/properties/b", "'text' is not of type 'object'")],
        ),
        (
            {"key": 7, "schema": {"properties": {"b": {"type": "string"}}}},
            [("/key", "7 is not of type 'string'")],
        ),
    ],
)
def test_structure_problems(document: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert problems_of(document) == expected


def test_sub_table_rows_are_checked_by_the_meta_schema_too() -> None:
    document = form(
        {
            "docs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "kind": {"type": "string", "title": 5, "x-index": "yes"},
                        "size": {"type": "integer", "minimum": "small"},
                        "bad": "text",
                    },
                    "required": "kind",
                },
            }
        }
    )
    assert problems_of(document) == [
        ("/schema/properties/docs/items/properties/bad", "'text' is not of type 'object'"),
        ("/schema/properties/docs/items/properties/kind/title", "5 is not of type 'string'"),
        ("/schema/properties/docs/items/properties/kind/x-index", "'yes' is not of type 'boolean'"),
        (
            "/schema/properties/docs/items/properties/size/minimum",
            "'small' is not of type 'number'",
        ),
        ("/schema/properties/docs/items/required", "'kind' is not of type 'array'"),
    ]


def test_key_problems() -> None:
    assert problems_of(form({"a": {"type": "string"}}, key="Customer")) == [
        (
            "/key",
            "key 'Customer' must start with a lower-case letter and contain only "
            "a-z, 0-9 and '_' (at most 41 characters)",
        ),
    ]
    assert problems_of(form({"a": {"type": "string"}}, key="order")) == [
        ("/key", "key 'order' is an SQL reserved word; choose another key"),
    ]
    assert problems_of(form({"id": {"type": "integer"}, "Name": {"type": "string"}})) == [
        ("/schema/properties/id", "key 'id' is a system column; choose another key"),
        (
            "/schema/properties/Name",
            "key 'Name' must start with a lower-case letter and "
            "contain only a-z, 0-9 and '_' (at most 41 characters)",
        ),
    ]


def test_pointers_escape_slash_and_tilde() -> None:
    problems = problems_of(form({"a/b~c": {"type": "string"}}))
    assert [p for p, _ in problems] == ["/schema/properties/a~1b~0c"]


def test_field_type_problems() -> None:
    assert problems_of(
        form(
            {
                "a": {"x-type": "telephone"},
                "b": {"title": "B"},
                "c": {"x-type": "select", "type": "integer", "enum": ["x"]},
                "d": {"x-type": "money", "x-precision": 10},
                "e": {"type": "string", "x-wat": 1},
                "f": {"type": "string", "maxLength": 5000},
                "g": {"type": "string", "pattern": "(unclosed"},
                "h": {"$ref": "#/$defs/x"},
                "i": {"type": ["string", "null"]},
            }
        )
    ) == [
        (
            "/schema/properties/a/x-type",
            "unknown field type 'telephone'; use one of: attachment, boolean, cn_id_number, "
            "computed, date, datetime, decimal, department, email, integer, link, long_text, "
            "money, multi_select, phone, select, subtable, text, user",
        ),
        (
            "/schema/properties/b/x-type",
            "no field type; use one of: attachment, boolean, cn_id_number, computed, date, "
            "datetime, decimal, department, email, integer, link, long_text, money, "
            "multi_select, phone, select, subtable, text, user",
        ),
        ("/schema/properties/c/type", "JSON type 'integer' does not fit a select field"),
        ("/schema/properties/d/x-precision", "'x-precision' is not allowed on a money field"),
        ("/schema/properties/e/x-wat", "'x-wat' is not allowed on a text field"),
        (
            "/schema/properties/f/maxLength",
            "maxLength of a text field must be 1..4000; use long_text",
        ),
        (
            "/schema/properties/g/pattern",
            "invalid regular expression: missing ), unterminated subpattern at position 0",
        ),
        ("/schema/properties/h/$ref", "$ref is not supported; define fields inline"),
        (
            "/schema/properties/i/x-type",
            "no field type; use one of: attachment, boolean, cn_id_number, computed, date, "
            "datetime, decimal, department, email, integer, link, long_text, money, "
            "multi_select, phone, select, subtable, text, user",
        ),
    ]


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_definition(
            form(
                {"a": {"x-type": "nope"}, "b": {"type": "string", "maxLength": 5000}},
                required=["a", "zzz"],
            ),
            source="customer.json",
        )
    assert caught.value.message == "Form 'customer' in customer.json has 3 problem(s)."
    assert [e.pointer for e in caught.value.errors] == [
        "/schema/required",
        "/schema/properties/a/x-type",
        "/schema/properties/b/maxLength",
    ]
    assert caught.value.errors[0] == ErrorDetail(
        "/schema/required", "required field 'zzz' is not defined"
    )
    assert str(caught.value).splitlines()[1] == (
        "  /schema/required: required field 'zzz' is not defined"
    )


def test_index_and_unique_rules() -> None:
    assert problems_of(
        form(
            {
                "a": {"x-type": "long_text", "x-unique": True},
                "b": {"x-type": "attachment", "x-index": True},
                "c": {"type": "array", "items": {"enum": ["x"]}, "x-index": True},
                "d": {
                    "type": "array",
                    "x-unique": True,
                    "items": {
                        "type": "object",
                        "properties": {"e": {"type": "string", "x-unique": True}},
                    },
                },
            }
        )
    ) == [
        ("/schema/properties/a/x-unique", "a long_text field cannot be unique"),
        ("/schema/properties/b/x-index", "a attachment field cannot be indexed"),
        ("/schema/properties/c/x-index", "a multi_select field cannot be indexed"),
        ("/schema/properties/d/x-unique", "a subtable field cannot be unique"),
        ("/schema/properties/d/items/properties/e/x-unique", "sub-table fields cannot be unique"),
    ]


def test_link_rules() -> None:
    assert problems_of(
        form(
            {
                "a": {"x-type": "link"},
                "b": {"x-type": "link", "x-link": "Customer"},
                "c": {"type": "string", "x-link": "customer"},
            }
        )
    ) == [
        ("/schema/properties/a/x-link", "a link field needs x-link: the target form key"),
        (
            "/schema/properties/b/x-link",
            "key 'Customer' must start with a lower-case letter and contain only a-z, 0-9 and '_' "
            "(at most 41 characters)",
        ),
        ("/schema/properties/c/x-link", "'x-link' is not allowed on a text field"),
    ]


def test_sub_table_rules() -> None:
    inner = {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "string"}}}}
    assert problems_of(
        form(
            {
                "a": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"nested": inner}},
                },
                "b": {"x-type": "subtable"},
                "c": {
                    "x-type": "subtable",
                    "items": {"properties": {"x": {"type": "string"}}, "minItems": 1},
                },
                "d": {
                    "x-type": "subtable",
                    "items": {"properties": {"x": {"x-type": "nope"}}, "required": ["y"]},
                },
            }
        )
    ) == [
        ("/schema/properties/a/items/properties/nested", "sub-tables cannot contain sub-tables"),
        ("/schema/properties/b/items", "a sub-table needs items.properties"),
        ("/schema/properties/c/items", "unsupported keywords: ['minItems']"),
        ("/schema/properties/d/items/required", "required field 'y' is not defined"),
        (
            "/schema/properties/d/items/properties/x/x-type",
            "unknown field type 'nope'; use one of: attachment, boolean, cn_id_number, computed, "
            "date, datetime, decimal, department, email, integer, link, long_text, money, "
            "multi_select, phone, select, subtable, text, user",
        ),
    ]


def test_child_table_name_must_fit() -> None:
    long_key = "k" * 41
    document = form(
        {
            "f" * 20: {
                "type": "array",
                "items": {"type": "object", "properties": {"x": {"type": "string"}}},
            }
        },
        key=long_key,
    )
    assert problems_of(document) == [
        ("/schema/properties/" + "f" * 20, "form key plus sub-table key is too long (63 max)"),
    ]
    # 5 + 41 + 2 + 15 = 63 characters fits exactly.
    document = form(
        {
            "f" * 15: {
                "type": "array",
                "items": {"type": "object", "properties": {"x": {"type": "string"}}},
            }
        },
        key=long_key,
    )
    assert parse_definition(document).subtables[0].key == "f" * 15


def test_rename_rules() -> None:
    assert problems_of(
        form(
            {
                "a": {"type": "string", "x-renamed-from": "b"},
                "b": {"type": "string"},
                "c": {"type": "string", "x-renamed-from": "old"},
                "d": {"type": "string", "x-renamed-from": "old"},
                "e": {"type": "string", "x-renamed-from": "e"},
            }
        )
    ) == [
        ("/schema/properties/a/x-renamed-from", "'b' is still defined or renamed twice"),
        ("/schema/properties/d/x-renamed-from", "'old' is still defined or renamed twice"),
        ("/schema/properties/e/x-renamed-from", "'e' is still defined or renamed twice"),
    ]


def test_defaults_are_validated() -> None:
    assert problems_of(
        form(
            {
                "a": {"type": "string", "enum": ["x", "y"], "default": "z"},
                "b": {"x-type": "money", "default": "1.234"},
                "c": {"x-type": "phone", "default": "12345"},
                "d": {"type": "string", "format": "date-time", "default": "2024-05-31T09:00:00"},
                "e": {
                    "type": "array",
                    "default": [],
                    "items": {"type": "object", "properties": {"x": {"type": "string"}}},
                },
                "f": {"x-type": "computed", "x-expression": "1", "default": "x"},
                "g": {"type": "integer", "default": 5},
                "h": {"x-type": "cn_id_number", "default": "110105194912310021"},
            }
        )
    ) == [
        ("/schema/properties/a/default", "default is invalid: 'z' is not one of ['x', 'y']"),
        ("/schema/properties/b/default", "default is invalid: must have at most 2 decimal places"),
        (
            "/schema/properties/c/default",
            "default is invalid: '12345' does not match '^1[3-9][0-9]{9}$'",
        ),
        (
            "/schema/properties/d/default",
            "default is invalid: must include a time zone offset, e.g. +08:00 or Z",
        ),
        ("/schema/properties/e/default", "a subtable field has no default"),
        ("/schema/properties/f/default", "a computed field has no default"),
        (
            "/schema/properties/h/default",
            "default is invalid: has a wrong check digit; please re-check the number",
        ),
    ]


def test_computed_result_rules_apply_at_their_pointer() -> None:
    assert problems_of(
        form(
            {
                "a": {
                    "x-type": "computed",
                    "x-expression": "1",
                    "x-result-type": "decimal",
                    "x-precision": 40,
                },
                "b": {"x-type": "computed", "x-expression": "1", "maxLength": 99999},
            }
        )
    ) == [
        (
            "/schema/properties/a/x-precision",
            "x-precision must be 1..18 and x-scale 0..x-precision",
        ),
        (
            "/schema/properties/b/maxLength",
            "maxLength of a text field must be 1..4000; use long_text",
        ),
    ]


def test_parsing_does_not_change_the_document() -> None:
    document = copy.deepcopy(LOAN)
    definition = parse_definition(document)
    assert document == LOAN
    assert definition.document == LOAN


def test_a_stored_definition_still_loads_after_a_word_becomes_reserved() -> None:
    """Word lists grow; a form published before must keep loading."""
    document = {"key": "order_log", "schema": {"properties": {"expand": {"type": "string"}}}}
    with pytest.raises(DefinitionError) as info:
        parse_definition(document)
    assert [e.pointer for e in info.value.errors] == ["/schema/properties/expand"]
    loaded = parse_definition(document, stored=True)
    assert [f.key for f in loaded.fields] == ["expand"]
    with pytest.raises(DefinitionError):
        parse_definition({**document, "key": "Order"}, stored=True)
