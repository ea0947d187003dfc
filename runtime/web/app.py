"""The application factory: the composition root of the web layer."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI

from engine.db import create_engine
from runtime.database import engine_from_settings
from runtime.settings import Settings, load_settings
from runtime.web import problems
from runtime.web.context import AppContext, SchemaCache
from runtime.web.limits import BodyLimitMiddleware
from runtime.web.openapi import OpenAPIBuilder
from runtime.web.routes import (
    admin_audit,
    admin_departments,
    admin_policy,
    admin_roles,
    admin_users,
    auth,
    docs,
    forms,
    health,
    permissions,
    records,
)

DESCRIPTION = """
Formflow's REST API. Every published form has typed endpoints under
`/api/v1/forms/{form}/records`. Errors are RFC 9457 problem documents
(`application/problem+json`) whose `errors[]` point at the offending field
with a JSON pointer. Writes to an existing record need `If-Match` with the
record's `ETag`.
"""


def create_app(
    settings: Settings, *, engine: sa.Engine | None = None, schema_ttl: float = 1.0
) -> FastAPI:
    engine = engine or create_engine(
        settings.database_url, statement_timeout_ms=settings.statement_timeout_ms or None
    )
    app = FastAPI(
        title="Formflow",
        version="0.1.0",
        description=DESCRIPTION,
        # Served by routes.docs, which tailors the document to the caller.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = AppContext(settings=settings, engine=engine, schemas=SchemaCache(schema_ttl))
    problems.install(app)
    for module in (health, docs, auth, forms, permissions, records):
        app.include_router(module.router)
    for admin in (admin_users, admin_departments, admin_roles, admin_policy, admin_audit):
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
    ``factory=True``; each worker process builds its own app and engine.
    """
    settings = load_settings()
    return create_app(settings, engine=engine_from_settings(settings))
