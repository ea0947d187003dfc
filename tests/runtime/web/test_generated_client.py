"""A client generated from /openapi.json by openapi-python-client works against the app.

The client is generated at test time (``--fail-on-warning``: a part of the
document the generator cannot use fails the test), imported, and used to
create, read, list and change a bank CRM customer through a real uvicorn
server on a loopback port.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from web_support import MakeApp, add_user

from engine.apps import import_app
from engine.system import department_table

REPO = Path(__file__).resolve().parents[3]
PACKAGE = "formflow_generated_client"


@pytest.fixture
def generated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Any]]:
    """``generate(base_url)``: generate the client from the live document, import it."""

    def generate(base_url: str) -> Any:
        spec = tmp_path / "openapi.json"
        spec.write_text(json.dumps(httpx.get(f"{base_url}/openapi.json").json()), "utf-8")
        config = tmp_path / "generator.yml"
        config.write_text("post_hooks: []\n", "utf-8")  # no formatter run: faster, same code
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "openapi_python_client",
                "generate",
                "--path",
                str(spec),
                "--output-path",
                str(tmp_path / PACKAGE),
                "--meta",
                "none",
                "--config",
                str(config),
                "--fail-on-warning",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        # The generated code must compile, every module of it.
        compiled = subprocess.run(
            [sys.executable, "-m", "compileall", "-q", str(tmp_path / PACKAGE)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert compiled.returncode == 0, compiled.stdout + compiled.stderr
        monkeypatch.syspath_prepend(str(tmp_path))
        importlib.invalidate_caches()
        return importlib.import_module(PACKAGE)

    yield generate
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]


def submodule(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_generated_client_round_trips_a_customer(
    engine: sa.Engine,
    make_app: MakeApp,
    live_server: Callable[[FastAPI], str],
    generated: Callable[[str], Any],
) -> None:
    with engine.begin() as conn:
        import_app(conn, REPO / "examples" / "bank_crm")
        branch = conn.execute(
            sa.insert(department_table)
            .values(code="hq", name="总行")
            .returning(department_table.c.id)
        ).scalar_one()
    admin = add_user(engine, "admin", superuser=True)
    base_url = live_server(make_app())
    package = generated(base_url)

    models = submodule("models")
    create_customer = submodule("api.customer.create_customer")
    get_customer = submodule("api.customer.get_customer")
    update_customer = submodule("api.customer.update_customer")
    list_customer = submodule("api.customer.list_customer")
    delete_customer = submodule("api.customer.delete_customer")
    me = submodule("api.auth.me_api_v1_auth_me_get")

    with package.AuthenticatedClient(base_url=base_url, token=admin.token) as client:
        assert me.sync(client=client).username == "admin"

        body = models.CustomerCreate(
            name="王五",
            customer_type=models.CustomerCreateCustomerType.INDIVIDUAL,
            branch=branch,
            source_channel=models.CustomerCreateSourceChannel.WECHAT,
            phone="13812345678",
            birthday=dt.date(1990, 1, 2),
            annual_income="350000.00",
            tags=[models.CustomerCreateTagsType0Item("payroll")],
        )
        created = create_customer.sync_detailed(client=client, body=body)
        assert created.status_code == 201, created.content
        record = created.parsed
        assert isinstance(record, models.CustomerRecord)
        assert created.headers["etag"] == '"1"'
        assert (record.version, record.name, record.phone, record.branch) == (
            1,
            "王五",
            "13812345678",
            branch,
        )
        assert record.birthday == dt.date(1990, 1, 2)
        assert record.annual_income == "350000.00"
        assert record.customer_type == models.CustomerRecordCustomerTypeType0.INDIVIDUAL
        assert [t.value for t in record.tags] == ["payroll"]
        assert record.created_by == admin.id

        read = get_customer.sync(client=client, record_id=record.id)
        assert isinstance(read, models.CustomerRecord)
        assert read.to_dict() == record.to_dict()
        # A partial record (?fields=) parses too: only id and version are always there.
        partial = get_customer.sync(client=client, record_id=record.id, fields="name")
        assert partial.to_dict() == {"id": record.id, "version": 1, "name": "王五"}

        page = list_customer.sync(
            client=client, name_contains="王", count=True, expand="referred_by"
        )
        assert isinstance(page, models.CustomerList)
        assert [c.id for c in page.items] == [record.id]
        assert page.total == 1 and page.next_cursor is None
        assert page.items[0].expand.referred_by is None

        changed = update_customer.sync_detailed(
            client=client,
            record_id=record.id,
            if_match='"1"',
            body=models.CustomerPatch(phone="13900000000", note="回访"),
        )
        assert changed.status_code == 200, changed.content
        assert (changed.parsed.version, changed.parsed.phone) == (2, "13900000000")

        # Errors arrive as typed problems.
        stale = update_customer.sync_detailed(
            client=client, record_id=record.id, if_match='"1"', body=models.CustomerPatch(note="x")
        )
        assert stale.status_code == 412
        assert isinstance(stale.parsed, models.Problem)
        assert stale.parsed.current_version == 2
        invalid = create_customer.sync_detailed(
            client=client,
            body=models.CustomerCreate(
                name="",
                customer_type=models.CustomerCreateCustomerType.INDIVIDUAL,
                branch=branch,
                source_channel=models.CustomerCreateSourceChannel.WECHAT,
            ),
        )
        assert invalid.status_code == 422
        assert [(e.pointer, e.message) for e in invalid.parsed.errors] == [
            ("/name", "客户名称 must be at least 1 characters")
        ]

        # A batch: one create and one update, all or nothing.
        batch = submodule("api.customer.batch_customer")
        request = models.CustomerBatchRequest(
            operations=[
                models.CustomerBatchCreateOperation(
                    op="create",
                    data=models.CustomerCreate(
                        name="赵六",
                        customer_type=models.CustomerCreateCustomerType.CORPORATE,
                        branch=branch,
                        source_channel=models.CustomerCreateSourceChannel.REFERRAL,
                    ),
                ),
                models.CustomerBatchUpdateOperation(
                    op="update", id=record.id, version=2, data=models.CustomerPatch(note="批量")
                ),
            ]
        )
        done = batch.sync_detailed(client=client, body=request)
        assert done.status_code == 200, done.content
        results = done.parsed.results
        assert [(r.op.value, r.version) for r in results] == [("create", 1), ("update", 3)]
        assert (results[0].record.name, results[1].record.note) == ("赵六", "批量")

        deleted = delete_customer.sync_detailed(client=client, record_id=record.id, if_match='"3"')
        assert deleted.status_code == 204
        missing = get_customer.sync_detailed(client=client, record_id=record.id)
        assert missing.status_code == 404
        assert missing.parsed.detail == f"客户 {record.id} does not exist."
