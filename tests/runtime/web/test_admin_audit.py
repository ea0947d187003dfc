"""GET /api/v1/admin/audit: the administration trail, newest first, filtered and paged."""

from __future__ import annotations

from admin_support import ADMIN
from web_support import Api

AUDIT = f"{ADMIN}/audit"


def test_audit_lists_who_when_and_before_after(api: Api) -> None:
    h = api.admin.headers
    api.client.post(f"{ADMIN}/departments", json={"code": "bank", "name": "Bank"}, headers=h)
    api.client.patch(f"{ADMIN}/departments/bank", json={"name": "The Bank"}, headers=h)
    api.client.post(f"{ADMIN}/roles", json={"key": "teller", "name": "Teller"}, headers=h)

    r = api.client.get(AUDIT, params={"entity": "department", "key": "bank"}, headers=h)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [(i["action"], i["actor"], i["actor_id"]) for i in items] == [
        ("rename", "admin", api.admin.id),
        ("create", "admin", api.admin.id),
    ]
    assert (items[0]["before"]["name"], items[0]["after"]["name"]) == ("Bank", "The Bank")
    assert items[0]["at"].endswith("Z") or "+00:00" in items[0]["at"]
    assert r.json()["next_cursor"] is None

    first = api.client.get(AUDIT, params={"limit": 2}, headers=h).json()
    assert [(i["entity"], i["key"]) for i in first["items"]] == [
        ("role", "teller"),
        ("department", "bank"),
    ]
    second = api.client.get(
        AUDIT, params={"limit": 2, "cursor": first["next_cursor"]}, headers=h
    ).json()
    assert second["items"][0]["id"] < first["items"][-1]["id"]
    assert (second["items"][0]["entity"], second["items"][0]["action"]) == ("department", "create")

    assert api.client.get(AUDIT, params={"entity": "nothing"}, headers=h).json() == {
        "items": [],
        "next_cursor": None,
    }
    r = api.client.get(AUDIT, params={"limit": 0}, headers=h)
    assert (r.status_code, r.json()["errors"][0]["pointer"]) == (422, "/query/limit")
