"""The ``formflow`` command line, against real databases."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from engine.apps import canonical_json
from engine.catalog import get_published, published_keys
from runtime.cli import cli
from runtime.demo import find_example_app
from runtime.settings import Settings

Run = Callable[..., Result]


def product(max_length: int = 20) -> dict[str, Any]:
    return {
        "key": "product",
        "schema": {
            "type": "object",
            "title": "产品",
            "properties": {
                "code": {"type": "string", "maxLength": max_length, "title": "产品代码"},
                "name": {"type": "string", "title": "名称"},
            },
        },
    }


def customer() -> dict[str, Any]:
    return {
        "key": "customer",
        "schema": {
            "type": "object",
            "title": "客户",
            "properties": {
                "name": {"type": "string", "title": "客户名称"},
                "referred_by": {"x-type": "link", "x-link": "customer"},
            },
        },
    }


def holding() -> dict[str, Any]:
    return {
        "key": "holding",
        "schema": {
            "type": "object",
            "title": "资产",
            "properties": {
                "customer": {"x-type": "link", "x-link": "customer"},
                "product": {"x-type": "link", "x-link": "product"},
            },
        },
    }


def write(path: Path, document: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(canonical_json(document), "utf-8")
    return path


def write_app(app_dir: Path, *documents: dict[str, Any]) -> Path:
    for doc in documents:
        write(app_dir / "forms" / f"{doc['key']}.json", doc)
    return app_dir


def make_runner(tmp_path: Path, database_url: str | None) -> Run:
    """Run ``formflow`` with a clean environment and, if given, a database URL."""
    runner = CliRunner()

    # Settings from the developer's shell must not leak into the tests.
    unset: dict[str, str | None] = {
        f"FORMFLOW_{name.upper()}": None for name in Settings.model_fields
    }

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        prefix = ["--database-url", database_url] if database_url else []
        environment = {**unset, "FORMFLOW_DATA_DIR": str(tmp_path / "data"), **(env or {})}
        return runner.invoke(cli, [*prefix, *args], env=environment, catch_exceptions=False)

    return run


@pytest.fixture
def run(tmp_path: Path, database_url: str) -> Run:
    return make_runner(tmp_path, database_url)


# --- db --------------------------------------------------------------------------


def test_db_upgrade_creates_then_is_up_to_date(tmp_path: Path, empty_database_url: str) -> None:
    run = make_runner(tmp_path, empty_database_url)
    not_yet = run("form", "list")
    assert not_yet.exit_code == 1
    assert "run `formflow db upgrade`" in not_yet.stderr
    first = run("db", "upgrade")
    assert first.exit_code == 0, first.output
    assert "Upgraded database" in first.stdout and "from empty" in first.stdout
    second = run("db", "upgrade")
    assert second.exit_code == 0
    assert "is up to date" in second.stdout
    assert run("form", "list").stdout == "No forms are published yet.\n"


# --- form ------------------------------------------------------------------------


def test_plan_publish_list_show(run: Run, tmp_path: Path, engine: sa.Engine) -> None:
    file = write(tmp_path / "product.json", product())

    plan = run("form", "plan", str(file))
    assert plan.exit_code == 0, plan.output
    assert plan.stdout.splitlines() == [
        "Plan for new form 'product' (version 1):",
        "  create table form_product",
    ]
    with engine.connect() as conn:
        assert published_keys(conn) == set()  # a plan changes nothing

    published = run("form", "publish", str(file))
    assert published.exit_code == 0, published.output
    assert published.stdout.startswith("Published form 'product' version 1:\n")
    again = run("form", "publish", str(file))
    assert "nothing was published" in again.stdout

    listing = run("form", "list")
    assert listing.stdout.splitlines() == [
        "KEY      VERSION  LABEL  TABLE",
        "product  1        产品   form_product",
    ]

    shown = run("form", "show", "product")
    assert shown.exit_code == 0
    assert shown.stdout == file.read_text("utf-8")

    wider = write(tmp_path / "product.json", product(max_length=40))
    assert "widen form_product.code" in run("form", "plan", str(wider)).stdout
    assert "version 2" in run("form", "publish", str(wider)).stdout
    assert json.loads(run("form", "show", "product", "--version", "1").stdout) == product()
    assert json.loads(run("form", "show", "product").stdout) == product(max_length=40)


def test_show_unknown_form_or_version(run: Run, tmp_path: Path) -> None:
    missing = run("form", "show", "nothing")
    assert missing.exit_code == 1
    assert "There is no published form 'nothing'" in missing.stderr
    run("form", "publish", str(write(tmp_path / "product.json", product())))
    no_version = run("form", "show", "product", "--version", "7")
    assert no_version.exit_code == 1
    assert "has no version 7" in no_version.stderr


def test_refused_publish_exits_1_names_the_field_and_changes_nothing(
    run: Run, tmp_path: Path, engine: sa.Engine
) -> None:
    assert run("form", "publish", str(write(tmp_path / "v1.json", product()))).exit_code == 0
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO form_product (created_at, updated_at, version, code) "
                "VALUES (:t, :t, 1, :code)"
            ),
            {"t": "2026-01-01 00:00:00", "code": "LONGER-THAN-5"},
        )
    narrowed = product(max_length=5)
    narrowed["schema"]["properties"]["extra"] = {"type": "string"}
    file = write(tmp_path / "v2.json", narrowed)

    for command in ("plan", "publish"):
        result = run("form", command, str(file))
        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr.startswith("Error: Publishing form 'product' was refused")
        assert "  /schema/properties/code: " in result.stderr
        assert "1 row(s)" in result.stderr
        assert "Traceback" not in result.output

    with engine.connect() as conn:
        current = get_published(conn, "product")
        assert current is not None and current.version == 1
        columns = {c["name"] for c in sa.inspect(conn).get_columns("form_product")}
        assert "extra" not in columns


def test_invalid_json_names_the_line(run: Run, tmp_path: Path) -> None:
    file = tmp_path / "broken.json"
    file.write_text('{\n  "key": "broken",\n  "schema": {\n    "properties": {}\n  \n', "utf-8")
    for command in ("plan", "publish"):
        result = run("form", command, str(file))
        assert result.exit_code == 1
        assert "invalid JSON at line 6" in result.stderr
        assert str(file) in result.stderr


def test_invalid_definition_lists_each_pointer(run: Run, tmp_path: Path) -> None:
    doc = product()
    doc["schema"]["properties"]["code"]["x-type"] = "nonsense"
    doc["schema"]["properties"]["Bad Key"] = {"type": "string"}
    result = run("form", "plan", str(write(tmp_path / "product.json", doc)))
    assert result.exit_code == 1
    assert "  /schema/properties/code/x-type: unknown field type 'nonsense'" in result.stderr
    assert "  /schema/properties/Bad Key: " in result.stderr


# --- app -------------------------------------------------------------------------


def test_app_import_export_round_trip(run: Run, tmp_path: Path, engine: sa.Engine) -> None:
    source = write_app(tmp_path / "source", holding(), product(), customer())

    dry = run("app", "import", "--dry-run", str(source))
    assert dry.exit_code == 0, dry.output
    assert "Dry run: 3 form(s): 3 would publish" in dry.stdout
    with engine.connect() as conn:
        assert published_keys(conn) == set()

    imported = run("app", "import", str(source))
    assert imported.exit_code == 0, imported.output
    lines = imported.stdout.splitlines()
    assert lines[:6] == [
        "customer  v1  published",
        "    create table form_customer",
        "product  v1  published",
        "    create table form_product",
        "holding  v1  published",
        "    create table form_holding",
    ]
    assert lines[-1] == "3 form(s): 3 published, 0 unchanged."
    assert run("app", "import", str(source)).stdout.splitlines()[-1] == (
        "3 form(s): 0 published, 3 unchanged."
    )

    target = tmp_path / "target"
    exported = run("app", "export", str(target))
    assert exported.exit_code == 0, exported.output
    assert exported.stdout.splitlines()[-1] == "3 form(s) exported: 3 written."
    for name in ("customer.json", "holding.json", "product.json"):
        assert (target / "forms" / name).read_bytes() == (source / "forms" / name).read_bytes()
    assert "0 written" in run("app", "export", str(target)).stdout


def test_app_import_cycle_is_an_error(run: Run, tmp_path: Path, engine: sa.Engine) -> None:
    looping = customer()
    looping["schema"]["properties"]["favourite"] = {"x-type": "link", "x-link": "product"}
    back = product()
    back["schema"]["properties"]["owner"] = {"x-type": "link", "x-link": "customer"}
    result = run("app", "import", str(write_app(tmp_path / "app", looping, back)))
    assert result.exit_code == 1
    assert "customer -> product -> customer" in result.stderr
    assert "forms/customer.json#/schema/properties/favourite/x-link" in result.stderr
    with engine.connect() as conn:
        assert published_keys(conn) == set()


def test_app_import_refusal_rolls_everything_back(
    run: Run, tmp_path: Path, engine: sa.Engine
) -> None:
    app = write_app(tmp_path / "app", product())
    assert run("app", "import", str(app)).exit_code == 0
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO form_product (created_at, updated_at, version, code) "
                "VALUES (:t, :t, 1, :code)"
            ),
            {"t": "2026-01-01 00:00:00", "code": "LONGER-THAN-THREE"},
        )
    write_app(app, product(max_length=3), customer())
    result = run("app", "import", str(app))
    assert result.exit_code == 1
    assert "forms/product.json#/schema/properties/code" in result.stderr
    with engine.connect() as conn:
        assert published_keys(conn) == {"product"}  # customer was rolled back too


def test_app_import_reports_bad_files_together(run: Run, tmp_path: Path) -> None:
    app = write_app(tmp_path / "app", product())
    (app / "forms" / "customer.json").write_text('{"key": "customer",\n  oops}', "utf-8")
    (app / "forms" / "lead.json").write_text(canonical_json(customer()), "utf-8")
    result = run("app", "import", str(app))
    assert result.exit_code == 1
    assert "forms/customer.json: invalid JSON at line 2, column 3" in result.stderr
    assert "forms/lead.json#/key: key 'customer' does not match the file name" in result.stderr


def test_import_the_bank_crm_example(run: Run, tmp_path: Path) -> None:
    app = find_example_app()
    assert app is not None, "examples/bank_crm ships with the repository"
    result = run("app", "import", str(app))
    assert result.exit_code == 0, result.output
    forms = sorted(p.stem for p in (app / "forms").glob("*.json"))
    assert result.stdout.splitlines()[-1] == (
        f"{len(forms)} form(s): {len(forms)} published, 0 unchanged."
    )
    listed = [line.split()[0] for line in run("form", "list").stdout.splitlines()[1:]]
    assert listed == forms
    # What we export is the canonical form of what the example holds.
    run("app", "export", str(tmp_path / "export"))
    for key in forms:
        original = json.loads((app / "forms" / f"{key}.json").read_text("utf-8"))
        exported = (tmp_path / "export" / "forms" / f"{key}.json").read_text("utf-8")
        assert exported == canonical_json(original)


# --- demo ------------------------------------------------------------------------


def test_demo_creates_the_sqlite_database_and_is_idempotent(tmp_path: Path) -> None:
    run = make_runner(tmp_path, None)  # the default: a SQLite file in the data dir
    app = write_app(tmp_path / "app", holding(), product(), customer())
    first = run("demo", "--no-serve", "--app", str(app))
    assert first.exit_code == 0, first.output
    database = tmp_path / "data" / "formflow.db"
    assert database.is_file()
    assert f"Created database sqlite:///{database}" in first.stdout
    assert "3 form(s), 3 published now, 0 unchanged." in first.stdout
    assert any(line.split()[:2] == ["holding", "1"] for line in first.stdout.splitlines())

    second = run("demo", "--no-serve", "--app", str(app))
    assert second.exit_code == 0, second.output
    assert "Reusing database" in second.stdout
    assert "3 form(s), 0 published now, 3 unchanged." in second.stdout


def test_demo_loads_the_bank_crm_example_by_default(tmp_path: Path) -> None:
    assert find_example_app() is not None, "examples/bank_crm ships with the repository"
    run = make_runner(tmp_path, None)
    result = run("demo", "--no-serve", "--customers", "0")
    assert result.exit_code == 0, result.output
    assert "Created database" in result.stdout
    assert "published now, 0 unchanged." in result.stdout
    assert "form_customer" in result.stdout
    assert ", 0 published now," in run("demo", "--no-serve", "--customers", "0").stdout


# --- settings --------------------------------------------------------------------


def test_production_without_a_secret_key_is_refused(tmp_path: Path) -> None:
    run = make_runner(tmp_path, None)
    result = run("form", "list", env={"FORMFLOW_ENVIRONMENT": "production"})
    assert result.exit_code == 1
    assert "FORMFLOW_SECRET_KEY must be set" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "data").exists()  # refused before touching anything


def test_database_url_option_overrides_the_environment(tmp_path: Path, database_url: str) -> None:
    run = make_runner(tmp_path, database_url)
    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    result = run("form", "list", env={"FORMFLOW_DATABASE_URL": elsewhere})
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "elsewhere.db").exists()


def test_help_needs_no_settings(tmp_path: Path) -> None:
    run = make_runner(tmp_path, None)
    result = run("app", "--help", env={"FORMFLOW_ENVIRONMENT": "production"})
    assert result.exit_code == 0
    assert "import" in result.stdout


def test_settings_can_be_passed_in(database_url: str) -> None:
    result = CliRunner().invoke(cli, ["form", "list"], obj=Settings(database_url=database_url))
    assert result.exit_code == 0, result.output
    assert result.stdout == "No forms are published yet.\n"
