"""The bank CRM example app's form definitions (examples/bank_crm/forms)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine import system
from engine.catalog import load_schema
from engine.errors import ConflictError, DefinitionError, RecordValidationError
from engine.forms.checks import make_cn_id
from engine.forms.definition import Field, FormDefinition, parse_definition
from engine.publish.service import publish
from engine.records.service import Actor, RecordStore

FORMS_DIR = Path(__file__).resolve().parents[2] / "examples" / "bank_crm" / "forms"
FORM_FILES = sorted(FORMS_DIR.glob("*.json"))
EXPECTED_FORMS = {
    "customer",
    "holding",
    "interaction",
    "lead",
    "loan_application",
    "complaint",
    "campaign",
    "campaign_member",
    "product",
}
CJK = re.compile(r"[\u4e00-\u9fff]")


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return document


def load_app() -> dict[str, FormDefinition]:
    return {p.stem: parse_definition(load(p), source=str(p)) for p in FORM_FILES}


def missing_link_targets(forms: Mapping[str, FormDefinition]) -> dict[str, set[str]]:
    """For each form, the link targets that are not forms of the app."""
    missing = {key: d.link_targets() - set(forms) for key, d in forms.items()}
    return {key: targets for key, targets in missing.items() if targets}


def walk(fields: tuple[Field, ...]) -> Iterator[Field]:
    for f in fields:
        yield f
        yield from f.children


def link_order(forms: Mapping[str, FormDefinition]) -> list[str]:
    """Forms ordered so that each comes after the forms it links to."""
    done: list[str] = []
    pending = dict(forms)
    while pending:
        ready = [k for k, d in pending.items() if d.link_targets() <= set(done)]
        if not ready:
            raise AssertionError(f"links form a cycle among {sorted(pending)}")
        for key in sorted(ready):
            done.append(key)
            del pending[key]
    return done


@pytest.fixture(scope="module")
def app() -> dict[str, FormDefinition]:
    return load_app()


@pytest.fixture
def customer_doc() -> dict[str, Any]:
    return copy.deepcopy(load(FORMS_DIR / "customer.json"))


@pytest.fixture
def loan_doc() -> dict[str, Any]:
    return copy.deepcopy(load(FORMS_DIR / "loan_application.json"))


def pointers(exc: pytest.ExceptionInfo[DefinitionError]) -> list[str]:
    return [e.pointer for e in exc.value.errors]


# --- the app as shipped ----------------------------------------------------------------------


def test_the_app_has_the_forms_the_domain_asks_for() -> None:
    assert {p.stem for p in FORM_FILES} == EXPECTED_FORMS


@pytest.mark.parametrize("path", FORM_FILES, ids=lambda p: p.stem)
def test_form_file_parses_and_is_named_after_its_key(path: Path) -> None:
    definition = parse_definition(load(path), source=str(path))
    assert definition.key == path.stem
    assert definition.fields


@pytest.mark.parametrize("path", FORM_FILES, ids=lambda p: p.stem)
def test_document_envelope(path: Path) -> None:
    document = load(path)
    assert set(document) == {"key", "description", "schema", "ui_schema"}
    schema = document["schema"]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False


def test_every_link_target_is_a_form_of_the_app(app: dict[str, FormDefinition]) -> None:
    assert missing_link_targets(app) == {}


def test_links_between_forms_have_no_cycle(app: dict[str, FormDefinition]) -> None:
    order = link_order(app)
    assert order.index("customer") < order.index("holding")
    assert order.index("campaign") < order.index("campaign_member")


def test_the_customer_form_may_link_to_itself(app: dict[str, FormDefinition]) -> None:
    referred_by = app["customer"].field("referred_by")
    assert referred_by is not None and referred_by.link_target == "customer"
    assert "customer" not in app["customer"].link_targets()


@pytest.mark.parametrize("path", FORM_FILES, ids=lambda p: p.stem)
def test_labels_are_chinese_with_english_translations(path: Path) -> None:
    definition = parse_definition(load(path))
    schema = definition.document["schema"]
    assert CJK.search(schema["title"]), schema["title"]
    assert schema["x-labels"]["en"].isascii()
    for f in walk(definition.fields):
        assert CJK.search(f.prop.get("title", "")), f"{f.key} needs a Chinese title"
        english = f.prop.get("x-labels", {}).get("en", "")
        assert english and english.isascii(), f"{f.key} needs an English label"


@pytest.mark.parametrize("path", FORM_FILES, ids=lambda p: p.stem)
def test_every_option_has_a_chinese_label(path: Path) -> None:
    # The engine does not yet check x-enum-labels against the options; the app does.
    definition = parse_definition(load(path))
    for f in walk(definition.fields):
        if f.type.name not in ("select", "multi_select"):
            continue
        options = f.prop["enum"] if f.type.name == "select" else f.prop["items"]["enum"]
        labels = f.prop.get("x-enum-labels", {})
        assert set(labels) == set(options), f.key
        assert all(CJK.search(label) for label in labels.values()), f.key


@pytest.mark.parametrize("path", FORM_FILES, ids=lambda p: p.stem)
def test_ui_order_lists_every_field_once(path: Path) -> None:
    document = load(path)
    properties = document["schema"]["properties"]
    assert document["ui_schema"]["ui:order"] == list(properties)
    for key, prop in properties.items():
        if prop.get("x-type") == "subtable":
            items_ui = document["ui_schema"][key]["items"]
            assert items_ui["ui:order"] == list(prop["items"]["properties"])


def test_field_types_used_where_the_domain_needs_them(app: dict[str, FormDefinition]) -> None:
    def type_of(form: str, key: str) -> str:
        f = app[form].field(key)
        assert f is not None, f"{form}.{key}"
        return f.type.name

    assert type_of("customer", "id_number") == "cn_id_number"
    assert type_of("customer", "phone") == "phone"
    assert type_of("customer", "birthday") == "date"
    assert type_of("customer", "age") == "computed"
    assert type_of("customer", "branch") == "department"
    assert type_of("customer", "owner_rm") == "user"
    assert type_of("customer", "tags") == "multi_select"
    assert type_of("customer", "aum") == "money"
    assert type_of("product", "rate") == "decimal"
    assert type_of("interaction", "occurred_at") == "datetime"
    assert type_of("interaction", "summary") == "long_text"
    assert type_of("complaint", "sla_deadline") == "datetime"
    assert type_of("loan_application", "documents") == "subtable"

    customer = app["customer"]
    id_number = customer.field("id_number")
    assert id_number is not None and id_number.unique
    age = customer.field("age")
    assert age is not None and not age.writable
    assert age.column is not None and age.column.kind == "integer"
    rate = app["product"].field("rate")
    assert rate is not None and rate.column is not None
    assert (rate.column.precision, rate.column.scale) == (7, 4)
    risk = customer.field("risk_rating")
    assert risk is not None and risk.prop["enum"] == ["R1", "R2", "R3", "R4", "R5"]
    tier = customer.field("tier")
    assert tier is not None and tier.prop["enum"] == ["private", "high", "mid", "mass"]


def test_loan_documents_subtable(app: dict[str, FormDefinition]) -> None:
    loan = app["loan_application"]
    (documents,) = loan.subtables
    assert loan.child_table_name(documents) == "form_loan_application__documents"
    assert [c.key for c in documents.children] == [
        "kind",
        "received",
        "received_on",
        "file",
        "note",
    ]
    kinds = {c.key: c.type.name for c in documents.children}
    assert kinds == {
        "kind": "select",
        "received": "boolean",
        "received_on": "date",
        "file": "attachment",
        "note": "text",
    }
    assert [c.key for c in documents.children if c.required] == ["kind"]
    term = loan.field("term_months")
    assert term is not None and (term.prop["minimum"], term.prop["maximum"]) == (1, 360)


def publish_app(app: Mapping[str, FormDefinition]) -> sa.Engine:
    """A fresh SQLite database with the whole app published."""
    engine = sa.create_engine("sqlite://")
    system.metadata.create_all(engine)
    with engine.begin() as conn:
        # Publishing refuses a link to an unpublished form, so the app goes in link order.
        for key in link_order(app):
            assert publish(conn, app[key]).version == 1
    return engine


def add_branch(conn: sa.Connection) -> int:
    branch_id: int = conn.execute(
        sa.insert(system.department_table)
        .values(code="BJ-CY-001", name="朝阳支行")
        .returning(system.department_table.c.id)
    ).scalar_one()
    return branch_id


def test_the_app_publishes_into_real_tables(app: dict[str, FormDefinition]) -> None:
    engine = publish_app(app)
    with engine.connect() as conn:
        schema = load_schema(conn)
        inspector = sa.inspect(conn)
        names = set(inspector.get_table_names())
        unique = {
            ix["name"]: ix["column_names"]
            for ix in inspector.get_indexes("form_customer")
            if ix["unique"]
        }
    assert set(schema.forms) == set(app)
    assert {d.table_name for d in app.values()} <= names
    assert "form_loan_application__documents" in names
    assert set(schema.form("loan_application").children) == {"documents"}
    assert unique == {
        "uq_form_customer_customer_no": ["customer_no"],
        "uq_form_customer_id_number": ["id_number"],
        "uq_form_customer_credit_code": ["credit_code"],
    }


def test_realistic_records_round_trip(app: dict[str, FormDefinition]) -> None:
    engine = publish_app(app)
    id_number = make_cn_id("110105", dt.date(1985, 3, 14), 123)
    with engine.begin() as conn:
        branch = add_branch(conn)
        schema = load_schema(conn)

        def store(key: str) -> RecordStore:
            return RecordStore(conn, schema.form(key), actor=Actor(dept_id=branch))

        customer = store("customer").create(
            {
                "customer_no": "C20240001",
                "name": "张伟",
                "customer_type": "individual",
                "id_number": id_number.lower(),
                "phone": "13800138000",
                "birthday": "1985-03-14",
                "branch": branch,
                "risk_rating": "R3",
                "source_channel": "referral",
                "tags": ["payroll", "young"],
                "aum": 1250000,
            }
        )
        assert customer["id_number"] == id_number
        assert customer["aum"] == "1250000.00"
        assert customer["consent_marketing"] is False  # the default
        assert customer["status"] == "active"
        assert customer["age"] is None  # computed fields are not evaluated yet

        product = store("product").create(
            {
                "code": "LOAN-BIZ-01",
                "name": "经营快贷",
                "category": "loan",
                "risk_level": "R2",
                "rate": "3.85",
            }
        )
        assert product["rate"] == "3.8500"

        loan = store("loan_application").create(
            {
                "application_no": "LA-2024-0001",
                "customer": customer["id"],
                "product": product["id"],
                "amount": "500000",
                "term_months": 36,
                "purpose": "business",
                "status": "submitted",
                "applied_at": "2024-05-31T09:30:00+08:00",
                "documents": [
                    {"kind": "id_card", "received": True, "received_on": "2024-05-31"},
                    {"kind": "business_license"},
                ],
            }
        )
        assert loan["amount"] == "500000.00"
        assert loan["applied_at"] == "2024-05-31T01:30:00Z"
        assert [d["kind"] for d in loan["documents"]] == ["id_card", "business_license"]

        with pytest.raises(ConflictError) as conflict:
            store("customer").create(
                {
                    **{k: customer[k] for k in ("name", "customer_type", "branch")},
                    "source_channel": "import",
                    "id_number": id_number,
                }
            )
        assert [e.pointer for e in conflict.value.errors] == ["/id_number"]
        with pytest.raises(RecordValidationError) as invalid:
            store("loan_application").create(
                {
                    "application_no": "LA-2024-0002",
                    "customer": customer["id"],
                    "amount": "500",
                    "term_months": 480,
                    "purpose": "business",
                    "status": "draft",
                    "documents": [{"received": True}],
                }
            )
        assert [e.pointer for e in invalid.value.errors] == [
            "/amount",
            "/documents/0/kind",
            "/term_months",
        ]


def test_subtable_row_defaults_are_applied(app: dict[str, FormDefinition]) -> None:
    engine = publish_app(app)
    with engine.begin() as conn:
        branch = add_branch(conn)
        schema = load_schema(conn)
        actor = Actor()
        customer = RecordStore(conn, schema.form("customer"), actor=actor).create(
            {
                "name": "李娜",
                "customer_type": "individual",
                "branch": branch,
                "source_channel": "import",
            }
        )
        loan = RecordStore(conn, schema.form("loan_application"), actor=actor).create(
            {
                "application_no": "LA-2024-0003",
                "customer": customer["id"],
                "amount": "80000",
                "term_months": 12,
                "purpose": "consumption",
                "status": "draft",
                "documents": [{"kind": "income_proof"}],
            }
        )
    assert loan["documents"][0]["received"] is False


# --- parse_definition refuses broken copies of a real form -----------------------------------


def test_unknown_field_type_is_refused(customer_doc: dict[str, Any]) -> None:
    customer_doc["schema"]["properties"]["phone"]["x-type"] = "telephone"
    with pytest.raises(DefinitionError) as exc:
        parse_definition(customer_doc)
    assert pointers(exc) == ["/schema/properties/phone/x-type"]
    assert "unknown field type 'telephone'" in exc.value.errors[0].message


@pytest.mark.parametrize("key", ["Customer", "客户", "9customer", "user", "customer__x", "a" * 42])
def test_bad_form_key_is_refused(customer_doc: dict[str, Any], key: str) -> None:
    customer_doc["key"] = key
    with pytest.raises(DefinitionError) as exc:
        parse_definition(customer_doc)
    assert pointers(exc) == ["/key"]


@pytest.mark.parametrize("key", ["Phone", "order", "version", "deleted_at"])
def test_bad_field_key_is_refused(customer_doc: dict[str, Any], key: str) -> None:
    properties = customer_doc["schema"]["properties"]
    properties[key] = properties.pop("note")
    with pytest.raises(DefinitionError) as exc:
        parse_definition(customer_doc)
    assert pointers(exc) == [f"/schema/properties/{key}"]


def test_every_problem_is_reported_at_once(customer_doc: dict[str, Any]) -> None:
    properties = customer_doc["schema"]["properties"]
    properties["phone"]["x-type"] = "telephone"
    properties["risk_rating"]["enum"] = []
    properties["tags"]["x-index"] = True
    customer_doc["schema"]["required"].append("nickname")
    with pytest.raises(DefinitionError) as exc:
        parse_definition(customer_doc)
    assert sorted(pointers(exc)) == [
        "/schema/properties/phone/x-type",
        "/schema/properties/risk_rating/enum",
        "/schema/properties/tags/x-index",
        "/schema/required",
    ]


def test_keyword_not_allowed_for_the_type_is_refused(customer_doc: dict[str, Any]) -> None:
    customer_doc["schema"]["properties"]["aum"]["x-precision"] = 30
    with pytest.raises(DefinitionError) as exc:
        parse_definition(customer_doc)
    assert pointers(exc) == ["/schema/properties/aum/x-precision"]


def test_ref_is_refused(customer_doc: dict[str, Any]) -> None:
    customer_doc["schema"]["properties"]["address"] = {"$ref": "#/$defs/address"}
    with pytest.raises(DefinitionError) as exc:
        parse_definition(customer_doc)
    assert pointers(exc) == ["/schema/properties/address/$ref"]


def test_link_without_target_is_refused(customer_doc: dict[str, Any]) -> None:
    del customer_doc["schema"]["properties"]["referred_by"]["x-link"]
    with pytest.raises(DefinitionError) as exc:
        parse_definition(customer_doc)
    assert pointers(exc) == ["/schema/properties/referred_by/x-link"]


def test_dangling_link_is_found_by_the_app_check(loan_doc: dict[str, Any]) -> None:
    # A single definition cannot know the other forms: it parses, and the app
    # check (link targets vs the app's form keys) names the missing target.
    loan_doc["schema"]["properties"]["documents"]["items"]["properties"]["branch_office"] = {
        "title": "受理网点",
        "x-labels": {"en": "Branch office"},
        "x-type": "link",
        "x-link": "branch_office",
    }
    forms = load_app()
    forms["loan_application"] = parse_definition(loan_doc)
    assert forms["loan_application"].link_targets() == {
        "customer",
        "lead",
        "product",
        "branch_office",
    }
    assert missing_link_targets(forms) == {"loan_application": {"branch_office"}}
    del forms["lead"]
    assert missing_link_targets(forms) == {"loan_application": {"branch_office", "lead"}}


def test_nested_subtable_is_refused(loan_doc: dict[str, Any]) -> None:
    items = loan_doc["schema"]["properties"]["documents"]["items"]
    items["properties"]["pages"] = {
        "type": "array",
        "items": {"type": "object", "properties": {"page": {"type": "integer"}}},
    }
    with pytest.raises(DefinitionError) as exc:
        parse_definition(loan_doc)
    assert pointers(exc) == ["/schema/properties/documents/items/properties/pages"]


def test_unique_inside_subtable_is_refused(loan_doc: dict[str, Any]) -> None:
    loan_doc["schema"]["properties"]["documents"]["items"]["properties"]["kind"]["x-unique"] = True
    with pytest.raises(DefinitionError) as exc:
        parse_definition(loan_doc)
    assert pointers(exc) == ["/schema/properties/documents/items/properties/kind/x-unique"]


def test_invalid_default_is_refused(customer_doc: dict[str, Any]) -> None:
    customer_doc["schema"]["properties"]["status"]["default"] = "deleted"
    with pytest.raises(DefinitionError) as exc:
        parse_definition(customer_doc)
    assert pointers(exc) == ["/schema/properties/status/default"]


def test_computed_field_needs_an_expression(customer_doc: dict[str, Any]) -> None:
    del customer_doc["schema"]["properties"]["age"]["x-expression"]
    with pytest.raises(DefinitionError) as exc:
        parse_definition(customer_doc)
    assert pointers(exc) == ["/schema/properties/age/x-expression"]
