"""The composition root of jobs: which code runs each kind of job, and the worker that runs them.

Handlers come from runtime modules as *contributors*: plain functions
``register_<something>(registry)`` that register their job kinds on the
registry they are given. :data:`CONTRIBUTORS` lists them; :func:`build_registry`
calls each on a fresh :class:`~engine.jobs.HandlerRegistry`. No handler is
registered by importing a module, and there is no shared registry: every
worker (the server's embedded thread, ``formflow worker``, a test) builds its
own. A module that adds job kinds (timers, escalations, notifications,
connector calls) defines its ``register_*`` function and is appended to
:data:`CONTRIBUTORS`; a kind registered twice is refused at start-up.

The operator's side — the paged list, statistics, audited retry and cancel —
is here too, shared by ``/api/v1/admin/jobs`` and ``formflow jobs``. See
docs/jobs.md.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from connectors.http import call_http
from engine.jobs import (
    HandlerRegistry,
    Job,
    JobStatus,
    Worker,
    cancel,
    get_job,
    job_table,
    retry,
    status_counts,
)
from engine.jobs.table import PENDING, RUNNING
from engine.processes.definitions import SpecCache
from engine.processes.handlers import process_handlers
from engine.processes.service_handlers import service_preparers
from permissions.org import write_audit
from runtime.settings import Settings

Contributor = Callable[[HandlerRegistry], None]
Clock = Callable[[], dt.datetime]

# Pending jobs due longer ago than this mean the workers are behind (or not running).
OVERDUE_AFTER = dt.timedelta(minutes=1)
NOOP = "noop"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _noop(conn: sa.Connection, job: Job) -> None:
    """Does nothing: enqueue a ``noop`` job to see that a worker runs (it is done within a poll)."""


def register_builtin_handlers(registry: HandlerRegistry) -> None:
    registry.register(NOOP, _noop)


def register_process_handlers(registry: HandlerRegistry) -> None:
    """Timers, reminders and escalations of process instances (engine.processes.handlers)."""
    for kind, handler in process_handlers(SpecCache(), utcnow).items():
        registry.register(kind, handler)


def register_service_handlers(registry: HandlerRegistry) -> None:
    """Service tasks' connector calls (engine.processes.service_handlers, connectors/)."""
    connectors = {"http": call_http}
    for kind, prepare in service_preparers(SpecCache(), utcnow, connectors).items():
        registry.register_prepared(kind, prepare)


# Every runtime module that contributes job handlers, in registration order.
CONTRIBUTORS: tuple[Contributor, ...] = (
    register_builtin_handlers,
    register_process_handlers,
    register_service_handlers,
)


def build_registry(contributors: Iterable[Contributor] | None = None) -> HandlerRegistry:
    """A registry with the handlers of ``contributors`` (default: :data:`CONTRIBUTORS`)."""
    registry = HandlerRegistry()
    for contribute in CONTRIBUTORS if contributors is None else contributors:
        contribute(registry)
    return registry


def build_worker(
    settings: Settings,
    engine: sa.Engine,
    *,
    registry: HandlerRegistry | None = None,
    clock: Clock = utcnow,
    stop_event: threading.Event | None = None,
) -> Worker:
    """A worker configured by the ``FORMFLOW_WORKER_*`` settings."""
    return Worker(
        engine,
        build_registry() if registry is None else registry,
        clock=clock,
        stop_event=stop_event,
        poll_interval=settings.worker_poll_seconds,
        batch_size=settings.worker_batch_size,
        lease=dt.timedelta(seconds=settings.worker_lease_seconds),
    )


@asynccontextmanager
async def embedded_worker(settings: Settings, engine: sa.Engine) -> AsyncIterator[Worker | None]:
    """A worker thread for the lifetime of the block, if ``settings.worker`` is ``embedded``.

    Leaving the block stops the worker and waits for the batch it is running
    (off the event loop, so a server shutting down keeps serving its event loop).
    """
    if settings.worker != "embedded":
        yield None
        return
    worker = build_worker(settings, engine)
    thread = worker.start_thread()
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.to_thread(thread.join)


# --- for operators ---------------------------------------------------------------------


def list_jobs_page(
    conn: sa.Connection,
    *,
    status: JobStatus | None = None,
    kind: str | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> list[Job]:
    """Jobs newest first, after the page that ended at ``before_id`` (a keyset page)."""
    job = job_table.c
    statement = sa.select(job_table).order_by(job.id.desc()).limit(limit)
    if status is not None:
        statement = statement.where(job.status == status)
    if kind is not None:
        statement = statement.where(job.kind == kind)
    if before_id is not None:
        statement = statement.where(job.id < before_id)
    return [Job.from_row(row) for row in conn.execute(statement)]


@dataclass(frozen=True)
class JobStats:
    counts: dict[str, int]  # by status, every status present
    overdue: int  # pending, due more than OVERDUE_AFTER ago
    expired_leases: int  # running, but their worker's lease has ended (it died)


def job_stats(conn: sa.Connection, now: dt.datetime) -> JobStats:
    """What to watch: incidents, a backlog, dead workers (docs/jobs.md)."""
    job = job_table.c
    overdue = sa.func.count().filter(job.status == PENDING, job.run_at < now - OVERDUE_AFTER)
    expired = sa.func.count().filter(job.status == RUNNING, job.locked_until < now)
    # Both on the (status, run_at) index; done jobs, the bulk of the table, are not read.
    row = conn.execute(sa.select(overdue, expired).where(job.status.in_((PENDING, RUNNING)))).one()
    return JobStats(status_counts(conn), int(row[0]), int(row[1]))


def _audit(
    conn: sa.Connection,
    job_id: int,
    action: str,
    before: Job,
    after: Job,
    actor_id: int | None,
    now: dt.datetime,
) -> None:
    def state(job: Job) -> dict[str, Any]:
        return {"status": job.status, "attempts": job.attempts, "max_attempts": job.max_attempts}

    row = (str(job_id), action, state(before), state(after))
    write_audit(conn, actor_id=actor_id, now=now, entity="job", rows=[row])


def retry_job(
    conn: sa.Connection,
    job_id: int,
    *,
    actor_id: int | None,
    now: dt.datetime,
    max_attempts: int | None = None,
) -> Job:
    """:func:`engine.jobs.retry`, recorded in the administration audit trail."""
    before = get_job(conn, job_id)
    after = retry(conn, job_id, now=now, max_attempts=max_attempts)
    _audit(conn, job_id, "retry", before, after, actor_id, now)
    return after


def cancel_job(conn: sa.Connection, job_id: int, *, actor_id: int | None, now: dt.datetime) -> Job:
    """:func:`engine.jobs.cancel`, recorded in the administration audit trail."""
    before = get_job(conn, job_id)
    after = cancel(conn, job_id, now=now)
    _audit(conn, job_id, "cancel", before, after, actor_id, now)
    return after
