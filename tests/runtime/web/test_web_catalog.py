"""Forms published while the app runs, the form endpoints, probes and the OpenAPI document."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from web_support import COMPANY, SAMPLE, Api, publish_documents, records_url

import migrations
from engine.catalog import load_schema
from engine.db import create_engine
from runtime.settings import Settings
from runtime.web.app import create_app
from runtime.web.context import SchemaCache

MEMO: dict[str, Any] = {
    "key": "memo",
    "schema": {"title": "备忘", "properties": {"text": {"type": "string"}}, "required": ["text"]},
}


def test_a_form_published_while_the_app_runs_is_served_at_once(api: Api) -> None:
    r = api.client.get(records_url("memo"), headers=api.admin.headers)
    assert r.status_code == 404
    assert "/api/v1/forms/memo/records" not in api.client.get("/openapi.json").json()["paths"]

    publish_documents(api.engine, MEMO)
    assert api.list("memo") == {"items": [], "next_cursor": None, "limit": 50}
    memo = api.create("memo", {"text": "hello"})
    assert memo["text"] == "hello"
    keys = [f["key"] for f in api.client.get("/api/v1/forms", headers=api.admin.headers).json()]
    assert keys == ["company", "memo", "sample"]
    doc = api.client.get("/openapi.json").json()
    assert "/api/v1/forms/memo/records" in doc["paths"]
    assert doc["components"]["schemas"]["MemoCreate"]["properties"] == {
        "text": {"type": "string", "maxLength": 255, "description": "text"}
    }

    # A new version is served at once as well: its new field is accepted.
    v2 = copy.deepcopy(MEMO)
    v2["schema"]["properties"]["pinned"] = {"type": "boolean"}
    publish_documents(api.engine, v2)
    r = api.patch("memo", memo["id"], {"pinned": True}, version=1)
    assert r.status_code == 200, r.text
    assert r.json()["pinned"] is True
    doc = api.client.get("/openapi.json").json()
    assert "pinned" in doc["components"]["schemas"]["MemoPatch"]["properties"]


def test_schema_cache_checks_the_catalogue_at_most_every_ttl(engine: sa.Engine) -> None:
    now = [0.0]
    cache = SchemaCache(ttl=10, clock=lambda: now[0])
    publish_documents(engine, COMPANY)
    with engine.connect() as conn:
        first = cache.get(conn)
        assert sorted(first.forms) == ["company"]
    publish_documents(engine, MEMO)
    with engine.connect() as conn:
        now[0] = 9.9
        assert cache.get(conn) is first  # within the ttl: not even looked at
        now[0] = 10.0
        second = cache.get(conn)
        assert sorted(second.forms) == ["company", "memo"]
        now[0] = 15.0
        assert cache.get(conn) is second  # looked at, unchanged: the same object
    publish_documents(engine, SAMPLE)
    with engine.connect() as conn:
        cache.invalidate()  # a publish in this process: seen at once
        assert sorted(cache.get(conn).forms) == ["company", "memo", "sample"]


def test_forms_endpoints(api: Api) -> None:
    r = api.client.get("/api/v1/forms", headers=api.clerk.headers)
    assert r.json() == [
        {"key": "company", "label": "公司", "version": 1, "table": "form_company"},
        {"key": "sample", "label": "样本", "version": 1, "table": "form_sample"},
    ]
    body = api.client.get("/api/v1/forms/sample", headers=api.clerk.headers).json()
    assert body["definition"] == SAMPLE
    assert (body["key"], body["label"], body["version"], body["table"]) == (
        "sample",
        "样本",
        1,
        "form_sample",
    )
    assert body["versions"] == [
        {"version": 1, "published_at": "2024-06-01T08:00:00+00:00", "published_by": None}
    ]
    r = api.client.get("/api/v1/forms/nope", headers=api.clerk.headers)
    assert r.status_code == 404
    assert r.json()["detail"] == "There is no published form 'nope'."


def test_readyz(api: Api) -> None:
    r = api.client.get("/readyz")
    assert (r.status_code, r.json()) == (200, {"status": "ready"})
    assert api.client.get("/healthz").json() == {"status": "ok"}


def test_readyz_is_503_until_migrations_are_current(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)
    try:
        app = create_app(Settings(database_url=empty_database_url), engine=engine)
        with TestClient(app) as client:
            r = client.get("/readyz")
            assert r.status_code == 503
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json() == {
                "type": "about:blank",
                "title": "Service Unavailable",
                "status": 503,
                "detail": "Run `formflow db upgrade`: migrations pending.",
            }
            migrations.upgrade(engine, "0001")
            assert client.get("/readyz").status_code == 503
            migrations.upgrade(engine)
            assert client.get("/readyz").status_code == 200
            assert client.get("/healthz").status_code == 200
    finally:
        engine.dispose()


def test_readyz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/missing/dir/formflow.db"
    app = create_app(Settings(database_url=url), engine=create_engine(url))
    with TestClient(app) as client:
        r = client.get("/readyz")
        assert r.status_code == 503
        assert r.json()["detail"] == "The database is not reachable."
        assert client.get("/healthz").json() == {"status": "ok"}


# --- the OpenAPI document -------------------------------------------------------


def test_openapi_has_typed_schemas_for_every_form(api: Api) -> None:
    doc = api.client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    for name in ("Company", "Sample"):
        assert {f"{name}Record", f"{name}Create", f"{name}Patch", f"{name}List"} <= set(schemas)
    record, create, patch = (schemas[f"Sample{s}"] for s in ("Record", "Create", "Patch"))
    with api.engine.connect() as conn:
        definition = load_schema(conn).form("sample").definition
    every_field = [f.key for f in definition.fields]
    writable = [k for k in every_field if k not in ("frozen", "score")]
    system = ["id", "version", "created_at", "created_by", "updated_at", "updated_by"]
    assert list(record["properties"]) == [*system, "owner_id", "dept_id", *every_field, "expand"]
    assert record["required"] == ["id", "version"]
    assert all(record["properties"][k]["readOnly"] for k in system)
    assert list(create["properties"]) == list(patch["properties"]) == writable
    assert create["required"] == ["title"] and "required" not in patch
    assert create["additionalProperties"] is False
    assert create["properties"]["title"] == {
        "type": "string",
        "maxLength": 20,
        "minLength": 2,
        "description": "标题",
    }
    assert create["properties"]["rate"] == {
        "anyOf": [
            {"type": "string", "pattern": r"^-?[0-9]{1,4}(\.[0-9]{1,4})?$"},
            {"type": "null"},
        ],
        "description": "rate",
    }
    assert record["properties"]["score"] == {
        "anyOf": [
            {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1, "readOnly": True},
            {"type": "null"},
        ],
        "description": "得分",
    }
    docs = create["properties"]["docs"]
    assert docs["items"]["required"] == ["kind"]
    assert list(docs["items"]["properties"]) == ["id", "kind", "pages", "issuer"]
    assert list(record["properties"]["expand"]["properties"]) == ["company", "parent"]
    # No form schema has a title: client generators would name classes after it.
    assert list(titles([schemas[f"Sample{s}"] for s in ("Record", "Create", "Patch")])) == []


def titles(node: Any, *, properties: bool = False) -> Iterator[Any]:
    """The "title" keywords in a schema (a property named "title" is no keyword)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "title" and not properties:
                yield value
            yield from titles(value, properties=key == "properties" and not properties)
    elif isinstance(node, list):
        for value in node:
            yield from titles(value)


