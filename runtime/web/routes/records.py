"""Generated record endpoints: one set of handlers serves every published form.

The handlers are generic (the form is a path parameter) so a newly published
form is served at once, without adding routes at run time; the OpenAPI
document still describes each form's concrete paths and typed bodies
(:mod:`runtime.web.openapi`).
"""

from __future__ import annotations

import re
from typing import Any, TypeGuard

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import Response

from engine.errors import (
    ConflictError,
    ErrorDetail,
    FormflowError,
    NotFoundError,
    PermissionDeniedError,
    QueryError,
    RecordValidationError,
    StaleVersionError,
)
from engine.forms.fieldtypes import INT64_MAX
from engine.records.query import ListQuery
from permissions.gate import Gate
from permissions.records import GuardedRecords
from runtime.web.context import AppContext
from runtime.web.deps import Access, Ctx, Db, JsonBody, RowId, json_response
from runtime.web.listing import MAX_BATCH, parse_list_query, request_pointer
from runtime.web.problems import BadRequestError, PreconditionRequiredError

router = APIRouter(prefix="/api/v1/forms/{form}", include_in_schema=False)

# FastAPI resolves a handler's dependencies in the order of its parameters:
# ``gate`` (which authenticates) comes before the body, so a caller who is not authenticated gets
# 401, never a 400/415 that would tell them about the body.

_IF_MATCH = re.compile(r'^\s*(?:W/)?"?(\d{1,9})"?\s*$')


def _etag(record: dict[str, Any]) -> dict[str, str]:
    return {"ETag": f'"{record["version"]}"'}


def _expected_version(request: Request) -> int:
    header = request.headers.get("if-match")
    if header is None:
        raise PreconditionRequiredError(
            "Send If-Match with the ETag you read, so that no one else's change is overwritten."
        )
    match = _IF_MATCH.match(header)
    if match is None:
        raise BadRequestError(f'If-Match must be the record\'s ETag, like "3"; got {header!r}.')
    return int(match.group(1))


def _records(conn: sa.Connection, gate: Gate, form: str, ctx: AppContext) -> GuardedRecords:
    return GuardedRecords(conn, gate, form, clock=ctx.clock)


def _in_request(exc: FormflowError, query: ListQuery) -> FormflowError:
    """The same error with engine pointers turned into pointers into the request."""
    errors = [ErrorDetail(request_pointer(e.pointer, query), e.message) for e in exc.errors]
    return type(exc)(exc.message, errors)


@router.get("/records")
def list_(form: str, request: Request, conn: Db, ctx: Ctx, gate: Access) -> Response:
    query, expand, with_count = parse_list_query(
        request.query_params.multi_items(), max_limit=ctx.settings.max_page_size
    )
    records = _records(conn, gate, form, ctx)
    try:
        listing = records.page(query, count=with_count)
        if expand:
            records.expand(listing.page.items, expand)
    except (QueryError, PermissionDeniedError) as exc:
        raise _in_request(exc, query) from None
    body: dict[str, Any] = {
        "items": listing.page.items,
        "next_cursor": listing.page.next_cursor,
        "limit": query.limit,
    }
    if listing.total is not None:
        body["total"] = listing.total
    return json_response(body)


@router.post("/records")
def create(form: str, gate: Access, payload: JsonBody, conn: Db, ctx: Ctx) -> Response:
    record = _records(conn, gate, form, ctx).create(payload)
    headers = {**_etag(record), "Location": f"/api/v1/forms/{form}/records/{record['id']}"}
    return json_response(record, 201, headers)


@router.get("/records/{record_id}")
def get(
    form: str, record_id: RowId, request: Request, conn: Db, ctx: Ctx, gate: Access
) -> Response:
    fields_param = request.query_params.get("fields")
    fields = [f for f in fields_param.split(",") if f] if fields_param is not None else None
    records = _records(conn, gate, form, ctx)
    if fields is not None:
        unknown = [f for f in fields if records.definition.field(f) is None and f not in ("id",)]
        if unknown:
            raise QueryError(
                "Unknown field in 'fields'.",
                [ErrorDetail("/query/fields", f"unknown field {f!r}") for f in unknown],
            )
    try:
        record = records.get(record_id, fields=fields)
    except QueryError as exc:
        raise QueryError(
            exc.message, [ErrorDetail("/query/fields", e.message) for e in exc.errors]
        ) from None
    return json_response(record, headers=_etag(record))


@router.get("/records/{record_id}/history")
def history(form: str, record_id: RowId, conn: Db, ctx: Ctx, gate: Access) -> Response:
    """The record's audit trail: who changed what and when, masked like the record."""
    return json_response({"items": _records(conn, gate, form, ctx).history(record_id)})


