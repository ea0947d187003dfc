"""``/openapi.json`` and ``/docs``: the API description, tailored to the caller.

Without credentials the document describes every published form; with them
(the Swagger UI sends the session cookie) it describes what that caller may
do — see :mod:`runtime.web.openapi_access`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from permissions.gate import Gate, load_caller
from runtime.auth.service import authenticate
from runtime.web.deps import Ctx, credential

router = APIRouter(include_in_schema=False)


@router.get("/openapi.json")
def openapi_document(request: Request, ctx: Ctx) -> JSONResponse:
    full = request.app.openapi
    found = credential(request)
    if found is None:
        return JSONResponse(full())
    with ctx.engine.connect() as conn, conn.begin():
        principal = authenticate(conn, found, now=ctx.clock())
        if principal.is_superuser:
            return JSONResponse(full())
        caller = load_caller(conn, principal.user_id)
        gate = Gate.open(conn, ctx.access, caller, ctx.schemas.get(conn))
        return JSONResponse(ctx.documents.get(full, gate))


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json", title=f"{request.app.title} - Swagger UI"
    )
