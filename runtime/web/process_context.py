"""What process commands need from a request: the actor, and an engine wired to the app.

The actor's roles are those of the compiled policy (inherited ones
included) and their departments those the gate loaded, so task candidates
match exactly the people permissions know. Task data is checked against the
task's form with the record codec (all problems at once, each at its
pointer), like a record payload. The engine is :class:`Approvals`: processes
with every approval operation (transfer, delegate, signers, return, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from engine.errors import ErrorDetail, NotFoundError, RecordValidationError
from engine.processes import inbox
from engine.processes.approvals import Approvals
from engine.processes.instances import Actor, Context
from engine.records.codec import codec_for
from permissions.gate import Gate
from permissions.records import GuardedRecords
from runtime.web.context import AppContext


def actor_of(gate: Gate) -> Actor:
    caller = gate.caller
    return Actor(
        user_id=caller.user_id,
        roles=gate.roles(),
        dept_ids=caller.user.dept_ids,
        superuser=caller.superuser,
    )


def processes_for(conn: sa.Connection, ctx: AppContext, gate: Gate) -> Approvals:
    def validate_form(form: str, values: Any) -> dict[str, Any]:
        codec_for(gate.schema.form(form).definition).parse(values, partial=True)
        return dict(values)

    def record_values(form: str, record_id: int) -> dict[str, Any]:
        # The process reads its record as the system does: the caller's right
        # to bind it was checked when the process was started.
        tables = gate.schema.form(form)
        t = tables.table
        row = conn.execute(sa.select(t).where(t.c.id == record_id)).one()
        keys = [f.key for f in tables.definition.column_fields]
        keys += ["owner_id", "dept_id", "created_by"]
        return {k: row._mapping[k] for k in keys}

    def write_record(form: str, record_id: int, values: Mapping[str, Any]) -> None:
        # A task form that is the bound record's form changes the record, with
        # the actor's own rights (scope, field levels), like the record API.
        records = GuardedRecords(conn, gate, form, clock=ctx.clock)
        current = records.store.get(record_id, fields=(), scope=gate.scope(form, "update"))
        records.update(record_id, dict(values), expected_version=current["version"])

    return Approvals(
        Context(
            conn,
            ctx.process_specs,
            ctx.clock,
            validate_form=validate_form,
            record_values=record_values,
            write_record=write_record,
        )
    )


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
