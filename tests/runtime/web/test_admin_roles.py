"""/api/v1/admin: the role catalogue, assignments, inheritance and memberships."""

from __future__ import annotations

from typing import Any

from admin_support import ADMIN, audit_since, count, last_audit_id, version
from web_support import Api, add_user

from engine.system import casbin_rule_table, role_table, user_department_table


def call(api: Api, method: str, path: str, body: Any = None, status: int = 200) -> Any:
    kwargs: dict[str, Any] = {} if body is None else {"json": body}
    r = api.client.request(method, f"{ADMIN}{path}", headers=api.admin.headers, **kwargs)
    assert r.status_code == status, r.text
    return r.json() if r.content else None


def test_role_catalogue(api: Api) -> None:
    mark = last_audit_id(api)
    created = call(api, "POST", "/roles", {"key": "teller", "name": "柜员"}, 201)
    assert (created["key"], created["name"], created["description"]) == ("teller", "柜员", None)
    call(api, "POST", "/roles", {"key": "auditor", "name": "Auditor", "description": "reads"}, 201)
    page = call(api, "GET", "/roles?limit=1")
    assert [r["key"] for r in page["items"]] == ["auditor"]
    rest = call(api, "GET", f"/roles?limit=1&cursor={page['next_cursor']}")
    assert [r["key"] for r in rest["items"]] == ["teller"]

    changed = call(api, "PATCH", "/roles/teller", {"description": "前台"})
    assert (changed["name"], changed["description"]) == ("柜员", "前台")
    changed = call(api, "PATCH", "/roles/teller", {"name": "出纳", "description": None})
    assert (changed["name"], changed["description"]) == ("出纳", None)
    trail = audit_since(api, mark, "role")
    assert [(a["entity_key"], a["action"]) for a in trail] == [
        ("teller", "create"),
        ("auditor", "create"),
        ("teller", "update"),
        ("teller", "update"),
    ]
    assert (trail[3]["before"], trail[3]["after"]) == (
        {"key": "teller", "name": "柜员", "description": "前台"},
        {"key": "teller", "name": "出纳", "description": None},
    )

    roles, mark = count(api, role_table), last_audit_id(api)
    r = api.client.post(
        f"{ADMIN}/roles", json={"key": "Bad Key", "name": "x"}, headers=api.admin.headers
    )
    assert (r.status_code, r.json()["errors"][0]["pointer"]) == (422, "/key")
    r = api.client.post(
        f"{ADMIN}/roles", json={"key": "teller", "name": "x"}, headers=api.admin.headers
    )
    assert (r.status_code, r.json()["errors"][0]["pointer"]) == (409, "/key")
    call(api, "PATCH", "/roles/ghost", {"name": "x"}, 404)
    call(api, "GET", "/roles/ghost", status=404)
    assert (count(api, role_table), last_audit_id(api)) == (roles, mark)


