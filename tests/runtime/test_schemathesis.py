"""Schemathesis against the demo app's own OpenAPI document.

The demo database (the bank CRM with a small sample) is built once for this
module; Schemathesis loads ``/openapi.json`` from the ASGI app and calls
every operation with generated requests, valid and invalid, authenticated
as the demo administrator.

Checked: no 5xx, every status returned is one the document lists for the
operation, and every response matches the schema given for it.

Bounded to stay fast: Hypothesis's generate phase only, a few examples per
operation. Schemathesis's coverage phase (boundary values of every
parameter) takes minutes over the list endpoints' hundreds of filter
parameters; run it by hand against ``formflow demo`` with the CLI::

    st run http://127.0.0.1:8000/openapi.json -H "Authorization: Bearer $KEY"
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import (
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from engine.db import create_engine
from runtime.auth.service import create_api_key, find_user_id
from runtime.demo import find_example_app, prepare_demo
from runtime.settings import Settings
from runtime.web.app import create_app

URL_VARIABLE = "FORMFLOW_TEST_DATABASE_URL"
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]
# Every login attempt verifies an argon2 hash (most of a second), so the
# login operation gets few examples of its own.
LOGIN = "/api/v1/auth/login"
# Derandomized: CI sees the same examples every run, so it cannot turn red
# by chance; a wider, random search is the CLI run in the module docstring.
FUZZ = settings(
    max_examples=15,
    derandomize=True,
    phases=[Phase.generate],
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)


@pytest.fixture(scope="module")
def demo_database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of this module's own: it outlives a test, unlike ``database_url``."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('schemathesis') / 'demo.db'}"
        return
    base = sa.make_url(os.environ[URL_VARIABLE])
    name = f"{base.database}_st_{os.getpid()}_{secrets.token_hex(3)}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = :name AND usename = current_user"
                    " AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        admin.dispose()


@pytest.fixture(scope="module")
def demo_engine(demo_database_url: str) -> Iterator[sa.Engine]:
    app_dir = find_example_app()
    assert app_dir is not None, "examples/bank_crm ships with the repository"
    engine = create_engine(demo_database_url)
    with engine.begin() as conn:
        prepare_demo(conn, app_dir, customers=20, today=dt.date(2025, 3, 12))
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def demo_app(demo_engine: sa.Engine, demo_database_url: str) -> FastAPI:
    return create_app(Settings(database_url=demo_database_url), engine=demo_engine)


@pytest.fixture(scope="module")
def demo_schema(demo_app: FastAPI) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", demo_app)


def admin_headers(engine: sa.Engine) -> dict[str, str]:
    """A new API key per request: a generated DELETE /api-keys/{id} may revoke an old one."""
    with engine.begin() as conn:
        _, key = create_api_key(
            conn,
            user_id=find_user_id(conn, "admin"),
            name="schemathesis",
            created_by=None,
            now=dt.datetime.now(dt.UTC),
        )
    return {"Authorization": f"Bearer {key}"}


schema = schemathesis.pytest.from_fixture("demo_schema")


@schema.exclude(path=LOGIN).parametrize()
@FUZZ
def test_api_conforms_to_its_openapi_document(case: Any, demo_engine: sa.Engine) -> None:
    case.call_and_validate(headers=admin_headers(demo_engine), checks=CHECKS)


@schema.include(path=LOGIN).parametrize()
@settings(FUZZ, max_examples=3)
def test_login_conforms_to_its_openapi_document(case: Any) -> None:
    case.call_and_validate(checks=CHECKS)


def test_integers_beyond_64_bits_are_client_errors(
    demo_app: FastAPI, demo_engine: sa.Engine
) -> None:
    """Schemathesis's first find: ids and filter values beyond BIGINT gave a 500."""
    big = 2**64
    records = "/api/v1/forms/lead/records"
    headers = admin_headers(demo_engine)
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", f"{records}/{big}", {}),
        ("PATCH", f"{records}/{big}", {"json": {"title": "x"}, "headers": {"If-Match": '"1"'}}),
        ("DELETE", f"{records}/{big}", {"headers": {"If-Match": '"1"'}}),
        ("GET", f"{records}?id={big}", {}),
        ("GET", f"{records}?customer={big}", {}),
        ("GET", f"{records}?probability__gt={big}", {}),
        (
            "POST",
            f"{records}:batch",
            {"json": {"operations": [{"op": "update", "id": big, "version": 1, "data": {}}]}},
        ),
        ("DELETE", f"/api/v1/auth/api-keys/{big}", {}),
    ]
    statuses = {}
    with TestClient(demo_app, raise_server_exceptions=False) as client:
        for method, url, kwargs in calls:
            extra = kwargs.pop("headers", {})
            response = client.request(method, url, headers={**headers, **extra}, **kwargs)
            statuses[f"{method} {url}"] = response.status_code
    assert {call: status for call, status in statuses.items() if status >= 500} == {}


def test_the_document_covers_every_bank_crm_form(demo_app: FastAPI) -> None:
    app_dir = find_example_app()
    assert app_dir is not None
    paths = demo_app.openapi()["paths"]
    for form in sorted(Path(app_dir, "forms").glob("*.json")):
        assert f"/api/v1/forms/{form.stem}/records" in paths
        assert f"/api/v1/forms/{form.stem}/records/{{record_id}}" in paths
