"""Approval operations over HTTP (engine.processes.approvals; docs/processes.md, "Approvals").

``POST /api/v1/tasks/{id}:transfer`` ``{to, comment}``, ``:delegate``
``{to, comment}``, ``:resolve`` ``{data, comment}`` (the delegate hands it
back), ``:add-signer`` ``{user, position, comment}``, ``:return``
``{to_element, comment}``; ``POST /api/v1/processes/instances/{id}:withdraw``
``{comment}`` and ``:cc`` ``{users, task_id, comment}``. Each answers the task
(or instance) as it is afterwards. A task or instance the caller may not see
answers 404, like a missing one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from engine.errors import ErrorDetail, NotFoundError, RecordValidationError
from engine.forms.fieldtypes import INT64_MAX
from engine.processes import inbox
from engine.processes.approvals import Approvals
from engine.processes.cc import may_see_instance
from engine.processes.instances import Actor
from runtime.web.deps import Access, Ctx, Db, OptionalJsonBody, RowId, json_response
from runtime.web.process_context import actor_of, body_fields, processes_for, visible_task

router = APIRouter(prefix="/api/v1")
REFUSED: dict[int | str, dict[str, Any]] = {
    403: {"description": "Not yours to do (only the task's assignee, the initiator, ...)"},
    404: {"description": "No such task or instance (or not yours to see)"},
    409: {"description": "Not possible as the task or process is now (done, delegated, ...)"},
    415: {"description": "The body is not JSON"},
    422: {"description": "Invalid body: an unknown user, a missing reason, ..."},
}
COMMENT = {"type": "string", "maxLength": 2000}


def _body(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "required": list(required),
    }
    if not required:
        del schema["required"]
    return {
        "requestBody": {
            "required": bool(required),
            "content": {"application/json": {"schema": schema}},
        }
    }


Act = Callable[[Approvals, Actor, dict[str, Any]], object]


def _on_task(
    task_id: int,
    request: tuple[Any, Any, Any, Any],
    kinds: dict[str, type],
    required: tuple[str, ...],
    act: Act,
) -> Response:
    """Check the body, act on a task the caller may see; the task as it is afterwards."""
    payload, conn, gate, ctx = request
    visible_task(conn, gate, task_id)
    body = body_fields(payload, kinds, required)
    act(processes_for(conn, ctx, gate), actor_of(gate), body)
    return json_response(inbox.task(conn, task_id))


TO = {"to": {"type": "string"}, "comment": COMMENT}


@router.post(
    "/tasks/{task_id}:transfer",
    tags=["tasks"],
    summary="Transfer a task to someone else (转交)",
    responses=REFUSED,
    openapi_extra=_body(TO, ("to",)),
)
def transfer(
    task_id: RowId, gate: Access, payload: OptionalJsonBody, conn: Db, ctx: Ctx
) -> Response:
    def act(p: Approvals, actor: Actor, body: dict[str, Any]) -> None:
        p.transfer(task_id, actor=actor, to=body["to"], comment=body.get("comment"))

    return _on_task(task_id, (payload, conn, gate, ctx), {"to": str, "comment": str}, ("to",), act)


@router.post(
    "/tasks/{task_id}:delegate",
    tags=["tasks"],
    summary="Delegate a task: the delegate resolves it, then it comes back to you (委派)",
    responses=REFUSED,
    openapi_extra=_body(TO, ("to",)),
)
def delegate(
    task_id: RowId, gate: Access, payload: OptionalJsonBody, conn: Db, ctx: Ctx
) -> Response:
    def act(p: Approvals, actor: Actor, body: dict[str, Any]) -> None:
        p.delegate(task_id, actor=actor, to=body["to"], comment=body.get("comment"))

    return _on_task(task_id, (payload, conn, gate, ctx), {"to": str, "comment": str}, ("to",), act)


@router.post(
    "/tasks/{task_id}:resolve",
    tags=["tasks"],
    summary="Hand a delegated task back to its owner, with your proposal",
    responses=REFUSED,
    openapi_extra=_body({"data": {"type": "object"}, "comment": COMMENT}),
)
def resolve(
    task_id: RowId, gate: Access, payload: OptionalJsonBody, conn: Db, ctx: Ctx
) -> Response:
    def act(p: Approvals, actor: Actor, body: dict[str, Any]) -> None:
        p.resolve(task_id, actor=actor, data=body.get("data"), comment=body.get("comment"))

    return _on_task(task_id, (payload, conn, gate, ctx), {"data": dict, "comment": str}, (), act)


@router.post(
    "/tasks/{task_id}:add-signer",
    tags=["tasks"],
    summary="Add a signer before you decide, or after you approve (加签)",
    responses=REFUSED,
    openapi_extra=_body(
        {
            "user": {"type": "string"},
            "position": {"type": "string", "enum": ["before", "after"]},
            "comment": COMMENT,
        },
        ("user", "position"),
    ),
)
def add_signer(
    task_id: RowId, gate: Access, payload: OptionalJsonBody, conn: Db, ctx: Ctx
) -> Response:
    def act(p: Approvals, actor: Actor, body: dict[str, Any]) -> None:
        p.add_signer(
            task_id,
            actor=actor,
            user=body["user"],
            position=body["position"],
            comment=body.get("comment"),
        )

    kinds: dict[str, type] = {"user": str, "position": str, "comment": str}
    return _on_task(task_id, (payload, conn, gate, ctx), kinds, ("user", "position"), act)


@router.post(
    "/tasks/{task_id}:return",
    tags=["tasks"],
    summary="Return the process to an earlier step, with the reason (退回)",
    responses=REFUSED,
    openapi_extra=_body(
        {"to_element": {"type": "string"}, "comment": {**COMMENT, "minLength": 1}},
        ("to_element", "comment"),
    ),
)
def return_(
    task_id: RowId, gate: Access, payload: OptionalJsonBody, conn: Db, ctx: Ctx
) -> Response:
    def act(p: Approvals, actor: Actor, body: dict[str, Any]) -> None:
        p.return_to(task_id, actor=actor, to_element=body["to_element"], comment=body["comment"])

    kinds: dict[str, type] = {"to_element": str, "comment": str}
    return _on_task(task_id, (payload, conn, gate, ctx), kinds, ("to_element", "comment"), act)


def _instance(conn: Any, gate: Any, instance_id: int) -> dict[str, Any]:
    found = inbox.instance(conn, instance_id)
    if not may_see_instance(conn, instance_id, found["started_by"], actor_of(gate)):
        raise NotFoundError(f"Process instance {instance_id} does not exist.")
    return found


@router.post(
    "/processes/instances/{instance_id}:withdraw",
    tags=["processes"],
    summary="Withdraw a process you started, until someone else has acted on it (撤回)",
    responses=REFUSED,
    openapi_extra=_body({"comment": COMMENT}),
)
def withdraw(
    instance_id: RowId, gate: Access, payload: OptionalJsonBody, conn: Db, ctx: Ctx
) -> Response:
    _instance(conn, gate, instance_id)
    body = body_fields(payload, {"comment": str})
    processes_for(conn, ctx, gate).withdraw(
        instance_id, actor=actor_of(gate), comment=body.get("comment")
    )
    return json_response(inbox.instance(conn, instance_id))


@router.post(
    "/processes/instances/{instance_id}:cc",
    tags=["processes"],
    summary="Send read-only copies of a process (or one of its tasks) to users (抄送)",
    responses=REFUSED,
    openapi_extra=_body(
        {
            "users": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 50},
            "task_id": {"type": "integer", "minimum": 1, "maximum": INT64_MAX},
            "comment": COMMENT,
        },
        ("users",),
    ),
)
def cc(instance_id: RowId, gate: Access, payload: OptionalJsonBody, conn: Db, ctx: Ctx) -> Response:
    _instance(conn, gate, instance_id)
    body = body_fields(payload, {"users": list, "task_id": int, "comment": str}, ("users",))
    if not 0 < body.get("task_id", 1) <= INT64_MAX:
        raise RecordValidationError("No such task.", [ErrorDetail("/task_id", "a task id")])
    sent = processes_for(conn, ctx, gate).cc(
        instance_id,
        actor=actor_of(gate),
        users=body["users"],
        comment=body.get("comment"),
        work_item_id=body.get("task_id"),
    )
    return json_response({"sent_to": sent})
