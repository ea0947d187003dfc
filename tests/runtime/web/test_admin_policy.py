"""/api/v1/admin: grants, named scopes and restrictions; a change applies on the next request."""

from __future__ import annotations

from typing import Any

from admin_support import ADMIN, audit_since, count, last_audit_id, version
from web_support import Api, add_user

from engine.system import casbin_rule_table

EXPLAIN = "/api/v1/permissions/explain"


def call(api: Api, method: str, path: str, body: Any = None, status: int = 200) -> Any:
    kwargs: dict[str, Any] = {} if body is None else {"json": body}
    r = api.client.request(method, f"{ADMIN}{path}", headers=api.admin.headers, **kwargs)
    assert r.status_code == status, r.text
    return r.json() if r.content else None


def explain(api: Api, username: str, **params: Any) -> Any:
    r = api.client.get(
        EXPLAIN, params={"user": username, "form": "sample", **params}, headers=api.admin.headers
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_a_grant_made_over_rest_applies_on_the_next_request(api: Api) -> None:
    teller = add_user(api.engine, "teller")
    call(api, "POST", "/roles", {"key": "teller", "name": "柜员"}, 201)
    call(api, "PUT", f"/users/{teller.id}/roles/teller", status=204)
    mine = api.create("sample", {"title": "mine"}, who=api.admin)["id"]
    assert explain(api, "teller")["allowed"] is False
    start, mark = version(api), last_audit_id(api)

    result = call(
        api,
        "POST",
        "/roles/teller/grants",
        {
            "form": "sample",
            "actions": ["read"],
            "fields": {"title": "read"},
            "field_caps": {"mobile": "mask"},
            "scopes": {"read": "all"},
        },
    )
    assert result["changed"] == [
        "p, role:teller, field:sample.mobile, read, deny",
        "p, role:teller, field:sample.title, read, allow",
        "p, role:teller, form:sample, read, allow",
        "p, role:teller, scope:sample, read:all, allow",
    ]
    assert result["role"]["grants"]["sample"] == {
        "actions": ["read"],
        "deny": [],
        "fields": {"title": "read"},
        "field_caps": {"mobile": "mask"},
        "scopes": {"read": "all"},
    }
    assert version(api) == start + 4
    trail = audit_since(api, mark)
    assert [(a["entity"], a["action"], a["actor_id"]) for a in trail] == [
        ("policy", "add", api.admin.id)
    ] * 4
    assert trail[2]["after"] == {"line": ["role:teller", "form:sample", "read", "allow"]}

    # The same app, no restart: the next request compiles from the new policy.
    body = explain(api, "teller", record=mine, field="title")
    assert body["allowed"] is True
    assert body["fields"]["title"]["level"] == "read"
    assert body["record"] == {"id": mine, "exists": True, "in_scope": True}
    r = api.client.get(f"/api/v1/forms/sample/records/{mine}", headers=teller.headers)
    assert (r.status_code, r.json()["title"]) == (200, "mine")

    # Adding it again changes nothing; removing takes it away on the next request.
    again = call(api, "POST", "/roles/teller/grants", {"form": "sample", "actions": ["read"]})
    assert again["changed"] == []
    removed = call(
        api, "POST", "/roles/teller/grants:remove", {"form": "sample", "actions": ["read"]}
    )
    assert removed["changed"] == ["p, role:teller, form:sample, read, allow"]
    assert explain(api, "teller")["allowed"] is False
    r = api.client.get(f"/api/v1/forms/sample/records/{mine}", headers=teller.headers)
    assert r.status_code in (403, 404)


def test_bad_grants_are_422_with_pointers_and_write_nothing(api: Api) -> None:
    call(api, "POST", "/roles", {"key": "teller", "name": "柜员"}, 201)
    lines, mark, start = count(api, casbin_rule_table), last_audit_id(api), version(api)
    r = api.client.post(
        f"{ADMIN}/roles/teller/grants",
        json={
            "form": "sample",
            "actions": ["read", "fly"],
            "fields": {"title": "read", "nope": "read", "qty": "shout"},
            "scopes": {"read": "mine"},
        },
        headers=api.admin.headers,
    )
    assert r.status_code == 422, r.text
    assert sorted(e["pointer"] for e in r.json()["errors"]) == [
        "/actions/1",
        "/fields/nope",
        "/fields/qty",
        "/scopes/read",
    ]
    on_all = {"form": "*", "fields": {"title": "read"}}
    r = api.client.post(f"{ADMIN}/roles/teller/grants", json=on_all, headers=api.admin.headers)
    assert [e["pointer"] for e in r.json()["errors"]] == ["/fields/title"]
    r = api.client.post(
        f"{ADMIN}/roles/teller/grants", json={"form": "ghost"}, headers=api.admin.headers
    )
    assert (r.status_code, r.json()["errors"][0]["pointer"]) == (404, "/form")
    call(api, "POST", "/roles/ghost/grants", {"form": "sample"}, 404)
    r = api.client.post(
        f"{ADMIN}/roles/teller/grants",
        json={"form": "sample", "action": []},
        headers=api.admin.headers,
    )
    assert [e["pointer"] for e in r.json()["errors"]] == ["/body/action"]
    assert (count(api, casbin_rule_table), last_audit_id(api), version(api)) == (lines, mark, start)


def test_named_scopes_and_restrictions(api: Api) -> None:
    call(api, "POST", "/roles", {"key": "teller", "name": "柜员"}, 201)
    call(api, "POST", "/roles", {"key": "wealth", "name": "财富"}, 201)
    lines, mark = count(api, casbin_rule_table), last_audit_id(api)

    bad = {"condition": {"field": "nope", "op": "eq", "value": 1}}
    r = api.client.put(f"{ADMIN}/scopes/sample/high", json=bad, headers=api.admin.headers)
    assert r.status_code == 422
    assert r.json()["errors"][0]["pointer"].startswith("/condition")
    call(api, "PUT", "/scopes/ghost/high", {"condition": {"all": []}}, 404)
    r = api.client.put(
        f"{ADMIN}/scopes/sample/own", json={"condition": {"all": []}}, headers=api.admin.headers
    )
    assert (r.status_code, r.json()["errors"][0]["pointer"]) == (422, "/name")
    assert (count(api, casbin_rule_table), last_audit_id(api)) == (lines, mark)

    high = {"field": "level", "op": "eq", "value": "high"}
    scope = call(api, "PUT", "/scopes/sample/high", {"condition": high})
    assert scope == {"form": "sample", "name": "high", "condition": high}
    assert call(api, "GET", "/scopes?form=sample") == [scope]
    assert call(api, "GET", "/scopes?form=company") == []
    call(api, "POST", "/roles/teller/grants", {"form": "sample", "scopes": {"read": "high"}})
    r = api.client.delete(f"{ADMIN}/scopes/sample/high", headers=api.admin.headers)
    assert (r.status_code, r.json()["errors"][0]["pointer"]) == (409, "/name")
    call(api, "POST", "/roles/teller/grants:remove", {"form": "sample", "scopes": {"read": "high"}})
    call(api, "DELETE", "/scopes/sample/high", status=204)
    call(api, "DELETE", "/scopes/sample/high", status=404)

    not_high = {"not": high}
    body = {"condition": not_high, "exempt": ["wealth"]}
    restriction = call(api, "PUT", "/restrictions/sample/no_high", body)
    assert restriction == {
        "form": "sample",
        "name": "no_high",
        "condition": not_high,
        "exempt": ["wealth"],
    }
    r = api.client.put(
        f"{ADMIN}/restrictions/sample/no_high",
        json={"condition": not_high, "exempt": ["ghost", "wealth", "wealth"]},
        headers=api.admin.headers,
    )
    assert sorted(e["pointer"] for e in r.json()["errors"]) == ["/exempt/0", "/exempt/2"]
    moved = call(
        api, "PUT", "/restrictions/sample/no_high", {"condition": not_high, "exempt": ["teller"]}
    )
    assert moved["exempt"] == ["teller"]
    kept = call(api, "PUT", "/restrictions/sample/no_high", {"condition": high})
    assert (kept["condition"], kept["exempt"]) == (high, ["teller"])
    assert call(api, "GET", "/restrictions") == [kept]
    call(api, "DELETE", "/restrictions/sample/no_high", status=204)
    assert call(api, "GET", "/restrictions") == []
    assert count(api, casbin_rule_table) == lines + 0

    trail = [(a["entity_key"], a["action"]) for a in audit_since(api, mark, "policy")]
    assert trail == [
        ("scope, sample, high", "add"),
        ("p, role:teller, scope:sample, read:high, allow", "add"),
        ("p, role:teller, scope:sample, read:high, allow", "remove"),
        ("scope, sample, high", "remove"),
        ("restrict, sample, no_high", "add"),
        ("p, role:wealth, restrict:sample, exempt:no_high, allow", "add"),
        ("p, role:wealth, restrict:sample, exempt:no_high, allow", "remove"),
        ("p, role:teller, restrict:sample, exempt:no_high, allow", "add"),
        ("restrict, sample, no_high", "add"),
        ("restrict, sample, no_high", "remove"),
        ("p, role:teller, restrict:sample, exempt:no_high, allow", "remove"),
    ]