def test_assignment_inheritance_and_deletion(api: Api) -> None:
    teller = add_user(api.engine, "teller")
    for key in ("teller", "senior", "head"):
        call(api, "POST", "/roles", {"key": key, "name": key.title()}, 201)
    start, mark = version(api), last_audit_id(api)

    call(api, "PUT", f"/users/{teller.id}/roles/teller", status=204)
    call(api, "PUT", f"/users/{teller.id}/roles/teller", status=204)  # already: nothing changes
    assert call(api, "GET", f"/users/{teller.id}/roles") == {
        "user_id": teller.id,
        "roles": ["teller"],
    }
    assert call(api, "GET", "/roles/teller")["members"] == [teller.id]
    call(api, "PUT", "/roles/senior/parents/teller", status=204)
    call(api, "PUT", "/roles/head/parents/senior", status=204)
    assert call(api, "GET", "/roles/head/grants")["inherits"] == ["senior"]

    lines = count(api, casbin_rule_table)
    cycle = api.client.put(f"{ADMIN}/roles/teller/parents/head", headers=api.admin.headers)
    assert (cycle.status_code, cycle.json()["errors"][0]["pointer"]) == (409, "/parent")
    itself = api.client.put(f"{ADMIN}/roles/head/parents/head", headers=api.admin.headers)
    assert itself.status_code == 409
    call(api, "PUT", "/roles/head/parents/ghost", status=404)
    call(api, "PUT", f"/users/{teller.id}/roles/ghost", status=404)
    call(api, "PUT", "/users/999999/roles/teller", status=404)
    call(api, "DELETE", f"/users/{teller.id}/roles/head", status=404)
    call(api, "DELETE", "/roles/teller/parents/head", status=404)
    assert count(api, casbin_rule_table) == lines

    trail = audit_since(api, mark, "policy")
    assert [(a["entity_key"], a["action"]) for a in trail] == [
        (f"g, user:{teller.id}, role:teller", "add"),
        ("g, role:senior, role:teller", "add"),
        ("g, role:head, role:senior", "add"),
    ]
    assert trail[0]["after"] == {"line": [f"user:{teller.id}", "role:teller"]}
    assert version(api) == start + 3

    # Deleting a role takes every line naming it with it, each one audited.
    call(api, "DELETE", "/roles/senior", status=204)
    assert call(api, "GET", "/roles/head/grants")["inherits"] == []
    assert count(api, casbin_rule_table) == lines - 2
    assert [(a["entity_key"], a["action"]) for a in audit_since(api, mark)[3:]] == [
        ("g, role:senior, role:teller", "remove"),
        ("g, role:head, role:senior", "remove"),
        ("senior", "delete"),
    ]
    call(api, "DELETE", f"/users/{teller.id}/roles/teller", status=204)
    assert call(api, "GET", f"/users/{teller.id}")["roles"] == []


def test_memberships(api: Api) -> None:
    teller = add_user(api.engine, "teller")
    for code, parent in (("bank", None), ("hz", "bank"), ("nb", "bank")):
        call(api, "POST", "/departments", {"code": code, "name": code, "parent": parent}, 201)
    start, mark = version(api), last_audit_id(api)

    url = f"/users/{teller.id}/departments"
    assert call(api, "POST", url, {"department": "hz"}, 201) == [
        {"department": "hz", "name": "hz", "is_primary": False}
    ]
    listed = call(api, "POST", url, {"department": "nb", "primary": True}, 201)
    assert [(m["department"], m["is_primary"]) for m in listed] == [("nb", True), ("hz", False)]
    listed = call(api, "PUT", f"/users/{teller.id}/primary-department", {"department": "hz"})
    assert [(m["department"], m["is_primary"]) for m in listed] == [("hz", True), ("nb", False)]
    call(api, "DELETE", f"{url}/nb", status=204)
    assert call(api, "GET", f"/users/{teller.id}")["departments"] == [
        {"department": "hz", "name": "hz", "is_primary": True}
    ]

    trail = audit_since(api, mark, "membership")
    assert [(a["entity_key"], a["action"]) for a in trail] == [
        (f"{teller.id}:hz", "create"),
        (f"{teller.id}:nb", "create"),
        (f"{teller.id}:nb", "update"),
        (f"{teller.id}:hz", "update"),
        (f"{teller.id}:nb", "delete"),
    ]
    assert trail[3]["after"] == {"user_id": teller.id, "department": "hz", "is_primary": True}
    assert version(api) == start + 4

    rows, mark = count(api, user_department_table), last_audit_id(api)
    r = api.client.post(f"{ADMIN}{url}", json={"department": "hz"}, headers=api.admin.headers)
    assert (r.status_code, r.json()["errors"][0]["pointer"]) == (409, "/department")
    call(api, "POST", url, {"department": "ghost"}, 404)
    call(api, "POST", "/users/999999/departments", {"department": "hz"}, 404)
    call(api, "PUT", f"/users/{teller.id}/primary-department", {"department": "nb"}, 404)
    call(api, "DELETE", f"{url}/nb", status=404)
    call(api, "GET", "/users/999999/departments", status=404)
    r = api.client.post(f"{ADMIN}{url}", json={"dept": "hz"}, headers=api.admin.headers)
    assert r.status_code == 422
    assert {e["pointer"] for e in r.json()["errors"]} == {"/body/dept", "/body/department"}
    assert (count(api, user_department_table), last_audit_id(api)) == (rows, mark)
