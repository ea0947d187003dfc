"""What process commands need from a request: the actor, and an engine wired to the app.

The wiring itself (actor, codec checks, record values and write-back) is in
:mod:`runtime.process_wiring`, shared with the command line; this module
hands it the app's spec cache and clock, and checks request bodies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from engine.errors import ErrorDetail, NotFoundError, RecordValidationError
from engine.processes import inbox
from engine.processes.approvals import Approvals
from permissions.gate import Gate
from runtime import process_wiring
from runtime.process_wiring import actor_of
from runtime.web.context import AppContext

__all__ = ["actor_of", "body_fields", "processes_for", "visible_task"]


def processes_for(conn: sa.Connection, ctx: AppContext, gate: Gate) -> Approvals:
    return process_wiring.processes_for(conn, gate, specs=ctx.process_specs, clock=ctx.clock)


def body_fields(
    payload: Any, kinds: Mapping[str, type], required: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A process or task operation's JSON body, checked: all problems at once, at pointers.

    ``kinds`` maps each member the operation takes to its JSON type; an
    absent body is an empty object.
    """
    body = payload if payload is not None else {}
    if not isinstance(body, dict):
        raise RecordValidationError("The body must be a JSON object.", [ErrorDetail("", "object")])
    problems = [
        ErrorDetail(f"/{k}", f"unknown member {k!r}") for k in sorted(set(body) - set(kinds))
    ]
    for key, kind in kinds.items():
        value = body.get(key)
        if value is None:
            if key in required:
                problems.append(ErrorDetail(f"/{key}", "required"))
        elif not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            problems.append(ErrorDetail(f"/{key}", f"must be {_KIND_NAMES[kind]}"))
    if problems:
        raise RecordValidationError("The body is not what this operation takes.", problems)
    return body


_KIND_NAMES = {str: "text", dict: "an object", list: "a list", int: "a whole number"}


def visible_task(conn: sa.Connection, gate: Gate, task_id: int) -> dict[str, Any]:
    """The task, if the caller may see it; else the same 404 as a missing one."""
    item = inbox.task(conn, task_id)
    if not inbox.may_see_task(conn, item, actor_of(gate)):
        raise NotFoundError(f"Task {task_id} does not exist.")
    return item
