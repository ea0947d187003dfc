"""The jobs worker's side of service tasks: call the connector, then complete the task.

``service_preparers(specs, clock, connectors)`` gives the prepare step of
``process.service`` jobs (:meth:`engine.jobs.HandlerRegistry.register_prepared`);
the runtime registers it with the connectors it ships (``connectors/``).
One run:

1. with no transaction open, read the instance *without locking it* and
   build the request from the waiting task's data; a task no longer waiting
   makes the job a no-op;
2. still outside any transaction, call the connector, bounded in time and
   size: no row is locked while the other side thinks, and on SQLite the
   single write lock is free for everyone else;
3. in the job's transaction: lock the instance, check again that the task
   still waits (the instance may have been withdrawn, or returned past the
   task, during the call), store the answer, complete the task, run on,
   save, project, record the history and schedule the waits that follow.

A connector error the other side may get over (5xx, network, timeout) is
raised as it is: the job retries with backoff. A refusal (4xx) and a
process that cannot go on become :class:`~engine.jobs.PermanentJobError`:
an incident at once, retried by an operator once the cause is fixed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from engine.calendar import BusinessCalendar
from engine.jobs import Job, PermanentJobError, Prepare
from engine.processes.definitions import SpecCache
from engine.processes.errors import ProcessRuntimeError
from engine.processes.instances import Context, Processes, task_by_id
from engine.processes.service_config import ServiceConfig, service_config
from engine.processes.service_spec import finish, is_waiting
from engine.processes.services import (
    SERVICE,
    Connector,
    ConnectorRejected,
    ServiceRequest,
    build_request,
    result_data,
    schedule_services,
)
from engine.processes.state import load
from engine.processes.tables import RUNNING, instance_table
from engine.processes.timers import schedule_timers

Handler = Callable[[sa.Connection, Job], None]


def service_preparers(
    specs: SpecCache,
    clock: Callable[[], dt.datetime],
    connectors: Mapping[str, Connector],
    calendar: BusinessCalendar | None = None,
) -> dict[str, Prepare]:
    def on_service(engine: sa.Engine, job: Job) -> Handler:
        instance_id, task_id = int(job.payload["instance"]), str(job.payload["task"])
        with engine.connect() as reading:
            call = _call(Processes(Context(reading, specs, clock, calendar)), instance_id, task_id)
        if call is None:
            return _nothing  # nothing waits for this call any more
        element, config, request = call
        connector = connectors.get(request.connector)
        if connector is None:
            raise PermanentJobError(f"No connector {request.connector!r} is installed.")
        try:
            response = connector(request)
            data = result_data(element, config, response)
        except (ConnectorRejected, ProcessRuntimeError) as exc:
            raise PermanentJobError(str(exc)) from exc
        summary = {"method": request.method, "url": request.url, "status": response.status}
        return lambda conn, _job: _complete(conn, instance_id, task_id, element, data, summary)

    def _complete(
        conn: sa.Connection,
        instance_id: int,
        task_id: str,
        element: str,
        data: dict[str, Any],
        summary: dict[str, Any],
    ) -> None:
        p = Processes(Context(conn, specs, clock, calendar))
        instance = p._lock_instance(instance_id)
        if instance.status != RUNNING:
            return  # withdrawn during the call
        parsed = specs.get(conn, instance.process_key, instance.process_version)
        workflow = load(instance.state, parsed, p.ctx.script_engine)
        task = _waiting(workflow, task_id)
        if task is None:
            return  # returned past the task during the call
        finish(task, data)
        try:
            p._run(workflow, task)
        except ProcessRuntimeError as exc:
            raise PermanentJobError(str(exc)) from exc
        p._save(instance, workflow)
        p._history(instance.id, None, "service", element, None, data=summary)
        p._project(instance.id, workflow, parsed, started_by=instance.started_by)
        schedule_timers(conn, instance.id, workflow, p.ctx.script_engine, clock())
        schedule_services(conn, instance.id, workflow, clock())

    return {SERVICE: on_service}


def _nothing(conn: sa.Connection, job: Job) -> None:
    """The job of a call nobody waits for any more: it is simply done."""


def _call(
    p: Processes, instance_id: int, task_id: str
) -> tuple[str, ServiceConfig, ServiceRequest] | None:
    """The element, configuration and call of the task, read without a lock; None if done."""
    t = instance_table
    row = p.conn.execute(
        sa.select(t.c.status, t.c.state, t.c.process_key, t.c.process_version).where(
            t.c.id == instance_id
        )
    ).one_or_none()
    if row is None or row.status != RUNNING:
        return None
    parsed = p.ctx.specs.get(p.conn, row.process_key, row.process_version)
    workflow = load(row.state, parsed, p.ctx.script_engine)
    task = _waiting(workflow, task_id)
    if task is None:
        return None
    element = task.task_spec.bpmn_id
    config = service_config(parsed.elements[element].properties)
    try:
        return element, config, build_request(task, config, instance_id, p.ctx.clock())
    except ProcessRuntimeError as exc:
        raise PermanentJobError(str(exc)) from exc


def _waiting(workflow: Any, task_id: str) -> Any:
    task = task_by_id(workflow, task_id)
    return task if task is not None and is_waiting(task) else None
