"""/api/v1/admin/departments: the tree over HTTP, each change audited and bumping the policy."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from admin_support import ADMIN, audit_since, count, last_audit_id, version
from web_support import Api

from engine.system import department_closure_table, department_table

DEPTS = f"{ADMIN}/departments"


def post(api: Api, code: str, name: str, parent: str | None = None) -> Any:
    r = api.client.post(
        DEPTS, json={"code": code, "name": name, "parent": parent}, headers=api.admin.headers
    )
    assert r.status_code == 201, r.text
    return r.json()


def tree(api: Api) -> list[tuple[str, str | None, int]]:
    r = api.client.get(DEPTS, headers=api.admin.headers)
    assert r.status_code == 200, r.text
    return [(d["code"], d["parent"], d["depth"]) for d in r.json()["items"]]


def below(api: Api, code: str) -> set[str]:
    """Every department under ``code`` (itself included), read from the closure table."""
    d, c = department_table, department_closure_table
    top = d.alias("top")
    with api.engine.connect() as conn:
        return set(
            conn.execute(
                sa.select(d.c.code)
                .join(c, c.c.descendant_id == d.c.id)
                .join(top, top.c.id == c.c.ancestor_id)
                .where(top.c.code == code)
            ).scalars()
        )


def test_create_rename_move_delete(api: Api) -> None:
    start, mark = version(api), last_audit_id(api)
    bank = post(api, "bank", "示范银行")
    assert {k: bank[k] for k in ("code", "name", "parent", "depth")} == {
        "code": "bank",
        "name": "示范银行",
        "parent": None,
        "depth": 0,
    }
    post(api, "hz", "杭州分行", "bank")
    post(api, "xihu", "西湖支行", "hz")
    post(api, "nb", "宁波分行", "bank")
    assert [t for t in tree(api) if t[0] in {"bank", "hz", "xihu", "nb"}] == [
        ("bank", None, 0),
        ("hz", "bank", 1),
        ("nb", "bank", 1),
        ("xihu", "hz", 2),
    ]
    assert below(api, "hz") == {"hz", "xihu"}

    r = api.client.patch(
        f"{DEPTS}/xihu", json={"name": "西湖区支行", "parent": "nb"}, headers=api.admin.headers
    )
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["parent"], r.json()["depth"]) == ("西湖区支行", "nb", 2)
    assert below(api, "hz") == {"hz"}
    assert below(api, "nb") == {"nb", "xihu"}

    # Leaving "parent" out keeps the department where it is; null makes it a root.
    r = api.client.patch(f"{DEPTS}/nb", json={"name": "宁波"}, headers=api.admin.headers)
    assert r.json()["parent"] == "bank"
    r = api.client.patch(f"{DEPTS}/nb", json={"parent": None}, headers=api.admin.headers)
    assert (r.json()["parent"], r.json()["depth"]) == (None, 0)
    assert api.client.get(f"{DEPTS}/xihu", headers=api.admin.headers).json()["depth"] == 1

    assert api.client.delete(f"{DEPTS}/xihu", headers=api.admin.headers).status_code == 204
    assert api.client.get(f"{DEPTS}/xihu", headers=api.admin.headers).status_code == 404

    trail = [(a["entity_key"], a["action"]) for a in audit_since(api, mark, "department")]
    assert trail == [
        ("bank", "create"),
        ("hz", "create"),
        ("xihu", "create"),
        ("nb", "create"),
        ("xihu", "rename"),
        ("xihu", "move"),
        ("nb", "rename"),
        ("nb", "move"),
        ("xihu", "delete"),
    ]
    move = audit_since(api, mark, "department")[5]
    assert (move["actor_id"], move["before"], move["after"]) == (
        api.admin.id,
        {"code": "xihu", "name": "西湖区支行", "parent": "hz"},
        {"code": "xihu", "name": "西湖区支行", "parent": "nb"},
    )
    assert version(api) == start + 9


def test_refusals_and_bad_input_write_nothing(api: Api) -> None:
    post(api, "bank", "Bank")
    post(api, "hz", "Hangzhou", "bank")
    rows, mark, start = count(api, department_table), last_audit_id(api), version(api)

    def refused(method: str, url: str, body: Any, status: int, pointer: str) -> None:
        r = api.client.request(method, url, json=body, headers=api.admin.headers)
        assert r.status_code == status, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert pointer in [e["pointer"] for e in r.json()["errors"]], r.text

    refused("POST", DEPTS, {"code": "bad code", "name": "x"}, 422, "/code")
    refused("POST", DEPTS, {"code": "ok", "name": " "}, 422, "/name")
    refused("POST", DEPTS, {"code": "ok"}, 422, "/body/name")
    refused("POST", DEPTS, {"code": "ok", "name": "x", "parent": "nowhere"}, 404, "/parent")
    refused("POST", DEPTS, {"code": "hz", "name": "again"}, 409, "/code")
    refused("PATCH", f"{DEPTS}/bank", {"parent": "hz"}, 409, "/parent")
    refused("PATCH", f"{DEPTS}/bank", {"parent": "bank"}, 409, "/parent")
    refused("PATCH", f"{DEPTS}/ghost", {"name": "x"}, 404, "/code")
    refused("DELETE", f"{DEPTS}/bank", None, 409, "/code")
    r = api.client.request("PATCH", f"{DEPTS}/bank", json={"nmae": "x"}, headers=api.admin.headers)
    assert (r.status_code, r.json()["errors"][0]["pointer"]) == (422, "/body/nmae")
    assert (count(api, department_table), last_audit_id(api), version(api)) == (rows, mark, start)