@router.patch("/records/{record_id}")
def update(
    form: str,
    record_id: RowId,
    request: Request,
    gate: Access,
    payload: JsonBody,
    conn: Db,
    ctx: Ctx,
) -> Response:
    expected = _expected_version(request)
    record = _records(conn, gate, form, ctx).update(record_id, payload, expected_version=expected)
    return json_response(record, headers=_etag(record))


@router.delete("/records/{record_id}")
def delete(
    form: str, record_id: RowId, request: Request, conn: Db, ctx: Ctx, gate: Access
) -> Response:
    expected = _expected_version(request)
    _records(conn, gate, form, ctx).delete(record_id, expected_version=expected)
    return Response(status_code=204)


@router.post("/records:batch")
def batch(form: str, gate: Access, payload: JsonBody, conn: Db, ctx: Ctx) -> Response:
    """Create and update up to 1,000 records: all of them, or none."""
    operations = payload.get("operations") if isinstance(payload, dict) else None
    if not isinstance(operations, list) or not 1 <= len(operations) <= MAX_BATCH:
        raise RecordValidationError(
            "A batch is an object with 'operations': a list of 1..1000 operations.",
            [ErrorDetail("/operations", f"a list of 1..{MAX_BATCH} operations")],
        )
    store = _records(conn, gate, form, ctx)
    results: list[dict[str, Any]] = []
    errors: list[ErrorDetail] = []
    denied = False
    for start, run in _runs(operations):
        try:
            results.extend(_run(store, run, start))
        except (
            RecordValidationError,
            NotFoundError,
            StaleVersionError,
            ConflictError,
            PermissionDeniedError,
        ) as exc:
            errors.extend(_locate(exc, start, creates=_is_create(run[0])))
            denied = denied or isinstance(exc, PermissionDeniedError)
            if isinstance(exc, ConflictError) and exc.__cause__ is not None:
                break  # the database refused a statement: the transaction is unusable
    if denied:
        raise PermissionDeniedError(
            f"The batch was refused: {len(errors)} problem(s); nothing was saved.", errors
        )
    if errors:
        # Raising makes the edge roll back every operation that did succeed.
        raise RecordValidationError(
            f"The batch was rejected: {len(errors)} problem(s); nothing was saved.", errors
        )
    return json_response({"results": results})


def _is_create(op: Any) -> bool:
    return isinstance(op, dict) and op.get("op") == "create"


def _runs(operations: list[Any]) -> list[tuple[int, list[Any]]]:
    """Consecutive creates form one run (created together); any other op is a run of one."""
    runs: list[tuple[int, list[Any]]] = []
    for i, op in enumerate(operations):
        if _is_create(op) and runs and _is_create(runs[-1][1][0]):
            runs[-1][1].append(op)
        else:
            runs.append((i, [op]))
    return runs


def _run(store: GuardedRecords, run: list[Any], start: int) -> list[dict[str, Any]]:
    if _is_create(run[0]):
        records = store.create_many([op.get("data") for op in run])
        return [
            {"op": "create", "id": r["id"], "version": r["version"], "record": r} for r in records
        ]
    return [_run_update(store, run[0])]


def _locate(exc: FormflowError, start: int, *, creates: bool) -> list[ErrorDetail]:
    """Point each problem at its operation: /operations/{i}/data/<field>."""
    details = exc.errors or [ErrorDetail("", exc.message)]
    located = []
    for e in details:
        index, pointer = start, e.pointer
        if creates and pointer:
            # create_many prefixes each pointer with the payload's index in the run.
            head, _, rest = pointer[1:].partition("/")
            index, pointer = start + int(head), f"/{rest}" if rest else ""
        base = f"/operations/{index}"
        located.append(ErrorDetail(f"{base}/data{pointer}" if pointer else base, e.message))
    return located


def _run_update(store: GuardedRecords, op: Any) -> dict[str, Any]:
    if not isinstance(op, dict) or op.get("op") != "update":
        raise RecordValidationError(
            "Bad operation.", [ErrorDetail("", "op is 'create' or 'update'")]
        )
    data = op.get("data")
    record_id, version = op.get("id"), op.get("version")
    if not (_is_int(record_id) and 1 <= record_id <= INT64_MAX and _is_int(version)):
        raise RecordValidationError(
            "An update needs id and version.",
            [ErrorDetail("", "an update needs the integer 'id' and the 'version' you read")],
        )
    record = store.update(record_id, data, expected_version=version)
    return {"op": "update", "id": record["id"], "version": record["version"], "record": record}


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
