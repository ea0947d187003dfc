"""Process commands wired to records and permissions, for every edge that gives them.

The web routes and the ``formflow process`` commands both act as a person
through that person's :class:`~permissions.gate.Gate`, so they share this
module and cannot drift apart in what they allow.

The actor's roles are those of the compiled policy (inherited ones
included) and their departments those the gate loaded, so task candidates
match exactly the people permissions know. Task data is checked against the
task's form with the record codec (all problems at once, each at its
pointer), like a record payload. The engine is :class:`Approvals`: processes
with every approval operation (transfer, delegate, signers, return, ...).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from engine.processes.approvals import Approvals
from engine.processes.definitions import SpecCache
from engine.processes.instances import Actor, Context
from engine.records.codec import codec_for
from permissions.gate import Gate
from permissions.records import GuardedRecords


def actor_of(gate: Gate) -> Actor:
    caller = gate.caller
    return Actor(
        user_id=caller.user_id,
        roles=gate.roles(),
        dept_ids=caller.user.dept_ids,
        superuser=caller.superuser,
    )


def processes_for(
    conn: sa.Connection,
    gate: Gate,
    *,
    specs: SpecCache,
    clock: Callable[[], dt.datetime],
) -> Approvals:
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
        records = GuardedRecords(conn, gate, form, clock=clock)
        current = records.store.get(record_id, fields=(), scope=gate.scope(form, "update"))
        records.update(record_id, dict(values), expected_version=current["version"])

    return Approvals(
        Context(
            conn,
            specs,
            clock,
            validate_form=validate_form,
            record_values=record_values,
            write_record=write_record,
        )
    )


def start_process(
    conn: sa.Connection,
    gate: Gate,
    key: str,
    *,
    data: Mapping[str, Any],
    record: tuple[str, int] | None,
    specs: SpecCache,
    clock: Callable[[], dt.datetime],
) -> int:
    """Start the current version of ``key`` as the gate's caller; the instance id.

    A bound record must be readable by the caller through the same compiled
    access as the record API, so one out of their scope is "does not exist"
    (NotFoundError) and nothing is started.
    """
    if record is not None:
        GuardedRecords(conn, gate, record[0]).get(record[1], fields=())
    engine = processes_for(conn, gate, specs=specs, clock=clock)
    return engine.start(key, actor=actor_of(gate), data=data, record=record)
