"""make_plan: the pure diff of a new form version against the live layout."""

from __future__ import annotations

from typing import Any

import pytest

from engine.errors import ErrorDetail, PlanRefusedError
from engine.forms.columns import ColumnSpec
from engine.forms.definition import FormDefinition, parse_definition
from engine.publish.layout import Layout, TableLayout, desired_layout
from engine.publish.plan import Plan, Step, make_plan

PUBLISHED = {"customer", "branch"}


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


class History:
    """A form's published versions, kept as the service would keep them."""

    def __init__(self, first: dict[str, Any]) -> None:
        self.current: FormDefinition = parse_definition(first)
        plan = make_plan(self.current, current=None, live=None, published_forms=PUBLISHED)
        assert plan.refusals == []
        self.live: Layout = plan.layout

    def plan(self, document: dict[str, Any]) -> Plan:
        return make_plan(
            parse_definition(document),
            current=self.current,
            live=self.live,
            published_forms=PUBLISHED,
        )

    def publish(self, document: dict[str, Any]) -> Plan:
        plan = self.plan(document)
        assert plan.refusals == []
        self.current, self.live = plan.definition, plan.layout
        return plan


def kinds(plan: Plan) -> list[tuple[str, str, str | None]]:
    return [(s.kind, s.table, s.column) for s in plan.steps]


NAME = {"type": "string", "title": "姓名", "maxLength": 50}
PHONE = {"x-type": "phone"}
BASE = doc({"name": NAME, "phone": PHONE})


def test_new_form_creates_its_tables() -> None:
    definition = parse_definition(
        doc(
            {
                "name": NAME,
                "code": {"type": "string", "x-unique": True},
                "branch": {"x-type": "link", "x-link": "branch"},
                "docs": sub({"kind": {"type": "string"}}),
            },
            key="lead",
        )
    )
    plan = make_plan(definition, current=None, live=None, published_forms=PUBLISHED)
    assert plan.new_form
    assert kinds(plan) == [
        ("create_table", "form_lead", None),
        ("create_table", "form_lead__docs", None),
    ]
    assert plan.describe() == ["create table form_lead", "create table form_lead__docs"]
    assert plan.changes_schema
    assert plan.layout.as_dict() == {
        "main": {
            "table": "form_lead",
            "columns": {
                "branch": {"kind": "fk", "references": "form_branch.id"},
                "code": {"kind": "string", "length": 255},
                "name": {"kind": "string", "length": 50},
            },
            "retired": [],
            "indexes": {"branch": "index", "code": "unique"},
        },
        "children": {
            "docs": {
                "table": "form_lead__docs",
                "columns": {"kind": {"kind": "string", "length": 255}},
                "retired": [],
                "indexes": {},
            },
        },
        "retired_children": [],
    }
    assert Layout.from_dict(plan.layout.as_dict()).as_dict() == plan.layout.as_dict()


def test_labels_only_change_nothing() -> None:
    history = History(BASE)
    plan = history.plan(
        doc(
            {
                "name": {**NAME, "title": "全名", "description": "x"},
                "phone": {**PHONE, "x-labels": {"en": "Phone"}},
            }
        )
    )
    assert plan.steps == [] and plan.refusals == []
    assert not plan.changes_schema
    assert plan.describe() == ["no table changes (labels, options or validation only)"]
    assert plan.layout.as_dict() == history.live.as_dict()


def test_add_column_and_index() -> None:
    plan = History(BASE).plan(
        doc(
            {
                "name": NAME,
                "phone": PHONE,
                "email": {"x-type": "email", "x-index": True},
            }
        )
    )
    assert plan.steps == [
        Step(
            "add_column",
            "form_customer",
            "email",
            "/schema/properties/email",
            "email",
            spec=ColumnSpec("string", length=254),
        ),
        Step("add_index", "form_customer", "email", "/schema/properties/email", "email"),
    ]
    assert plan.describe() == [
        "add column form_customer.email text(254) [email]",
        "add index on form_customer.email [email]",
    ]
    assert plan.as_dict() == {
        "form": "customer",
        "steps": [
            {
                "kind": "add_column",
                "table": "form_customer",
                "column": "email",
                "pointer": "/schema/properties/email",
                "description": "add column form_customer.email text(254) [email]",
            },
            {
                "kind": "add_index",
                "table": "form_customer",
                "column": "email",
                "pointer": "/schema/properties/email",
                "description": "add index on form_customer.email [email]",
            },
        ],
    }


