"""The http connector against a real server on 127.0.0.1: what retries, what is refused."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
from http_support import Answer, Server, http_server

from connectors import http
from connectors.http import call_http
from engine.processes.services import ConnectorError, ConnectorRejected, ServiceRequest


@pytest.fixture
def server() -> Iterator[Server]:
    with http_server() as running:
        yield running


def request(
    url: str, *, method: str = "POST", body: object = None, timeout: float = 5
) -> ServiceRequest:
    return ServiceRequest("http", method, url, body, timeout, "formflow-1-abc")


def test_a_json_call_and_its_answer(server: Server) -> None:
    server.answer(Answer(200, {"grade": "A", "limit": 1.5}))
    response = call_http(request(server.url + "/score", body={"name": "张三", "n": 2}))
    assert (response.status, response.body) == (200, {"grade": "A", "limit": Decimal("1.5")})
    got = server.received[0]
    assert (got.method, got.path, got.json()) == ("POST", "/score", {"name": "张三", "n": 2})
    assert got.headers["Content-Type"].startswith("application/json")
    assert got.headers["Idempotency-Key"] == "formflow-1-abc"


def test_an_empty_or_non_json_answer(server: Server) -> None:
    server.answer(Answer(204), Answer(200, b"OK"))
    assert call_http(request(server.url, method="GET")).body is None
    plain = call_http(request(server.url, method="GET"))
    assert (plain.body, plain.text) == (None, "OK")
    assert server.received[0].body == b""


@pytest.mark.parametrize("status", [500, 503, 429, 408])
def test_server_errors_and_throttling_are_worth_retrying(server: Server, status: int) -> None:
    server.answer(Answer(status, {"error": "busy"}))
    with pytest.raises(ConnectorError, match=f"answered {status}") as caught:
        call_http(request(server.url))
    assert not isinstance(caught.value, ConnectorRejected)


@pytest.mark.parametrize("status", [400, 404, 422])
def test_client_errors_are_refusals_with_the_answer(server: Server, status: int) -> None:
    server.answer(Answer(status, {"detail": "no such customer"}))
    with pytest.raises(ConnectorRejected, match=f"answered {status}.*no such customer"):
        call_http(request(server.url))


def test_redirects_are_not_followed(server: Server) -> None:
    server.answer(Answer(302, headers={"Location": "ftp://elsewhere/"}))
    with pytest.raises(ConnectorRejected, match=r"302.*ftp://elsewhere/"):
        call_http(request(server.url, method="GET"))
    assert len(server.received) == 1


def test_an_answer_too_large_is_refused(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http, "MAX_RESPONSE_BYTES", 1000)
    server.answer(Answer(200, b"x" * 1001))
    with pytest.raises(ConnectorRejected, match="over"):
        call_http(request(server.url, method="GET"))


def test_a_slow_answer_times_out(server: Server) -> None:
    server.answer(Answer(200, {"late": True}, delay=2))
    started = time.monotonic()
    with pytest.raises(ConnectorError, match="failed"):
        call_http(request(server.url, method="GET", timeout=0.3))
    assert time.monotonic() - started < 1.5


def test_nobody_listening_is_worth_retrying() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectorError, match="failed"):
        call_http(request(f"http://127.0.0.1:{port}/"))


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/", "http:///nohost"])
def test_only_http_and_https_addresses(url: str) -> None:
    with pytest.raises(ConnectorRejected):
        call_http(request(url))
