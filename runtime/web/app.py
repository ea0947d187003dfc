"""The application factory: the composition root of the web layer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI

from engine.db import create_engine
from runtime.database import engine_from_settings
from runtime.jobs import embedded_worker
from runtime.settings import Settings, load_settings
from runtime.web import problems
from runtime.web.context import AppContext, SchemaCache
from runtime.web.limits import BodyLimitMiddleware
from runtime.web.openapi import OpenAPIBuilder
from runtime.web.routes import (
    admin_audit,
    admin_departments,
    admin_jobs,
    admin_policy,
    admin_roles,
    admin_users,
    approvals,
    auth,
    docs,
    forms,
    health,
    permissions,
    processes,
    records,
    tasks,
)

DESCRIPTION = """
Formflow's REST API. Every published form has typed endpoints under
`/api/v1/forms/{form}/records`. Errors are RFC 9457 problem documents
(`application/problem+json`) whose `errors[]` point at the offending field
with a JSON pointer. Writes to an existing record need `If-Match` with the
record's `ETag`.
"""


def create_app(
    settings: Settings,
    *,
    engine: sa.Engine | None = None,
    schema_ttl: float = 1.0,
    run_jobs: bool = False,
) -> FastAPI:
    """The app on ``engine`` (default: one from ``settings``).

    ``run_jobs``: the app's lifespan runs the embedded jobs worker (a thread,
    stopped and joined at shutdown) unless ``settings.worker`` is ``off``.
    Off by default, so an app built by a test or an embedder starts no
    thread of its own; ``formflow serve`` and :func:`app_from_env` pass True.
    """
    engine = engine or create_engine(
        settings.database_url, statement_timeout_ms=settings.statement_timeout_ms or None
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx: AppContext = app.state.ctx
        async with embedded_worker(ctx.settings, ctx.engine) as worker:
            app.state.jobs_worker = worker
            yield

    app = FastAPI(
        title="Formflow",
        version="0.1.0",
        description=DESCRIPTION,
        # Served by routes.docs, which tailors the document to the caller.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan if run_jobs else None,
    )
    app.state.ctx = AppContext(settings=settings, engine=engine, schemas=SchemaCache(schema_ttl))
    problems.install(app)
    for module in (health, docs, auth, forms, permissions, records, processes, tasks, approvals):
        app.include_router(module.router)
    admins = (admin_users, admin_departments, admin_roles, admin_policy, admin_audit, admin_jobs)
    for admin in admins:
        app.include_router(admin.router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)

    builder = OpenAPIBuilder(app)

    def openapi() -> dict[str, Any]:
        ctx: AppContext = app.state.ctx
        with ctx.engine.connect() as conn:
            return builder.build(ctx.schemas.get(conn))

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def app_from_env() -> FastAPI:
    """The app configured from ``FORMFLOW_*`` variables: a factory for uvicorn.

    ``formflow serve --workers N`` runs ``runtime.web.app:app_from_env`` with
    ``factory=True``; each worker process builds its own app and engine, and
    runs its own embedded jobs worker unless ``FORMFLOW_WORKER=off``.
    """
    settings = load_settings()
    return create_app(settings, engine=engine_from_settings(settings), run_jobs=True)
