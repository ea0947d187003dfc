"""Truly concurrent requests, through a real uvicorn server on a loopback port.

On SQLite, concurrent writers are correct only because a writing request
takes the write lock before it reads anything (``BEGIN IMMEDIATE``, asked
for with the ``sqlite_begin`` execution option): a deferred transaction that
has read cannot wait for another writer, it fails (SQLITE_BUSY_SNAPSHOT).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy import event
from web_support import Api, records_url

CLIENTS = 6


def test_write_requests_take_the_write_lock_first(api: Api, backend: str) -> None:
    begun: list[str | None] = []
    sent: list[str] = []

    def on_begin(conn: sa.Connection) -> None:
        begun.append(conn.get_execution_options().get("sqlite_begin"))

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.upper().startswith("BEGIN"):
            sent.append(statement)

    event.listen(api.engine, "begin", on_begin)
    event.listen(api.engine, "before_cursor_execute", on_execute)
    try:
        api.list("sample")
        rid = api.create("sample", {"title": "ab"})["id"]
        api.patch("sample", rid, {"qty": 1}, version=1)
    finally:
        event.remove(api.engine, "begin", on_begin)
        event.remove(api.engine, "before_cursor_execute", on_execute)
    assert begun == [None, "IMMEDIATE", "IMMEDIATE"]
    if backend == "sqlite":
        assert sent == ["BEGIN DEFERRED", "BEGIN IMMEDIATE", "BEGIN IMMEDIATE"]


def race(
    base_url: str, send: Callable[[httpx.Client, int], httpx.Response]
) -> list[httpx.Response]:
    """Run ``send(client, i)`` from CLIENTS threads released at the same moment."""
    barrier = threading.Barrier(CLIENTS)

    def one(i: int) -> httpx.Response:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            client.get("/healthz")  # connect before the start line
            barrier.wait()
            return send(client, i)

    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(one, range(CLIENTS)))


def test_concurrent_updates_of_one_version_one_wins(
    api: Api, live_server: Callable[[FastAPI], str]
) -> None:
    rid = api.create("sample", {"title": "race", "qty": 0})["id"]
    base_url = live_server(api.app)

    def update(client: httpx.Client, i: int) -> httpx.Response:
        headers = {**api.admin.headers, "If-Match": '"1"'}
        return client.patch(records_url("sample", rid), json={"qty": i + 1}, headers=headers)

    responses = race(base_url, update)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [412] * (CLIENTS - 1), [r.text for r in responses]
    (winner,) = [r for r in responses if r.status_code == 200]
    for loser in (r for r in responses if r.status_code == 412):
        assert loser.json()["current_version"] == 2
    final = api.get("sample", rid)
    assert (final["version"], final["qty"]) == (2, winner.json()["qty"])


def test_concurrent_creates_all_land(api: Api, live_server: Callable[[FastAPI], str]) -> None:
    base_url = live_server(api.app)

    def create(client: httpx.Client, i: int) -> httpx.Response:
        return client.post(
            records_url("sample"),
            json={"title": f"parallel {i}", "docs": [{"kind": "passport"}]},
            headers=api.admin.headers,
        )

    responses = race(base_url, create)
    assert [r.status_code for r in responses] == [201] * CLIENTS, [r.text for r in responses]
    page = api.list("sample", "count=true&fields=title,docs")
    assert page["total"] == CLIENTS
    assert sorted(i["title"] for i in page["items"]) == [f"parallel {i}" for i in range(CLIENTS)]
    assert all(len(i["docs"]) == 1 for i in page["items"])


def test_concurrent_reads_and_writes_with_one_api_key(
    api: Api, live_server: Callable[[FastAPI], str]
) -> None:
    # Each use may refresh the key's last_used_at: a write inside a GET.
    created = api.client.post(
        "/api/v1/auth/api-keys", json={"name": "busy"}, headers=api.admin.headers
    ).json()
    headers = {"Authorization": f"Bearer {created['key']}"}
    api.create("sample", {"title": "read me"})
    base_url = live_server(api.app)

    def read(client: httpx.Client, i: int) -> httpx.Response:
        if i % 2:
            return client.post(records_url("sample"), json={"title": f"w{i}"}, headers=headers)
        return client.get(records_url("sample"), headers=headers)

    responses = race(base_url, read)
    assert [r.status_code for r in responses] == [200, 201] * (CLIENTS // 2), [
        r.text for r in responses
    ]
