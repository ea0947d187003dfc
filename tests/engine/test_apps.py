"""App folders: reading forms/*.json, dependency order, import and export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.apps import (
    canonical_json,
    export_app,
    import_app,
    load_app,
    publish_order,
    read_definition,
)
from engine.catalog import get_published, published_keys
from engine.errors import DefinitionError, PlanRefusedError
from engine.forms.definition import FormDefinition, parse_definition


def product() -> dict[str, Any]:
    return {
        "key": "product",
        "schema": {
            "type": "object",
            "title": "产品",
            "properties": {
                "code": {"type": "string", "maxLength": 20, "title": "产品代码"},
                "name": {"type": "string", "title": "名称"},
            },
            "required": ["code"],
        },
    }


def customer() -> dict[str, Any]:
    return {
        "key": "customer",
        "description": "客户主档",
        "schema": {
            "type": "object",
            "title": "客户",
            "properties": {
                "name": {"type": "string", "title": "客户名称", "maxLength": 100},
                "referred_by": {"x-type": "link", "x-link": "customer", "title": "推荐人"},
            },
        },
    }


def invoice() -> dict[str, Any]:
    """Sorts before its link targets, so only dependency order publishes it."""
    return {
        "key": "invoice",
        "schema": {
            "type": "object",
            "title": "发票",
            "properties": {
                "customer": {"x-type": "link", "x-link": "customer", "title": "客户"},
                "lines": {
                    "x-type": "subtable",
                    "type": "array",
                    "title": "明细",
                    "items": {
                        "type": "object",
                        "properties": {
                            "product": {"x-type": "link", "x-link": "product"},
                            "quantity": {"type": "integer", "minimum": 1},
                        },
                    },
                },
            },
        },
    }


def write_app(app_dir: Path, *documents: dict[str, Any], canonical: bool = True) -> Path:
    forms = app_dir / "forms"
    forms.mkdir(parents=True, exist_ok=True)
    for doc in documents:
        text = canonical_json(doc) if canonical else json.dumps(doc, ensure_ascii=False)
        (forms / f"{doc['key']}.json").write_text(text, "utf-8")
    return app_dir


def parsed(*documents: dict[str, Any]) -> list[FormDefinition]:
    return [parse_definition(d) for d in documents]


def pointers(error: DefinitionError | PlanRefusedError) -> list[str]:
    return [e.pointer for e in error.errors]


# --- canonical text ------------------------------------------------------------


def test_canonical_json_sorts_keys_but_keeps_field_order() -> None:
    doc = invoice()
    text = canonical_json(doc)
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert "发票" in text  # UTF-8, not \u escapes
    back = json.loads(text)
    assert list(back) == ["key", "schema"]
    assert list(back["schema"]) == ["properties", "title", "type"]
    # field order is the form's order (and column order), not alphabetical
    assert list(back["schema"]["properties"]) == ["customer", "lines"]
    lines = back["schema"]["properties"]["lines"]
    assert list(lines) == ["items", "title", "type", "x-type"]
    assert list(lines["items"]["properties"]) == ["product", "quantity"]
    assert list(lines["items"]["properties"]["quantity"]) == ["minimum", "type"]
    assert back == doc


def test_canonical_json_is_stable_and_keeps_array_order() -> None:
    doc = {"key": "k", "schema": {"required": ["b", "a"], "properties": {"z": {}, "a": {}}}}
    once = canonical_json(doc)
    assert canonical_json(json.loads(once)) == once
    assert json.loads(once)["schema"]["required"] == ["b", "a"]
    assert list(json.loads(once)["schema"]["properties"]) == ["z", "a"]


# --- reading -------------------------------------------------------------------


def test_load_app_reads_every_form_sorted_by_key(tmp_path: Path) -> None:
    write_app(tmp_path, product(), invoice(), customer(), canonical=False)
    (tmp_path / "forms" / "README.md").write_text("not a form", "utf-8")
    assert [d.key for d in load_app(tmp_path)] == ["customer", "invoice", "product"]


def test_load_app_reports_every_files_problems_together(tmp_path: Path) -> None:
    forms = write_app(tmp_path, product()) / "forms"
    (forms / "broken.json").write_text('{\n  "key": "broken",\n  "schema": {,\n}\n', "utf-8")
    bad_type = customer()
    bad_type["schema"]["properties"]["name"]["x-type"] = "no_such_type"
    (forms / "customer.json").write_text(canonical_json(bad_type), "utf-8")
    (forms / "other.json").write_text(canonical_json(invoice()), "utf-8")
    (forms / "twice.json").write_text('{"key": "twice", "key": "again"}', "utf-8")

    with pytest.raises(DefinitionError) as caught:
        load_app(tmp_path)
    error = caught.value
    by_pointer = {e.pointer: e.message for e in error.errors}
    assert "line 3, column 14" in by_pointer["forms/broken.json"]
    assert "forms/customer.json#/schema/properties/name/x-type" in by_pointer
    assert "does not match the file name" in by_pointer["forms/other.json#/key"]
    assert "'key' appears twice" in by_pointer["forms/twice.json"]
    assert "4 file(s)" in error.message
    # str() is what the CLI prints: every pointer on its own line
    assert "forms/broken.json: invalid JSON at line 3" in str(error)


def test_load_app_without_forms_folder(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="no forms/ folder"):
        load_app(tmp_path)
    (tmp_path / "forms").mkdir()
    with pytest.raises(DefinitionError, match="has no forms"):
        load_app(tmp_path)


def test_read_definition_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"key": "x",\n "schema": {"properties": {"a": {"type": "string"}}}\n', "utf-8")
    with pytest.raises(DefinitionError) as caught:
        read_definition(path)
    assert caught.value.errors[0].pointer == str(path)
    assert "line 3, column 1" in caught.value.errors[0].message


def test_read_definition_rejects_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "gbk.json"
    path.write_bytes('{"key": "客户"}'.encode("gbk"))
    with pytest.raises(DefinitionError) as caught:
        read_definition(path)
    assert "not UTF-8" in caught.value.errors[0].message


# --- order ---------------------------------------------------------------------


def test_publish_order_puts_link_targets_first() -> None:
    ordered = publish_order(parsed(invoice(), product(), customer()))
    keys = [d.key for d in ordered]
    assert keys.index("customer") < keys.index("invoice")
    assert keys.index("product") < keys.index("invoice")  # linked from a sub-table
    assert keys == ["customer", "product", "invoice"]  # ties by key: deterministic


def test_publish_order_allows_self_links_and_outside_targets() -> None:
    lead = {
        "key": "lead",
        "schema": {"properties": {"customer": {"x-type": "link", "x-link": "customer"}}},
    }
    # customer links to itself; lead links to a form outside the set
    assert [d.key for d in publish_order(parsed(lead, customer()))] == ["customer", "lead"]
    assert [d.key for d in publish_order(parsed(lead))] == ["lead"]


def link_form(key: str, *targets: str) -> dict[str, Any]:
    props: dict[str, Any] = {"name": {"type": "string"}}
    props.update({f"to_{t}": {"x-type": "link", "x-link": t} for t in targets})
    return {"key": key, "schema": {"properties": props}}


def test_publish_order_names_a_cycle() -> None:
    forms = parsed(
        link_form("alpha", "beta"),
        link_form("beta", "gamma"),
        link_form("gamma", "alpha"),
        link_form("delta", "alpha"),  # depends on the cycle, is not part of it
        link_form("solo"),
    )
    with pytest.raises(DefinitionError) as caught:
        publish_order(forms)
    assert "alpha -> beta -> gamma -> alpha" in caught.value.message
    assert pointers(caught.value) == [
        "forms/alpha.json#/schema/properties/to_beta/x-link",
        "forms/beta.json#/schema/properties/to_gamma/x-link",
        "forms/gamma.json#/schema/properties/to_alpha/x-link",
    ]


def test_publish_order_reports_every_cycle() -> None:
    forms = parsed(
        link_form("a", "b"), link_form("b", "a"), link_form("c", "d"), link_form("d", "c")
    )
    with pytest.raises(DefinitionError) as caught:
        publish_order(forms)
    assert "a -> b -> a" in caught.value.message
    assert "c -> d -> c" in caught.value.message


# --- import and export -----------------------------------------------------------


def test_import_app_publishes_in_dependency_order(tmp_path: Path, engine: sa.Engine) -> None:
    app = write_app(tmp_path / "app", invoice(), product(), customer())
    with engine.begin() as conn:
        results = import_app(conn, app, actor_id=None)
    assert [(r.form_key, r.version, r.changed) for r in results] == [
        ("customer", 1, True),
        ("product", 1, True),
        ("invoice", 1, True),
    ]
    invoice_steps = [s.describe() for s in results[2].plan.steps]
    assert invoice_steps == ["create table form_invoice", "create table form_invoice__lines"]
    with engine.begin() as conn:
        assert published_keys(conn) == {"customer", "invoice", "product"}
        again = import_app(conn, app)
    assert [(r.form_key, r.version, r.changed) for r in again] == [
        ("customer", 1, False),
        ("product", 1, False),
        ("invoice", 1, False),
    ]


def test_import_app_is_all_or_nothing(tmp_path: Path, engine: sa.Engine) -> None:
    app = write_app(tmp_path / "app", product(), customer())
    with engine.begin() as conn:
        import_app(conn, app)
        conn.execute(
            sa.text(
                "INSERT INTO form_product (created_at, updated_at, version, code) "
                "VALUES (:t, :t, 1, :code)"
            ),
            {"t": "2026-01-01 00:00:00", "code": "A-VERY-LONG-CODE"},
        )
    narrowed = product()
    narrowed["schema"]["properties"]["code"]["maxLength"] = 5
    renamed = customer()
    renamed["schema"]["title"] = "客户主档"
    write_app(app, narrowed, renamed, invoice())

    with pytest.raises(PlanRefusedError) as caught, engine.begin() as conn:
        import_app(conn, app)
    error = caught.value
    assert "forms/product.json#/schema/properties/code" in pointers(error)
    assert "forms/invoice.json" in pointers(error)  # not attempted: links to product
    assert "nothing was changed" in error.message
    with engine.connect() as conn:
        assert published_keys(conn) == {"customer", "product"}
        current = get_published(conn, "customer")
        assert current is not None and current.version == 1
        assert current.definition.label == "客户"
        assert not sa.inspect(conn).has_table("form_invoice")


def test_export_round_trips_a_canonical_app(tmp_path: Path, engine: sa.Engine) -> None:
    source = write_app(tmp_path / "source", invoice(), product(), customer())
    with engine.begin() as conn:
        import_app(conn, source)
    target = tmp_path / "target"
    with engine.connect() as conn:
        result = export_app(conn, target)
    assert [(f.key, f.version, f.changed) for f in result.files] == [
        ("customer", 1, True),
        ("invoice", 1, True),
        ("product", 1, True),
    ]
    assert result.unknown == []
    for name in ("customer.json", "invoice.json", "product.json"):
        assert (target / "forms" / name).read_bytes() == (source / "forms" / name).read_bytes()
    with engine.connect() as conn:
        again = export_app(conn, target)
    assert not any(f.changed for f in again.files)


def test_export_writes_canonical_text_and_leaves_other_files(
    tmp_path: Path, engine: sa.Engine
) -> None:
    source = write_app(tmp_path / "source", customer(), canonical=False)
    stray = write_app(tmp_path / "target", product()) / "forms" / "product.json"
    with engine.begin() as conn:
        import_app(conn, source)
        result = export_app(conn, tmp_path / "target")
    exported = (tmp_path / "target" / "forms" / "customer.json").read_text("utf-8")
    assert exported == canonical_json(customer())
    assert result.unknown == [stray]
    assert stray.exists()