def test_openapi_paths_and_security(api: Api) -> None:
    doc = api.client.get("/openapi.json").json()
    base = "/api/v1/forms/sample/records"
    item = doc["paths"][f"{base}/{{record_id}}"]
    assert sorted(doc["paths"][base]) == ["get", "post"]
    batch = doc["paths"][f"{base}:batch"]["post"]
    assert batch["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SampleBatchRequest"
    }
    assert sorted(batch["responses"]) == ["200", "400", "401", "403", "404", "413", "415", "422"]
    assert sorted(item) == ["delete", "get", "patch"]
    assert [p["name"] for p in item["patch"]["parameters"]] == ["record_id", "If-Match"]
    assert sorted(item["patch"]["responses"]) == [
        "200",
        "400",
        "401",
        "403",
        "404",
        "409",
        "412",
        "413",
        "415",
        "422",
        "428",
    ]
    problem = item["patch"]["responses"]["412"]["content"]["application/problem+json"]
    assert problem["schema"] == {"$ref": "#/components/schemas/Problem"}
    names = [p["name"] for p in doc["paths"][base]["get"]["parameters"]]
    assert names[:7] == ["limit", "cursor", "page", "sort", "fields", "count", "expand"]
    assert {"qty", "qty__gte", "tags__contains", "company__in", "created_by"} <= set(names)
    assert "docs" not in names and "notes__gt" not in names
    # Everything needs a bearer credential, except logging in and the probes.
    assert doc["security"] == [{"bearer": []}]
    public = sorted(
        (path, method)
        for path, operations in doc["paths"].items()
        for method, operation in operations.items()
        if operation.get("security") == []
    )
    assert public == [("/api/v1/auth/login", "post"), ("/healthz", "get"), ("/readyz", "get")]


def test_form_schema_names_never_meet_the_apis_own(api: Api) -> None:
    """A form called api_key has ApiKeyCreate; the auth model must not be called so."""
    publish_documents(
        api.engine,
        {"key": "api_key", "schema": {"properties": {"label": {"type": "string"}}}},
        {"key": "sample_batch", "schema": {"properties": {"n": {"type": "integer"}}}},
    )
    schemas = api.client.get("/openapi.json").json()["components"]["schemas"]
    assert list(schemas["ApiKeyCreate"]["properties"]) == ["label"]
    assert list(schemas["ApiKeyRequest"]["properties"]) == ["name", "user"]
    assert list(schemas["SampleBatchCreate"]["properties"]) == ["n"]
    assert list(schemas["SampleBatchCreateOperation"]["properties"]) == ["op", "data"]