def test_index_changes() -> None:
    history = History(BASE)
    plan = history.publish(doc({"name": {**NAME, "x-index": True}, "phone": PHONE}))
    assert kinds(plan) == [("add_index", "form_customer", "name")]
    assert plan.describe() == ["add index on form_customer.name [姓名]"]
    plan = history.publish(doc({"name": {**NAME, "x-unique": True}, "phone": PHONE}))
    assert [(s.kind, s.column, s.unique) for s in plan.steps] == [
        ("drop_index", "name", False),
        ("add_index", "name", True),
    ]
    assert plan.describe() == [
        "drop index on form_customer.name [姓名]",
        "add unique index on form_customer.name [姓名]",
    ]
    plan = history.publish(BASE)
    assert [(s.kind, s.column, s.unique) for s in plan.steps] == [("drop_index", "name", True)]
    assert history.live.main.indexes == {}


def test_widen_and_narrow() -> None:
    history = History(doc({"name": NAME, "amount": {"type": "number", "x-precision": 10}}))
    plan = history.plan(
        doc({"name": {**NAME, "maxLength": 80}, "amount": {"type": "number", "x-precision": 12}})
    )
    assert [(s.kind, s.column, s.old_spec, s.spec) for s in plan.steps] == [
        ("widen_column", "name", ColumnSpec("string", length=50), ColumnSpec("string", length=80)),
        (
            "widen_column",
            "amount",
            ColumnSpec("numeric", precision=10, scale=2),
            ColumnSpec("numeric", precision=12, scale=2),
        ),
    ]
    assert plan.describe() == [
        "widen form_customer.name from text(50) to text(80) [姓名]",
        "widen form_customer.amount from decimal(10,2) to decimal(12,2) [amount]",
    ]
    plan = history.plan(
        doc({"name": {**NAME, "maxLength": 10}, "amount": {"type": "number", "x-precision": 8}})
    )
    assert [s.kind for s in plan.steps] == ["narrow_column", "narrow_column"]
    assert plan.describe()[0] == "narrow form_customer.name from text(50) to text(10) [姓名]"
    # text -> long_text widens; long_text -> text narrows.
    plan = history.publish(
        doc(
            {
                "name": {**NAME, "x-type": "long_text"},
                "amount": {"type": "number", "x-precision": 10},
            }
        )
    )
    assert [(s.kind, s.spec) for s in plan.steps] == [("widen_column", ColumnSpec("text"))]
    plan = history.plan(doc({"name": NAME, "amount": {"type": "number", "x-precision": 10}}))
    assert [(s.kind, s.spec) for s in plan.steps] == [
        ("narrow_column", ColumnSpec("string", length=50)),
    ]


def test_incompatible_change_is_refused_at_its_pointer() -> None:
    plan = History(BASE).plan(doc({"name": {"type": "integer", "title": "姓名"}, "phone": PHONE}))
    assert plan.steps == []
    assert plan.refusals == [
        ErrorDetail(
            "/schema/properties/name",
            "姓名 (name) cannot change from text(50) to integer; "
            "add a new field and retire this one instead",
        )
    ]
    with pytest.raises(PlanRefusedError) as caught:
        plan.refuse_if_needed()
    assert caught.value.message == "Publishing form 'customer' was refused; nothing was changed."
    assert caught.value.errors == plan.refusals


def test_scale_change_is_refused() -> None:
    history = History(doc({"rate": {"type": "number", "x-scale": 2}}))
    assert history.plan(doc({"rate": {"type": "number", "x-scale": 4}})).refusals == [
        ErrorDetail(
            "/schema/properties/rate",
            "rate cannot change from decimal(18,2) to "
            "decimal(18,4); add a new field and retire this one instead",
        ),
    ]


def test_rename() -> None:
    history = History(doc({"name": {**NAME, "x-index": True}, "phone": PHONE}))
    plan = history.publish(
        doc(
            {
                "full_name": {**NAME, "maxLength": 60, "x-index": True, "x-renamed-from": "name"},
                "phone": PHONE,
            }
        )
    )
    assert [(s.kind, s.column, s.old_column) for s in plan.steps] == [
        ("rename_column", "full_name", "name"),
        ("widen_column", "full_name", None),
        ("drop_index", "name", None),
        ("add_index", "full_name", None),
    ]
    assert plan.describe()[0] == "rename column form_customer.name to full_name [姓名]"
    assert history.live.main.columns == {
        "full_name": ColumnSpec("string", length=60),
        "phone": ColumnSpec("string", length=20),
    }
    assert history.live.main.retired == set()
    assert history.live.main.indexes == {"full_name": "index"}
    # The marker is harmless once the rename is done.
    again = history.plan(
        doc(
            {
                "full_name": {**NAME, "maxLength": 60, "x-index": True, "x-renamed-from": "name"},
                "phone": PHONE,
            }
        )
    )
    assert again.steps == [] and again.refusals == []


