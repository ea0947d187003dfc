"""Processes over HTTP: publish (administrators), list, start, look at an instance.

Starting a process needs to be one of its candidate starters, when it names
them (engine/processes/starters.py), and, bound to a record, read access to
that record (through the same compiled access as the record API: out of
scope is 404).
An instance is visible to its starter, to everyone who has, had or may claim
one of its tasks, to those sent a copy (抄送), and to administrators.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from engine.errors import ErrorDetail, NotFoundError, PermissionDeniedError, RecordValidationError
from engine.processes import inbox
from engine.processes.cc import may_see_instance
from engine.processes.definitions import list_processes, publish_process
from engine.processes.starters import may_start
from runtime.process_wiring import start_process
from runtime.web.deps import (
    Access,
    Ctx,
    CurrentUser,
    Db,
    OptionalJsonBody,
    RawBody,
    RowId,
    json_response,
)
from runtime.web.problems import BadRequestError, UnsupportedMediaTypeError
from runtime.web.process_context import actor_of, body_fields

router = APIRouter(prefix="/api/v1/processes", tags=["processes"])
# Problem responses besides the ones every operation documents (runtime.web.openapi).
REFUSED: dict[int | str, dict[str, Any]] = {
    403: {"description": "Not allowed"},
    415: {"description": "Not the expected media type"},
    422: {"description": "Invalid input"},
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "Conflict with the process's current state"}
}


@router.get(
    "",
    summary="List published processes",
    description="Each with `startable`: whether the caller may start it (its candidate "
    "starters; a process that names none may be started by anyone signed in).",
)
def list_(conn: Db, gate: Access, ctx: Ctx) -> Response:
    actor = actor_of(gate)
    items = [
        {
            **item,
            "startable": may_start(
                conn, ctx.process_specs.get(conn, item["key"], item["version"]), actor
            ),
        }
        for item in list_processes(conn)
    ]
    return json_response({"items": items})


@router.post(
    "",
    summary="Publish a BPMN 2.0 file as a new version of its process (administrators)",
    description='The body is `{"bpmn": "<the BPMN XML>"}`; a raw BPMN file sent as '
    "`application/xml` is accepted too (`curl --data-binary @loan.bpmn`).",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["bpmn"],
                        "additionalProperties": False,
                        "properties": {"bpmn": {"type": "string", "maxLength": 2_000_000}},
                    }
                }
            },
        }
    },
    responses={201: {"description": "Published"}, 200: {"description": "Unchanged"}, **REFUSED},
)
def publish(request: Request, user: CurrentUser, raw: RawBody, conn: Db, ctx: Ctx) -> Response:
    if not user.is_superuser:
        raise PermissionDeniedError("Only administrators publish processes.")
    text = _bpmn_text(request.headers.get("content-type", ""), raw)
    result = publish_process(
        conn, text, actor_id=user.user_id, now=ctx.clock(), scripts=ctx.settings.script_tasks
    )
    body = {
        "key": result.key,
        "name": result.name,
        "version": result.version,
        "changed": result.changed,
        "warnings": [w.as_dict() for w in result.warnings],
    }
    return json_response(body, 201 if result.changed else 200)


def _bpmn_text(content_type: str, raw: bytes) -> str:
    kind = content_type.split(";")[0].strip().lower()
    if kind in ("application/xml", "text/xml"):
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise RecordValidationError(
                "The BPMN file must be UTF-8.", [ErrorDetail("", "not UTF-8")]
            ) from None
    if kind != "application/json" and not kind.endswith("+json"):
        raise UnsupportedMediaTypeError('Send {"bpmn": ...} as JSON, or the file as XML.')
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequestError("The body is not valid JSON.") from None
    if not isinstance(body, dict) or set(body) != {"bpmn"} or not isinstance(body["bpmn"], str):
        raise RecordValidationError(
            'The body is {"bpmn": "<BPMN XML>"}.', [ErrorDetail("/bpmn", "the BPMN XML as text")]
        )
    return body["bpmn"]


@router.post(
    "/{key}/instances",
    summary="Start a process (optionally bound to a record)",
    status_code=201,
    responses={404: {"description": "No such process or record"}, **REFUSED, **CONFLICT},
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "data": {"type": "object"},
                            "record": {
                                "type": "object",
                                "required": ["form", "id"],
                                "properties": {
                                    "form": {"type": "string"},
                                    "id": {"type": "integer", "minimum": 1},
                                },
                            },
                        },
                    }
                }
            }
        }
    },
)
def start(key: str, gate: Access, payload: OptionalJsonBody, conn: Db, ctx: Ctx) -> Response:
    body = body_fields(payload, {"data": dict, "record": dict})
    record = body.get("record")
    bound = None
    if record is not None:
        form, record_id = (
            (record.get("form"), record.get("id")) if isinstance(record, dict) else (None, None)
        )
        if (
            not isinstance(form, str)
            or not isinstance(record_id, int)
            or isinstance(record_id, bool)
        ):
            raise RecordValidationError(
                "record is {form, id}.", [ErrorDetail("/record", "an object with form and id")]
            )
        bound = (form, record_id)
    instance_id = start_process(
        conn,
        gate,
        key,
        data=body.get("data") or {},
        record=bound,
        specs=ctx.process_specs,
        clock=ctx.clock,
    )
    return json_response(inbox.instance(conn, instance_id), 201)


@router.get(
    "/instances/{instance_id}",
    summary="A process instance: its tasks and history",
    responses={404: {"description": "No such instance (or not yours to see)"}},
)
def get_instance(instance_id: RowId, conn: Db, gate: Access) -> Response:
    found = inbox.instance(conn, instance_id)
    if not may_see_instance(conn, instance_id, found["started_by"], actor_of(gate)):
        raise NotFoundError(f"Process instance {instance_id} does not exist.")
    return json_response(found)
