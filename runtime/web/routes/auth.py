"""Login for people, API keys for integrators."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from engine.errors import PermissionDeniedError
from runtime.auth import service
from runtime.web.deps import SESSION_COOKIE, Ctx, CurrentUser, Db, RowId

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=256)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: dt.datetime


class Me(BaseModel):
    id: int
    username: str
    display_name: str
    is_superuser: bool
    authenticated_by: str


class ApiKeyRequest(BaseModel):
    # Not ApiKeyCreate: that is the name of form api_key's schema (<Form>Create).

    name: str = Field(min_length=1, max_length=100)
    user: str | None = Field(
        default=None, description="Username the key acts as (superusers only); default: you."
    )


class ApiKeyCreated(BaseModel):
    id: int
    name: str
    key: str = Field(description="Shown once: store it now, it cannot be read again.")


class ApiKey(BaseModel):
    id: int
    user_id: int
    name: str
    prefix: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None


@router.post(
    "/login",
    response_model=TokenResponse,
    summary="Log in with a password",
    openapi_extra={"security": []},  # the one API route that needs no credentials
    responses={401: {"description": "Wrong username or password, or an inactive account"}},
)
def login(
    body: LoginRequest, request: Request, response: Response, conn: Db, ctx: Ctx
) -> TokenResponse:
    token, expires, _ = service.login(
        conn,
        username=body.username,
        password=body.password,
        now=ctx.clock(),
        ttl=ctx.session_ttl,
    )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        max_age=int(ctx.session_ttl.total_seconds()),
    )
    return TokenResponse(access_token=token, expires_at=expires)


@router.post("/logout", status_code=204, summary="Revoke the current session")
def logout(request: Request, conn: Db, ctx: Ctx, user: CurrentUser) -> Response:
    if user.via == "token":
        header = request.headers.get("authorization", "")
        token = header.partition(" ")[2].strip() or request.cookies.get(SESSION_COOKIE, "")
        service.logout(conn, token, now=ctx.clock())
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/me", response_model=Me, summary="Who am I")
def me(user: CurrentUser) -> Me:
    return Me(
        id=user.user_id,
        username=user.username,
        display_name=user.display_name,
        is_superuser=user.is_superuser,
        authenticated_by=user.via,
    )


@router.post(
    "/api-keys",
    response_model=ApiKeyCreated,
    status_code=201,
    summary="Create an API key (the secret is shown once)",
    responses={403: {"description": "Not an administrator"}, 404: {"description": "No such user"}},
)
def create_api_key(body: ApiKeyRequest, conn: Db, ctx: Ctx, user: CurrentUser) -> ApiKeyCreated:
    owner = user.user_id
    if body.user is not None and body.user != user.username:
        if not user.is_superuser:
            raise PermissionDeniedError("Only administrators create keys for other accounts.")
        owner = service.find_user_id(conn, body.user)
    key_id, secret = service.create_api_key(
        conn, user_id=owner, name=body.name, created_by=user.user_id, now=ctx.clock()
    )
    return ApiKeyCreated(id=key_id, name=body.name, key=secret)


@router.get("/api-keys", response_model=list[ApiKey], summary="List API keys")
def list_api_keys(conn: Db, user: CurrentUser) -> list[ApiKey]:
    rows = service.list_api_keys(conn, user_id=None if user.is_superuser else user.user_id)
    return [ApiKey(**r) for r in rows]


@router.delete("/api-keys/{key_id}", status_code=204, summary="Revoke an API key")
def revoke_api_key(key_id: RowId, conn: Db, ctx: Ctx, user: CurrentUser) -> Response:
    service.revoke_api_key(
        conn, key_id, owner_id=None if user.is_superuser else user.user_id, now=ctx.clock()
    )
    return Response(status_code=204)
