"""What a caller sees of the API itself: the form catalogue and the OpenAPI document."""

from __future__ import annotations

import datetime as dt
from typing import Any

from web_support import Api

from permissions.org import create_role
from permissions.policy import PolicyStore

NOW = dt.datetime(2024, 6, 1, 8, 0, tzinfo=dt.UTC)
BASE = "/api/v1/forms/sample/records"


def make_clerk_a_reader(api: Api) -> None:
    """The clerk may read and change sample records: title writable, qty readable,
    mobile masked, everything else hidden; nothing of company."""
    with api.engine.begin() as conn:
        create_role(conn, key="reader", name="只读", actor_id=None, now=NOW)
        store = PolicyStore(conn, actor_id=None, now=NOW)
        store.unassign_role(api.clerk.id, "staff")  # the fixture's grant-everything role
        for action in ("read", "update"):
            store.set_action("reader", "sample", action)
            store.set_scope("reader", "sample", action, "all")
        store.set_field("reader", "sample", "title", "write")
        store.set_field("reader", "sample", "qty", "read")
        store.set_field("reader", "sample", "mobile", "mask")
        store.assign_role(api.clerk.id, "reader")


def test_the_catalogue_shows_only_forms_and_fields_the_caller_may_use(api: Api) -> None:
    make_clerk_a_reader(api)
    forms = api.client.get("/api/v1/forms", headers=api.clerk.headers).json()
    assert [f["key"] for f in forms] == ["sample"]
    everything = api.client.get("/api/v1/forms", headers=api.admin.headers).json()
    assert [f["key"] for f in everything] == ["company", "sample"]

    detail = api.client.get("/api/v1/forms/sample", headers=api.clerk.headers).json()
    assert detail["actions"] == ["read", "update"]
    props = detail["definition"]["schema"]["properties"]
    assert sorted(props) == ["mobile", "qty", "title"]
    assert "readOnly" not in props["title"]
    assert props["qty"]["readOnly"] is True
    assert props["mobile"]["readOnly"] is True and props["mobile"]["x-masked"] is True
    # A form the caller may do nothing with answers like one that does not exist.
    hidden = api.client.get("/api/v1/forms/company", headers=api.clerk.headers)
    missing = api.client.get("/api/v1/forms/nothing", headers=api.clerk.headers)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"] == missing.json()["detail"].replace("nothing", "company")


def test_openapi_is_tailored_to_the_caller(api: Api) -> None:
    make_clerk_a_reader(api)
    full = api.client.get("/openapi.json").json()
    mine = api.client.get("/openapi.json", headers=api.clerk.headers).json()
    admin = api.client.get("/openapi.json", headers=api.admin.headers).json()
    assert admin == full  # superusers and anonymous readers get the whole shape

    assert "/api/v1/forms/company/records" in full["paths"]
    assert not any(p.startswith("/api/v1/forms/company/") for p in mine["paths"])
    assert "CompanyRecord" not in mine["components"]["schemas"]
    assert sorted(mine["paths"][BASE]) == ["get"]  # no create
    assert sorted(mine["paths"][BASE + "/{record_id}"]) == ["get", "patch"]  # no delete
    assert mine["paths"][BASE + ":batch"] == full["paths"][BASE + ":batch"]  # updates

    schemas: dict[str, Any] = mine["components"]["schemas"]
    record = schemas["SampleRecord"]["properties"]
    assert {"title", "qty", "mobile"} <= set(record) and not {"notes", "id_no"} & set(record)
    assert record["mobile"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert "masked" in record["mobile"]["description"]
    assert sorted(schemas["SamplePatch"]["properties"]) == ["title"]
    names = {p["name"] for p in mine["paths"][BASE]["get"]["parameters"]}
    assert {"title", "qty", "qty__gte", "created_by"} <= names
    assert not {"mobile", "id_no", "notes__contains", "company"} & names
    # The same grants give the same (cached) document; bad credentials are refused.
    again = api.client.get("/openapi.json", headers=api.clerk.headers).json()
    assert again == mine
    forged = api.client.get("/openapi.json", headers={"Authorization": "Bearer ffs_forged"})
    assert forged.status_code == 401


def test_the_tailored_document_follows_a_policy_change(api: Api) -> None:
    make_clerk_a_reader(api)
    before = api.client.get("/openapi.json", headers=api.clerk.headers).json()
    assert "post" not in before["paths"][BASE]
    with api.engine.begin() as conn:
        store = PolicyStore(conn, actor_id=None, now=NOW)
        store.set_action("reader", "sample", "create")
        store.set_field("reader", "sample", "notes", "write")
    after = api.client.get("/openapi.json", headers=api.clerk.headers).json()
    assert "post" in after["paths"][BASE]
    assert sorted(after["components"]["schemas"]["SampleCreate"]["properties"]) == [
        "notes",
        "title",
    ]
