"""Request-scoped dependencies: the transaction, the caller, the JSON body."""

from __future__ import annotations

import decimal
import json
from collections.abc import Iterator
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Path, Request
from fastapi.responses import Response

from engine.errors import AuthenticationError
from engine.forms.fieldtypes import INT64_MAX
from permissions.gate import Gate
from runtime.auth.service import Principal, authenticate
from runtime.web.context import AppContext
from runtime.web.problems import BadRequestError, UnsupportedMediaTypeError

SESSION_COOKIE = "formflow_session"
# Ids are 64-bit: a larger number in a path is a client error (422), never a
# value sent to the database (OverflowError on SQLite, 500).
RowId = Annotated[int, Path(ge=1, le=INT64_MAX)]
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def get_context(request: Request) -> AppContext:
    # async: it only reads app state, so it needs no thread-pool hand-off.
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(get_context)]


def get_db(request: Request, ctx: Ctx) -> Iterator[sa.Connection]:
    """One transaction per request: committed before the response is sent,
    rolled back if the handler raised.

    A request that may write says so before its transaction begins, with the
    ``sqlite_begin="IMMEDIATE"`` execution option, for :mod:`engine.db` to
    begin with ``BEGIN IMMEDIATE`` on SQLite and so take the write lock first.
    Otherwise the request reads (the caller's credentials) before it writes,
    and a write committed by another request in between makes its own write
    fail (SQLITE_BUSY_SNAPSHOT) instead of wait. PostgreSQL ignores the option.
    """
    with ctx.engine.connect() as conn:
        if request.method in UNSAFE_METHODS:
            conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            yield conn


# scope="function": the commit happens before the response leaves, so a
# client never sees a 2xx for a write that then failed to commit.
Db = Annotated[sa.Connection, Depends(get_db, scope="function")]


def credential(request: Request) -> str | None:
    """The bearer token or API key, else the session cookie; None when there is neither."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthenticationError("Use 'Authorization: Bearer <token or API key>'.")
        return value.strip()
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie and request.method in UNSAFE_METHODS and not request.headers.get("x-requested-with"):
        # A cookie is sent by the browser on cross-site requests too; a custom
        # header cannot be, so requiring one blocks cross-site request forgery.
        raise AuthenticationError("Cookie-authenticated writes need an X-Requested-With header.")
    return cookie or None


def get_principal(request: Request, conn: Db, ctx: Ctx) -> Principal:
    found = credential(request)
    if found is None:
        raise AuthenticationError(
            "Authentication required: log in at POST /api/v1/auth/login or send an API key."
        )
    return authenticate(conn, found, now=ctx.clock())


CurrentUser = Annotated[Principal, Depends(get_principal)]


def get_gate(conn: Db, ctx: Ctx, user: CurrentUser) -> Gate:
    """The caller's access for this request: departments and policy version read once."""
    caller = ctx.callers.get(
        conn, user.user_id, superuser=user.is_superuser, version=user.policy_version
    )
    return Gate.open(conn, ctx.access, caller, ctx.schemas.get(conn))


Access = Annotated[Gate, Depends(get_gate)]


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


async def json_body(request: Request) -> Any:
    """The body as JSON with exact decimals (money never passes through float)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise UnsupportedMediaTypeError("Send the body as application/json.")
    raw = await request.body()
    if not raw:
        raise BadRequestError("A JSON body is required.")
    try:
        return json.loads(raw, parse_float=decimal.Decimal, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequestError(f"The body is not valid JSON: {exc}") from None


JsonBody = Annotated[Any, Depends(json_body)]


async def optional_json_body(request: Request) -> Any:
    """Like ``json_body``, but an empty body (and no content type) is ``None``."""
    if not await request.body() and not request.headers.get("content-type"):
        return None
    return await json_body(request)


OptionalJsonBody = Annotated[Any, Depends(optional_json_body)]


async def raw_body(request: Request) -> bytes:
    """The body as bytes (already bounded by the body-size middleware)."""
    return await request.body()


RawBody = Annotated[bytes, Depends(raw_body)]


def json_response_body(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer as every route writes it (decimals and dates as text, UTF-8 as is)."""
    return Response(json_response_body(data), status, headers, media_type="application/json")
