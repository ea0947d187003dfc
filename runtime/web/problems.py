"""RFC 9457 problem responses: the one table from domain errors to HTTP."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.errors import (
    AuthenticationError,
    ConflictError,
    DefinitionError,
    FormflowError,
    NotFoundError,
    PermissionDeniedError,
    PlanRefusedError,
    QueryError,
    RecordValidationError,
    StaleVersionError,
)
from engine.expressions.errors import ExpressionError
from engine.processes.errors import ProcessRuntimeError

PROBLEM_JSON = "application/problem+json"
logger = logging.getLogger("formflow.web")


class PreconditionRequiredError(FormflowError):
    """A write must say which version it read (If-Match)."""

    title = "Precondition required"


class PayloadTooLargeError(FormflowError):
    title = "Payload too large"


class BadRequestError(FormflowError):
    title = "Bad request"


class UnsupportedMediaTypeError(FormflowError):
    title = "Unsupported media type"


# Most specific first: the first matching class wins.
STATUS: list[tuple[type[FormflowError], int, str]] = [
    (StaleVersionError, 412, "stale-version"),
    (PlanRefusedError, 409, "publish-refused"),
    (ConflictError, 409, "conflict"),
    (RecordValidationError, 422, "validation"),
    (DefinitionError, 422, "invalid-definition"),
    (ExpressionError, 422, "invalid-expression"),
    (ProcessRuntimeError, 422, "process-error"),
    (QueryError, 400, "invalid-query"),
    (NotFoundError, 404, "not-found"),
    (AuthenticationError, 401, "unauthenticated"),
    (PermissionDeniedError, 403, "forbidden"),
    (PreconditionRequiredError, 428, "precondition-required"),
    (PayloadTooLargeError, 413, "payload-too-large"),
    (BadRequestError, 400, "bad-request"),
    (UnsupportedMediaTypeError, 415, "unsupported-media-type"),
]


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    type_: str = "about:blank",
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body: dict[str, Any] = {"type": type_, "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    body.update(extra)
    return Response(
        json.dumps(body, ensure_ascii=False, default=str),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def domain_problem(exc: FormflowError) -> Response:
    for cls, status, slug in STATUS:
        if isinstance(exc, cls):
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            extra: dict[str, Any] = {}
            if isinstance(exc, StaleVersionError) and exc.actual is not None:
                extra["current_version"] = exc.actual
            return problem(
                status,
                exc.title,
                exc.message,
                type_=f"urn:formflow:problem:{slug}",
                errors=[e.as_dict() for e in exc.errors],
                headers=headers,
                **extra,
            )
    logger.error("unmapped domain error", exc_info=exc)
    return problem(500, "Internal error", "An unexpected error occurred.")


def _pointer(loc: tuple[Any, ...]) -> str:
    # FastAPI locations start with the part of the request: body, query, path, header.
    return "/" + "/".join(str(p) for p in loc)


def install(app: FastAPI) -> None:
    @app.exception_handler(FormflowError)
    async def _domain(_request: Request, exc: FormflowError) -> Response:
        return domain_problem(exc)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(_request: Request, exc: RequestValidationError) -> Response:
        errors = [{"pointer": _pointer(tuple(e["loc"])), "message": e["msg"]} for e in exc.errors()]
        return problem(
            422,
            "Invalid request",
            "The request is not valid.",
            type_="urn:formflow:problem:validation",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> Response:
        return problem(
            exc.status_code,
            _reason(exc.status_code),
            str(exc.detail),
            headers=dict(exc.headers or {}),
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> Response:
        logger.exception("unhandled error", exc_info=exc)
        return problem(500, "Internal error", "An unexpected error occurred; it has been logged.")


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