def test_rename_from_a_missing_field_is_refused() -> None:
    plan = History(BASE).plan(doc({"name": NAME, "mobile": {**PHONE, "x-renamed-from": "tel"}}))
    assert plan.refusals == [
        ErrorDetail(
            "/schema/properties/mobile/x-renamed-from",
            "there is no field 'tel' to rename",
        )
    ]


def test_retire_and_restore() -> None:
    history = History(doc({"name": NAME, "phone": {**PHONE, "x-index": True}}))
    plan = history.publish(doc({"name": NAME}))
    assert plan.steps == [Step("retire_column", "form_customer", "phone", label="phone")]
    assert plan.describe() == ["retire field form_customer.phone [phone] (hidden; data kept)"]
    assert not plan.changes_schema
    # The column, its spec and its index stay in the layout.
    assert history.live.main.columns["phone"] == ColumnSpec("string", length=20)
    assert history.live.main.retired == {"phone"}
    assert history.live.main.indexes == {"phone": "index"}
    assert history.live.main.active() == {"name": ColumnSpec("string", length=50)}
    # Still retired on the next version: no second retire step.
    assert history.publish(doc({"name": {**NAME, "title": "名字"}})).steps == []
    plan = history.publish(doc({"name": NAME, "phone": {**PHONE, "x-index": True}}))
    assert plan.steps == [
        Step("restore_column", "form_customer", "phone", "/schema/properties/phone", "phone")
    ]
    assert plan.describe() == ["restore retired column form_customer.phone [phone]"]
    assert history.live.main.retired == set()


def test_restoring_with_another_type_is_refused() -> None:
    history = History(BASE)
    history.publish(doc({"name": NAME}))
    plan = history.plan(doc({"name": NAME, "phone": {"type": "integer"}}))
    assert plan.refusals == [
        ErrorDetail(
            "/schema/properties/phone",
            "phone cannot change from text(20) to integer; add a new field and retire this one "
            "instead",
        )
    ]


def test_required() -> None:
    history = History(BASE)
    plan = history.publish(doc({"name": NAME, "phone": PHONE}, required=["name"]))
    assert plan.steps == [
        Step("require", "form_customer", "name", "/schema/properties/name", "姓名")
    ]
    assert plan.describe() == ["make form_customer.name [姓名] required"]
    # Already required: nothing to check again.
    assert history.plan(doc({"name": NAME, "phone": PHONE}, required=["name"])).steps == []
    # With a default, empty rows are filled first.
    plan = history.plan(
        doc(
            {"name": NAME, "phone": {**PHONE, "default": "13800138000"}}, required=["name", "phone"]
        )
    )
    assert [(s.kind, s.column, s.value) for s in plan.steps] == [
        ("backfill", "phone", "13800138000"),
        ("require", "phone", None),
    ]
    assert plan.describe()[0] == "fill form_customer.phone [phone] with '13800138000' where empty"


def test_new_required_field() -> None:
    history = History(BASE)
    plan = history.plan(
        doc({"name": NAME, "phone": PHONE, "tier": {"type": "integer"}}, required=["tier"])
    )
    assert kinds(plan) == [
        ("add_column", "form_customer", "tier"),
        ("require", "form_customer", "tier"),
    ]
    plan = history.plan(
        doc(
            {"name": NAME, "phone": PHONE, "tier": {"type": "integer", "default": 3}},
            required=["tier"],
        )
    )
    assert [(s.kind, s.value) for s in plan.steps] == [("add_column", None), ("backfill", 3)]


def test_restored_field_that_is_required_is_checked_again() -> None:
    history = History(doc({"name": NAME, "phone": PHONE}, required=["phone"]))
    history.publish(doc({"name": NAME}))
    plan = history.plan(doc({"name": NAME, "phone": PHONE}, required=["phone"]))
    assert kinds(plan) == [
        ("restore_column", "form_customer", "phone"),
        ("require", "form_customer", "phone"),
    ]


def test_removed_select_options() -> None:
    history = History(doc({"status": {"type": "string", "enum": ["new", "open", "closed"]}}))
    plan = history.plan(doc({"status": {"type": "string", "enum": ["open", "done"]}}))
    assert plan.steps == [
        Step(
            "remove_options",
            "form_customer",
            "status",
            "/schema/properties/status",
            "status",
            spec=ColumnSpec("string", length=64),
            options=("new", "closed"),
        )
    ]
    assert plan.describe() == [
        "remove options ['new', 'closed'] from form_customer.status [status]",
    ]
    assert not plan.changes_schema
    # Adding options changes nothing.
    added = history.plan(
        doc({"status": {"type": "string", "enum": ["new", "open", "closed", "x"]}})
    )
    assert added.steps == []


