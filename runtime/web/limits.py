"""Request guards as plain ASGI middleware (they must see the raw stream).

Two rules hold for every request, whatever route or body model serves it:
the body is at most ``max_bytes``, and no text carries a NUL character
(PostgreSQL cannot store one; SQLite would, so the rule keeps both databases
alike). Both are answered with a problem document before any handler runs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# A JSON "\u0000" escape: "u0000" after an odd number of backslashes.
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


@dataclass(frozen=True)
class _Refused:
    status: int
    slug: str
    title: str
    detail: str


def _too_large(max_bytes: int) -> _Refused:
    return _Refused(
        413,
        "payload-too-large",
        "Payload too large",
        f"The request body exceeds {max_bytes} bytes.",
    )


_NUL = _Refused(
    400, "bad-request", "Bad request", "Text may not contain the NUL character (\\u0000)."
)


def has_nul(data: bytes) -> bool:
    return b"\x00" in data or _NUL_ESCAPE.search(data) is not None


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._reject(send, _too_large(self.max_bytes))
            return
        query = bytes(scope.get("query_string") or b"").lower()
        if b"%00" in query or b"\x00" in query or "\x00" in str(scope.get("path", "")):
            await self._reject(send, _NUL)
            return
        # Read the whole (bounded) body first, so a refusal is ours to word:
        # an error raised while a route's body model reads it would be
        # reported by the framework as a generic parsing error.
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                await self._reject(send, _too_large(self.max_bytes))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if has_nul(body):
            await self._reject(send, _NUL)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect

        await self.app(scope, replay, send)

    async def _reject(self, send: Send, refused: _Refused) -> None:
        body = json.dumps(
            {
                "type": f"urn:formflow:problem:{refused.slug}",
                "title": refused.title,
                "status": refused.status,
                "detail": refused.detail,
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": refused.status,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
