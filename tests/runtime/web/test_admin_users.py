"""/api/v1/admin/users: accounts listed, created and changed by an administrator, audited."""

from __future__ import annotations

from admin_support import ADMIN, audit_since, count, last_audit_id, version
from web_support import Api, add_user

from engine.system import user_table

USERS = f"{ADMIN}/users"


def count_users(api: Api) -> int:
    return count(api, user_table)


def test_create_read_list_and_page(api: Api) -> None:
    mark = last_audit_id(api)
    r = api.client.post(
        USERS,
        json={"username": "wang", "display_name": "王经理", "password": "a-long-secret"},
        headers=api.admin.headers,
    )
    assert r.status_code == 201, r.text
    wang = r.json()
    assert {k: wang[k] for k in ("username", "display_name", "is_active", "is_superuser")} == {
        "username": "wang",
        "display_name": "王经理",
        "is_active": True,
        "is_superuser": False,
    }
    assert wang["has_password"] is True
    service = api.client.post(USERS, json={"username": "sync"}, headers=api.admin.headers).json()
    assert (service["has_password"], service["display_name"]) == (False, "sync")

    [created, _] = audit_since(api, mark, "user")
    assert (created["actor_id"], created["entity_key"], created["action"]) == (
        api.admin.id,
        str(wang["id"]),
        "create",
    )
    assert created["before"] is None
    assert created["after"] == {
        "username": "wang",
        "display_name": "王经理",
        "is_active": True,
        "is_superuser": False,
    }

    detail = api.client.get(f"{USERS}/{wang['id']}", headers=api.admin.headers).json()
    assert (detail["departments"], detail["roles"]) == ([], [])

    page = api.client.get(USERS, params={"limit": 2}, headers=api.admin.headers).json()
    assert [u["username"] for u in page["items"]] == ["admin", "clerk"]
    rest = api.client.get(
        USERS, params={"limit": 2, "cursor": page["next_cursor"]}, headers=api.admin.headers
    ).json()
    assert [u["username"] for u in rest["items"]] == ["wang", "sync"]
    assert rest["next_cursor"] is not None
    end = api.client.get(
        USERS, params={"limit": 2, "cursor": rest["next_cursor"]}, headers=api.admin.headers
    ).json()
    assert end == {"items": [], "next_cursor": None}


def test_bad_input_is_422_with_pointers_and_nothing_is_written(api: Api) -> None:
    users, mark = count_users(api), last_audit_id(api)
    for body, pointer in [
        ({"username": "has space"}, "/username"),
        ({"username": "short", "password": "1234"}, "/password"),
        ({"username": "x", "colour": "red"}, "/body/colour"),
        ({"username": ""}, "/body/username"),
    ]:
        r = api.client.post(USERS, json=body, headers=api.admin.headers)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert [e["pointer"] for e in r.json()["errors"]] == [pointer], r.text
    r = api.client.post(USERS, json={"username": "clerk"}, headers=api.admin.headers)
    assert (r.status_code, r.json()["errors"][0]["pointer"]) == (409, "/username")
    r = api.client.patch(
        f"{USERS}/{api.clerk.id}", json={"display_name": "   "}, headers=api.admin.headers
    )
    assert (r.status_code, r.json()["errors"][0]["pointer"]) == (422, "/display_name")
    assert (count_users(api), last_audit_id(api)) == (users, mark)
    assert api.client.get(f"{USERS}/999999", headers=api.admin.headers).status_code == 404
    r = api.client.patch(f"{USERS}/999999", json={"is_active": True}, headers=api.admin.headers)
    assert r.status_code == 404


def test_deactivating_an_account_locks_it_out_at_once_and_is_audited(api: Api) -> None:
    teller = add_user(api.engine, "teller")
    assert api.client.get("/api/v1/auth/me", headers=teller.headers).status_code == 200
    mark = last_audit_id(api)
    before = version(api)
    r = api.client.patch(
        f"{USERS}/{teller.id}",
        json={"is_active": False, "display_name": "柜员"},
        headers=api.admin.headers,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["is_active"], r.json()["display_name"]) == (False, "柜员")
    assert api.client.get("/api/v1/auth/me", headers=teller.headers).status_code == 401
    [change] = audit_since(api, mark)
    assert (change["entity"], change["entity_key"], change["action"]) == (
        "user",
        str(teller.id),
        "update",
    )
    assert (change["before"]["is_active"], change["after"]["is_active"]) == (True, False)
    assert (change["before"]["display_name"], change["after"]["display_name"]) == (
        "teller",
        "柜员",
    )
    assert version(api) == before + 1

    # A change that changes nothing writes nothing.
    same = api.client.patch(
        f"{USERS}/{teller.id}", json={"is_active": False}, headers=api.admin.headers
    )
    assert same.status_code == 200
    assert len(audit_since(api, mark)) == 1

    promoted = api.client.patch(
        f"{USERS}/{teller.id}",
        json={"is_active": True, "is_superuser": True},
        headers=api.admin.headers,
    )
    assert promoted.json()["is_superuser"] is True
    assert api.client.get(USERS, headers=teller.headers).status_code == 200


def test_administrators_cannot_lock_themselves_out(api: Api) -> None:
    mark = last_audit_id(api)
    for body, pointer in [
        ({"is_active": False}, "/is_active"),
        ({"is_superuser": False}, "/is_superuser"),
    ]:
        r = api.client.patch(f"{USERS}/{api.admin.id}", json=body, headers=api.admin.headers)
        assert (r.status_code, r.json()["errors"][0]["pointer"]) == (409, pointer)
    assert last_audit_id(api) == mark
    assert api.client.get(USERS, headers=api.admin.headers).status_code == 200