def test_links() -> None:
    history = History(BASE)
    plan = history.plan(
        doc(
            {
                "name": NAME,
                "phone": PHONE,
                "branch": {"x-type": "link", "x-link": "branch"},
                "referrer": {"x-type": "link", "x-link": "customer"},
            }
        )
    )
    assert plan.refusals == []
    assert [(s.kind, s.column) for s in plan.steps] == [
        ("add_column", "branch"),
        ("add_index", "branch"),
        ("add_column", "referrer"),
        ("add_index", "referrer"),
    ]
    assert plan.describe()[0] == "add column form_customer.branch link(form_branch.id) [branch]"
    plan = history.plan(
        doc(
            {
                "name": NAME,
                "phone": PHONE,
                "agent": {"x-type": "link", "x-link": "agent", "title": "经办"},
                "docs": sub({"owner": {"x-type": "link", "x-link": "person"}}),
            }
        )
    )
    assert plan.refusals == [
        ErrorDetail(
            "/schema/properties/agent/x-link",
            "经办 (agent) links to form 'agent', which is not published",
        ),
        ErrorDetail(
            "/schema/properties/docs/items/properties/owner/x-link",
            "owner links to form 'person', which is not published",
        ),
    ]


def test_retargeting_a_link_is_refused() -> None:
    history = History(doc({"branch": {"x-type": "link", "x-link": "branch"}}))
    assert history.plan(doc({"branch": {"x-type": "link", "x-link": "customer"}})).refusals == [
        ErrorDetail(
            "/schema/properties/branch",
            "branch cannot change from link(form_branch.id) to link(form_customer.id); "
            "add a new field and retire this one instead",
        ),
    ]


def test_sub_tables() -> None:
    history = History(BASE)
    plan = history.publish(
        doc(
            {
                "name": NAME,
                "phone": PHONE,
                "docs": {**sub({"kind": {"type": "string"}}), "title": "材料"},
            }
        )
    )
    assert plan.steps == [Step("create_table", "form_customer__docs", label="材料")]
    plan = history.publish(
        doc(
            {
                "name": NAME,
                "phone": PHONE,
                "docs": sub(
                    {"kind": {"type": "string"}, "size": {"type": "integer", "x-index": True}},
                    required=["kind"],
                ),
            }
        )
    )
    assert [(s.kind, s.table, s.column, s.pointer) for s in plan.steps] == [
        ("require", "form_customer__docs", "kind", "/schema/properties/docs/items/properties/kind"),
        (
            "add_column",
            "form_customer__docs",
            "size",
            "/schema/properties/docs/items/properties/size",
        ),
        (
            "add_index",
            "form_customer__docs",
            "size",
            "/schema/properties/docs/items/properties/size",
        ),
    ]
    plan = history.publish(BASE)
    assert plan.steps == [Step("retire_table", "form_customer__docs")]
    assert plan.describe() == ["retire sub-table form_customer__docs (hidden; data kept)"]
    assert history.live.retired_children == {"docs"}
    assert history.live.children["docs"].table == "form_customer__docs"
    assert history.publish(doc({"name": {**NAME, "title": "x"}, "phone": PHONE})).steps == []
    plan = history.publish(
        doc({"name": NAME, "phone": PHONE, "docs": sub({"kind": {"type": "string"}})})
    )
    assert kinds(plan) == [
        ("restore_table", "form_customer__docs", None),
        ("retire_column", "form_customer__docs", "size"),
    ]
    assert plan.describe()[0] == "restore retired sub-table form_customer__docs"
    assert history.live.retired_children == set()
    assert history.live.children["docs"].retired == {"size"}


def test_a_field_that_becomes_a_sub_table_retires_its_column() -> None:
    history = History(doc({"name": NAME, "docs": {"type": "string"}}))
    plan = history.plan(doc({"name": NAME, "docs": sub({"kind": {"type": "string"}})}))
    assert kinds(plan) == [
        ("retire_column", "form_customer", "docs"),
        ("create_table", "form_customer__docs", None),
    ]


def test_desired_layout_matches_a_new_form() -> None:
    definition = parse_definition(doc({"name": NAME, "docs": sub({"k": {"type": "string"}})}))
    layout = desired_layout(definition)
    assert layout.main == TableLayout("form_customer", {"name": ColumnSpec("string", length=50)})
    assert layout.children["docs"].columns == {"k": ColumnSpec("string", length=255)}


def test_renaming_onto_a_retired_field_is_refused() -> None:
    history = History(doc({"name": NAME, "alias": {"type": "string"}}))
    history.publish(doc({"name": NAME}))
    plan = history.plan(doc({"alias": {**NAME, "x-renamed-from": "name"}}))
    assert plan.refusals == [
        ErrorDetail(
            "/schema/properties/alias/x-renamed-from",
            "cannot rename 'name' to 'alias': a retired field 'alias' still holds its data; "
            "choose another key",
        )
    ]
