"""Authentication over HTTP: sessions, cookies, API keys, and who may call what."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator

import sqlalchemy as sa
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute
from web_support import Account, Api, add_user, grant_everything, records_url

from engine.system import user_table
from runtime.auth.passwords import hash_password
from runtime.web.deps import SESSION_COOKIE

PUBLIC = {("POST", "/api/v1/auth/login")}
UNAUTHENTICATED = {
    "type": "urn:formflow:problem:unauthenticated",
    "title": "Unauthorized",
    "status": 401,
    "detail": "Authentication required: log in at POST /api/v1/auth/login or send an API key.",
}
PASSWORD = "correct horse battery"
_PASSWORD_HASH = hash_password(PASSWORD)  # argon2 is slow: hash once per session


def with_password(api: Api, username: str) -> int:
    with api.engine.begin() as conn:
        user_id = conn.execute(
            sa.insert(user_table)
            .values(
                username=username,
                display_name=username.title(),
                password_hash=_PASSWORD_HASH,
                is_superuser=False,
                is_active=True,
                created_at=dt.datetime.now(dt.UTC),
            )
            .returning(user_table.c.id)
        ).scalar_one()
    return int(user_id)


def api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """Every APIRoute of an app, inside included routers too."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (included := getattr(route, "original_router", None)) is not None:
            yield from api_routes(included.routes)


