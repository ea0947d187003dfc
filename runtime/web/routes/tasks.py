"""The task inbox and the approval operations: ``/api/v1/tasks``.

``GET /api/v1/tasks?view=mine|group|started|done`` reads the work-item
projection only; ``view=cc`` lists the copies sent to the caller. Operations
are ``POST /api/v1/tasks/{id}:claim``, ``:unclaim``, ``:complete``,
``:approve`` and ``:reject`` (the last three with
``{"data": {...}, "comment": "..."}``); each checks that the caller may act
on the task and answers the task as it is afterwards. A task the caller may
not see answers 404, like a missing one. Transfer, delegate, add signer and
return are in ``routes/approvals.py``.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import Response

from engine.processes import inbox
from engine.processes.cc import copies
from runtime.web.deps import Access, Ctx, Db, OptionalJsonBody, RowId, json_response
from runtime.web.process_context import actor_of, body_fields, processes_for, visible_task

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])
ACT: dict[int | str, dict[str, Any]] = {
    403: {"description": "Not yours to act on"},
    404: {"description": "No such task (or not yours to see)"},
    409: {"description": "The task is already done, or someone else acted first"},
    415: {"description": "The body is not JSON"},
    422: {"description": "Invalid data for the task's form"},
}

COMPLETE_BODY = {
    "requestBody": {
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "data": {"type": "object", "description": "the task form's fields"},
                        "comment": {"type": "string", "maxLength": 2000},
                    },
                }
            }
        }
    }
}


@router.get(
    "",
    summary="My tasks, my group's tasks, processes I started, tasks I did, copies sent to me",
    description="`view=cc` lists the copies (抄送) sent to the caller: read-only, no task.",
)
def list_(
    conn: Db,
    gate: Access,
    view: Literal["mine", "group", "started", "done", "cc"] = "mine",
    limit: int = 50,
) -> Response:
    if view == "cc":
        return json_response({"items": copies(conn, actor_of(gate), limit=limit)})
    return json_response({"items": inbox.tasks(conn, actor_of(gate), view, limit=limit)})


@router.get("/{task_id}", summary="A task", responses={404: ACT[404]})
def get(task_id: RowId, conn: Db, gate: Access) -> Response:
    return json_response(visible_task(conn, gate, task_id))


@router.post("/{task_id}:claim", summary="Take a group task", responses=ACT)
def claim(task_id: RowId, conn: Db, gate: Access, ctx: Ctx) -> Response:
    visible_task(conn, gate, task_id)
    processes_for(conn, ctx, gate).claim(task_id, actor=actor_of(gate))
    return json_response(inbox.task(conn, task_id))


@router.post("/{task_id}:unclaim", summary="Give a claimed task back to the group", responses=ACT)
def unclaim(task_id: RowId, conn: Db, gate: Access, ctx: Ctx) -> Response:
    visible_task(conn, gate, task_id)
    processes_for(conn, ctx, gate).unclaim(task_id, actor=actor_of(gate))
    return json_response(inbox.task(conn, task_id))


def _finish(task_id: int, outcome: str, payload: Any, conn: Any, gate: Any, ctx: Any) -> Response:
    visible_task(conn, gate, task_id)
    body = body_fields(payload, {"data": dict, "comment": str})
    data, comment = body.get("data") or {}, body.get("comment")
    processes_for(conn, ctx, gate).complete(
        task_id, actor=actor_of(gate), data=data, outcome=outcome, comment=comment
    )
    return json_response(inbox.task(conn, task_id))


@router.post(
    "/{task_id}:complete", summary="Complete a task", responses=ACT, openapi_extra=COMPLETE_BODY
)
def complete(
    task_id: RowId, gate: Access, payload: OptionalJsonBody, conn: Db, ctx: Ctx
) -> Response:
    return _finish(task_id, "submit", payload, conn, gate, ctx)


@router.post(
    "/{task_id}:approve",
    summary="Approve (with a comment)",
    responses=ACT,
    openapi_extra=COMPLETE_BODY,
)
def approve(
    task_id: RowId, gate: Access, payload: OptionalJsonBody, conn: Db, ctx: Ctx
) -> Response:
    return _finish(task_id, "approve", payload, conn, gate, ctx)


@router.post(
    "/{task_id}:reject",
    summary="Reject (with a comment)",
    responses=ACT,
    openapi_extra=COMPLETE_BODY,
)
def reject(task_id: RowId, gate: Access, payload: OptionalJsonBody, conn: Db, ctx: Ctx) -> Response:
    return _finish(task_id, "reject", payload, conn, gate, ctx)
