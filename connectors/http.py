"""The ``http`` connector: one JSON call over HTTP(S), bounded in time and size.

A service task's call (:class:`~engine.processes.services.ServiceRequest`)
is made with the standard library (``urllib``), so Formflow needs no HTTP
client of its own at run time. What it guarantees:

* only ``http`` and ``https`` addresses, and no redirects (a redirect could
  lead anywhere, another scheme included; the answer says where to point
  the task instead);
* the request's timeout bounds connecting and each read, and the whole
  answer is read by that deadline; an answer over
  :data:`MAX_RESPONSE_BYTES` is refused (it would be stored in the instance);
* every attempt of one task's call carries the same ``Idempotency-Key``.

Errors say what to do about them: 5xx, 408, 429, timeouts and network
failures are :class:`ConnectorError` (the job retries with backoff); any
other non-2xx answer is :class:`ConnectorRejected` (an incident at once).
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.request
from decimal import Decimal
from typing import Any

from engine.processes.service_config import check_url
from engine.processes.services import (
    ConnectorError,
    ConnectorRejected,
    ServiceRequest,
    ServiceResponse,
)

MAX_RESPONSE_BYTES = 256 * 1024
USER_AGENT = "Formflow (service task)"
RETRYABLE_4XX = frozenset({408, 429})
_CHUNK = 64 * 1024
_EXCERPT = 300


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises the 3xx answer as an HTTPError


_OPENER = urllib.request.build_opener(_NoRedirects())


def call_http(request: ServiceRequest) -> ServiceResponse:
    what = f"{request.method} {request.url}"
    reason = check_url(request.url)
    if reason:
        raise ConnectorRejected(reason)
    data = None
    headers = {
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
        "Idempotency-Key": request.idempotency_key,
    }
    if request.body is not None:
        data = json.dumps(request.body, ensure_ascii=False).encode("utf-8")
        headers["Content-Type"] = "application/json; charset=utf-8"
    outgoing = urllib.request.Request(
        request.url, data=data, headers=headers, method=request.method
    )
    deadline = time.monotonic() + request.timeout
    try:
        with _OPENER.open(outgoing, timeout=request.timeout) as answer:
            raw = _read(answer, deadline, what)
            status = int(answer.status)
    except urllib.error.HTTPError as exc:
        raise _refusal(what, exc) from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        cause = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise ConnectorError(f"{what} failed: {cause}") from None
    return _response(status, raw)


def _read(answer: Any, deadline: float, what: str) -> bytes:
    length = answer.headers.get("Content-Length")
    if length and length.isdigit() and int(length) > MAX_RESPONSE_BYTES:
        raise ConnectorRejected(f"{what}: the answer ({length} bytes) is over {_limit()}")
    chunks: list[bytes] = []
    size = 0
    while chunk := answer.read(_CHUNK):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise ConnectorRejected(f"{what}: the answer is over {_limit()}")
        if time.monotonic() > deadline:
            raise ConnectorError(f"{what}: the answer did not arrive within the timeout")
        chunks.append(chunk)
    return b"".join(chunks)


def _refusal(what: str, exc: urllib.error.HTTPError) -> ConnectorError:
    try:
        excerpt = exc.read(_EXCERPT).decode("utf-8", "replace").strip()
    except OSError:
        excerpt = ""
    finally:
        exc.close()
    message = f"{what} answered {exc.code} {exc.reason}" + (f": {excerpt}" if excerpt else "")
    if exc.code >= 500 or exc.code in RETRYABLE_4XX:
        return ConnectorError(message)
    if 300 <= exc.code < 400:
        message += f" (to {exc.headers.get('Location')}; point the url there)"
    return ConnectorRejected(message)


def _response(status: int, raw: bytes) -> ServiceResponse:
    if not raw.strip():
        return ServiceResponse(status, None)
    try:
        return ServiceResponse(status, json.loads(raw.decode("utf-8"), parse_float=Decimal))
    except (UnicodeDecodeError, ValueError):
        return ServiceResponse(status, None, text=raw[:_EXCERPT].decode("utf-8", "replace"))


def _limit() -> str:
    return f"{MAX_RESPONSE_BYTES // 1024} KiB"