def test_every_api_route_but_login_needs_authentication(api: Api) -> None:
    routes = [
        (method, route.path)
        for route in api_routes(api.app.routes)
        if route.path.startswith("/api/v1")
        for method in sorted(route.methods)
    ]
    # The routes this test knows of: a new route is added here, consciously
    # (administration routes in test_admin_access.py); all are checked below.
    admin = "/api/v1/admin/"
    assert sorted(r for r in routes if not r[1].startswith(admin)) == [
        ("DELETE", "/api/v1/auth/api-keys/{key_id}"),
        ("DELETE", "/api/v1/forms/{form}/records/{record_id}"),
        ("GET", "/api/v1/auth/api-keys"),
        ("GET", "/api/v1/auth/me"),
        ("GET", "/api/v1/forms"),
        ("GET", "/api/v1/forms/{form}"),
        ("GET", "/api/v1/forms/{form}/records"),
        ("GET", "/api/v1/forms/{form}/records/{record_id}"),
        ("GET", "/api/v1/forms/{form}/records/{record_id}/history"),
        ("GET", "/api/v1/permissions/explain"),
        ("GET", "/api/v1/processes"),
        ("GET", "/api/v1/processes/instances/{instance_id}"),
        ("GET", "/api/v1/tasks"),
        ("GET", "/api/v1/tasks/{task_id}"),
        ("PATCH", "/api/v1/forms/{form}/records/{record_id}"),
        ("POST", "/api/v1/auth/api-keys"),
        ("POST", "/api/v1/auth/login"),
        ("POST", "/api/v1/auth/logout"),
        ("POST", "/api/v1/forms/{form}/records"),
        ("POST", "/api/v1/forms/{form}/records:batch"),
        ("POST", "/api/v1/processes"),
        ("POST", "/api/v1/processes/instances/{instance_id}:cc"),
        ("POST", "/api/v1/processes/instances/{instance_id}:withdraw"),
        ("POST", "/api/v1/processes/{key}/instances"),
        ("POST", "/api/v1/tasks/{task_id}:add-signer"),
        ("POST", "/api/v1/tasks/{task_id}:approve"),
        ("POST", "/api/v1/tasks/{task_id}:claim"),
        ("POST", "/api/v1/tasks/{task_id}:complete"),
        ("POST", "/api/v1/tasks/{task_id}:delegate"),
        ("POST", "/api/v1/tasks/{task_id}:reject"),
        ("POST", "/api/v1/tasks/{task_id}:resolve"),
        ("POST", "/api/v1/tasks/{task_id}:return"),
        ("POST", "/api/v1/tasks/{task_id}:transfer"),
        ("POST", "/api/v1/tasks/{task_id}:unclaim"),
    ]
    rid = api.create("sample", {"title": "secret"})["id"]
    for method, path in routes:
        names = {n: "x" for n in ("code", "key", "parent", "role", "name")}
        ids = {n: 1 for n in ("key_id", "user_id", "instance_id", "task_id", "job_id")}
        url = path.format(form="sample", record_id=rid, **ids, **names)
        for headers in (
            {},
            {"Authorization": "Bearer ffs_forged"},
            {"Authorization": "Basic eDp5"},
        ):
            r = api.client.request(method, url, json={"title": "x"}, headers=headers)
            if (method, path) in PUBLIC:
                assert r.status_code == 422, (method, path)  # reached the handler: no auth
                continue
            assert r.status_code == 401, (method, path, headers, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert r.headers["www-authenticate"] == "Bearer"
    assert api.get("sample", rid)["title"] == "secret"
    assert api.rows("sample") == 1


def test_probes_and_docs_are_public(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    assert api.client.get("/readyz").json() == {"status": "ready"}
    assert api.client.get("/openapi.json").status_code == 200
    assert api.client.get("/docs").status_code == 200


def test_bad_credentials(api: Api) -> None:
    cases = {
        "Basic eDp5": "Use 'Authorization: Bearer <token or API key>'.",
        "Bearer ": "Use 'Authorization: Bearer <token or API key>'.",
        "Bearer nonsense": "The credential is not valid.",
        "Bearer ffs_" + "a" * 43: "The session has expired or was revoked; log in again.",
        "Bearer ffk_abc": "The API key is not valid.",
        "Bearer ffk_abc_def": "The API key is not valid or was revoked.",
        f"Bearer {api.admin.token}x": "The session has expired or was revoked; log in again.",
    }
    for header, detail in cases.items():
        r = api.client.get("/api/v1/auth/me", headers={"Authorization": header})
        assert r.status_code == 401, header
        assert r.json()["detail"] == detail, header


def test_login_me_logout(api: Api) -> None:
    user_id = with_password(api, "wang")
    r = api.client.post(
        "/api/v1/auth/login", json={"username": "wang", "password": "wrong password"}
    )
    assert r.status_code == 401
    assert r.json()["detail"] == "Invalid username or password."
    r = api.client.post("/api/v1/auth/login", json={"username": "nobody", "password": PASSWORD})
    assert r.status_code == 401
    assert r.json()["detail"] == "Invalid username or password."
    assert SESSION_COOKIE not in api.client.cookies

    r = api.client.post("/api/v1/auth/login", json={"username": "wang", "password": PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_at"}
    assert body["token_type"] == "bearer"
    assert re.fullmatch(r"ffs_[A-Za-z0-9_-]{43}", body["access_token"])
    expires = dt.datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert (
        dt.timedelta(hours=11, minutes=59)
        < expires - dt.datetime.now(dt.UTC)
        <= dt.timedelta(hours=12)
    )
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}={body['access_token']};")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=43200" in cookie
    api.client.cookies.clear()

    token = {"Authorization": f"Bearer {body['access_token']}"}
    r = api.client.get("/api/v1/auth/me", headers=token)
    assert r.json() == {
        "id": user_id,
        "username": "wang",
        "display_name": "Wang",
        "is_superuser": False,
        "authenticated_by": "token",
    }
    r = api.client.post("/api/v1/auth/logout", headers=token)
    assert (r.status_code, r.content) == (204, b"")
    r = api.client.get("/api/v1/auth/me", headers=token)
    assert r.status_code == 401
    assert r.json()["detail"] == "The session has expired or was revoked; log in again."
    # Other sessions are untouched.
    assert api.client.get("/api/v1/auth/me", headers=api.admin.headers).status_code == 200


def test_inactive_users_cannot_log_in_or_use_their_sessions(api: Api) -> None:
    with_password(api, "leaver")
    r = api.client.post("/api/v1/auth/login", json={"username": "leaver", "password": PASSWORD})
    token = {"Authorization": f"Bearer {r.json()['access_token']}"}
    with api.engine.begin() as conn:
        conn.execute(
            sa.update(user_table).where(user_table.c.username == "leaver").values(is_active=False)
        )
    assert api.client.get("/api/v1/auth/me", headers=token).status_code == 401
    r = api.client.post("/api/v1/auth/login", json={"username": "leaver", "password": PASSWORD})
    assert r.status_code == 401


def test_sessions_expire(api: Api) -> None:
    ctx = api.app.state.ctx
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1, seconds=1)  # tokens live 1 h here
    ctx.clock = lambda: later
    r = api.client.get("/api/v1/auth/me", headers=api.admin.headers)
    assert r.status_code == 401
    assert r.json()["detail"] == "The session has expired or was revoked; log in again."


def test_cookie_session_and_csrf_header(api: Api) -> None:
    grant_everything(api.engine, with_password(api, "li"))
    with TestClient(api.app) as browser:
        r = browser.post("/api/v1/auth/login", json={"username": "li", "password": PASSWORD})
        assert r.status_code == 200
        assert browser.cookies[SESSION_COOKIE] == r.json()["access_token"]
        # Reads with the cookie alone.
        assert browser.get(records_url("sample")).json()["items"] == []
        assert browser.get("/api/v1/auth/me").json()["username"] == "li"
        # Writes need X-Requested-With: a cross-site form cannot send it.
        r = browser.post(records_url("sample"), json={"title": "from a form"})
        assert r.status_code == 401
        assert r.json()["detail"] == "Cookie-authenticated writes need an X-Requested-With header."
        assert api.rows("sample") == 0
        xhr = {"X-Requested-With": "XMLHttpRequest"}
        r = browser.post(records_url("sample"), json={"title": "from the app"}, headers=xhr)
        assert r.status_code == 201
        rid = r.json()["id"]
        r = browser.delete(records_url("sample", rid), headers={"If-Match": '"1"'})
        assert r.status_code == 401
        assert api.get("sample", rid)["title"] == "from the app"
        # Logging out is a write too; it revokes the session and clears the cookie.
        assert browser.post("/api/v1/auth/logout").status_code == 401
        r = browser.post("/api/v1/auth/logout", headers=xhr)
        assert r.status_code == 204
        assert SESSION_COOKIE not in browser.cookies
        token = r.request.headers["cookie"].split("=", 1)[1]
        r = browser.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401
        r = browser.get("/api/v1/auth/me", cookies={SESSION_COOKIE: token})
        assert r.status_code == 401


def test_bearer_header_wins_over_the_cookie(api: Api) -> None:
    # A bearer request is not a browser's: it needs no X-Requested-With.
    api.client.cookies.set(SESSION_COOKIE, api.clerk.token)
    r = api.client.post(records_url("sample"), json={"title": "ab"}, headers=api.admin.headers)
    assert r.status_code == 201
    assert r.json()["created_by"] == api.admin.id


def test_api_keys(api: Api) -> None:
    r = api.client.post(
        "/api/v1/auth/api-keys", json={"name": "erp sync"}, headers=api.clerk.headers
    )
    assert r.status_code == 201
    created = r.json()
    assert set(created) == {"id", "name", "key"}
    assert created["name"] == "erp sync"
    key = created["key"]
    assert re.fullmatch(r"ffk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", key)
    as_key = {"Authorization": f"Bearer {key}"}

    r = api.client.get("/api/v1/auth/me", headers=as_key)
    assert r.json()["username"] == "clerk"
    assert r.json()["authenticated_by"] == "api_key"
    r = api.client.post(records_url("sample"), json={"title": "by key"}, headers=as_key)
    assert r.status_code == 201
    assert r.json()["created_by"] == api.clerk.id

    r = api.client.get("/api/v1/auth/api-keys", headers=api.clerk.headers)
    (listed,) = r.json()
    assert listed["id"] == created["id"] and listed["user_id"] == api.clerk.id
    assert listed["prefix"] == key.split("_")[1]
    assert listed["revoked_at"] is None and listed["last_used_at"] is not None
    assert key.split("_", 2)[2] not in r.text  # the secret is shown once

    # The clerk cannot revoke someone else's key, nor see it.
    admin_key = api.client.post(
        "/api/v1/auth/api-keys", json={"name": "ops"}, headers=api.admin.headers
    ).json()
    r = api.client.delete(f"/api/v1/auth/api-keys/{admin_key['id']}", headers=api.clerk.headers)
    assert r.status_code == 404
    assert [
        k["id"] for k in api.client.get("/api/v1/auth/api-keys", headers=api.clerk.headers).json()
    ] == [created["id"]]
    all_keys = api.client.get("/api/v1/auth/api-keys", headers=api.admin.headers).json()
    assert [k["id"] for k in all_keys] == [created["id"], admin_key["id"]]

    # Revoking takes effect on the very next request.
    r = api.client.delete(f"/api/v1/auth/api-keys/{created['id']}", headers=api.clerk.headers)
    assert (r.status_code, r.content) == (204, b"")
    r = api.client.get(records_url("sample"), headers=as_key)
    assert r.status_code == 401
    assert r.json()["detail"] == "The API key is not valid or was revoked."
    r = api.client.delete(f"/api/v1/auth/api-keys/{created['id']}", headers=api.clerk.headers)
    assert r.status_code == 404
    assert r.json()["detail"] == f"API key {created['id']} does not exist or is already revoked."
    # The admin's key still works.
    r = api.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {admin_key['key']}"})
    assert r.json()["username"] == "admin"


def test_api_keys_for_other_accounts(api: Api) -> None:
    r = api.client.post(
        "/api/v1/auth/api-keys", json={"name": "x", "user": "admin"}, headers=api.clerk.headers
    )
    assert r.status_code == 403
    assert r.json() == {
        "type": "urn:formflow:problem:forbidden",
        "title": "Forbidden",
        "status": 403,
        "detail": "Only administrators create keys for other accounts.",
    }
    r = api.client.post(
        "/api/v1/auth/api-keys", json={"name": "robot", "user": "clerk"}, headers=api.admin.headers
    )
    assert r.status_code == 201
    r = api.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {r.json()['key']}"})
    assert r.json()["username"] == "clerk"
    r = api.client.post(
        "/api/v1/auth/api-keys", json={"name": "x", "user": "ghost"}, headers=api.admin.headers
    )
    assert r.status_code == 404
    assert r.json()["detail"] == "There is no user 'ghost'."
    # An admin may revoke a key of the clerk's.
    keys = api.client.get("/api/v1/auth/api-keys", headers=api.admin.headers).json()
    r = api.client.delete(f"/api/v1/auth/api-keys/{keys[0]['id']}", headers=api.admin.headers)
    assert r.status_code == 204


def test_records_carry_who_wrote_them(api: Api) -> None:
    third: Account = add_user(api.engine, "third")
    grant_everything(api.engine, third.id)
    record = api.create("sample", {"title": "ab"}, who=third)
    assert (record["created_by"], record["owner_id"]) == (third.id, third.id)
    r = api.client.patch(
        records_url("sample", record["id"]),
        json={"qty": 1},
        headers={**api.clerk.headers, "If-Match": '"1"'},
    )
    assert (r.json()["created_by"], r.json()["updated_by"]) == (third.id, api.clerk.id)
