"""Liveness and readiness probes (no authentication)."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter
from fastapi.responses import Response

import migrations
from runtime.web.deps import Ctx
from runtime.web.problems import problem

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive", openapi_extra={"security": []})
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database is reachable and migrated",
    response_model=None,
    openapi_extra={"security": []},
    responses={503: {"description": "Not ready", "content": {"application/problem+json": {}}}},
)
def readyz(ctx: Ctx) -> Response | dict[str, str]:
    try:
        with ctx.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
            current = migrations.is_current(conn)
    except sa.exc.SQLAlchemyError:
        return problem(503, "Service Unavailable", "The database is not reachable.")
    if not current:
        return problem(503, "Service Unavailable", "Run `formflow db upgrade`: migrations pending.")
    return {"status": "ready"}
