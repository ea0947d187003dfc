"""Fixtures of the web tests: the real app on this test's own database (see web_support)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from web_support import (
    COMPANY,
    SAMPLE,
    Api,
    MakeApp,
    add_user,
    grant_everything,
    publish_documents,
)

from engine.system import department_table
from runtime.settings import Settings
from runtime.web.app import create_app


@pytest.fixture
def make_app(engine: sa.Engine, database_url: str) -> MakeApp:
    """``make_app(max_body_bytes=..., ...)``: an app on this test's database."""

    def make(*, schema_ttl: float = 0, **settings: Any) -> FastAPI:
        return create_app(
            Settings(database_url=database_url, **settings), engine=engine, schema_ttl=schema_ttl
        )

    return make


@pytest.fixture
def api(engine: sa.Engine, make_app: MakeApp) -> Iterator[Api]:
    publish_documents(engine, COMPANY, SAMPLE)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(department_table),
            [{"code": c, "name": c.title()} for c in ("retail", "corporate")],
        )
        departments = {
            r.code: r.id
            for r in conn.execute(sa.select(department_table.c.code, department_table.c.id))
        }
    admin = add_user(engine, "admin", superuser=True)
    clerk = add_user(engine, "clerk")
    grant_everything(engine, clerk.id)
    app = make_app()
    with TestClient(app) as client:
        yield Api(app, client, engine, admin, clerk, departments)


@pytest.fixture
def live_server() -> Iterator[Callable[[FastAPI], str]]:
    """``live_server(app)`` serves ``app`` with uvicorn on a free loopback port: its URL."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def serve(app: FastAPI) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return f"http://127.0.0.1:{port}"

    yield serve
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)
