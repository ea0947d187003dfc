"""Running jobs: the handler registry, one polling round, and the worker loop.

Each job runs in a transaction of its own that also marks it done, so its
database effects and its completion commit together or not at all: a
handler that fails, or a worker that dies mid-run, leaves no half-done
effect, and the job runs again. Handlers must therefore be idempotent in
what they do outside the database (a webhook may be delivered twice if the
worker dies between the call and the commit); their database effects are
exactly-once.

A job that calls another system registers a *prepare* step instead of a
handler: it runs before the job's transaction opens, under the job's lease
only (so no row is locked, and on SQLite the single write lock is free,
while the other side answers), and returns the handler that finishes the
job in its transaction. If the lease ran out meanwhile the result is
dropped and another worker runs the job again.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa

from engine.jobs.queue import (
    DEFAULT_LEASE,
    Job,
    claim,
    lock_claimed,
    mark_done,
    mark_failed,
    utcnow,
)

Handler = Callable[[sa.Connection, Job], None]
# The slow, transaction-free part of a job; returns the handler that finishes it.
Prepare = Callable[[sa.Engine, Job], Handler]
Clock = Callable[[], dt.datetime]

logger = logging.getLogger("formflow.jobs")


class PermanentJobError(Exception):
    """Raised by a handler when retrying cannot help (a 4xx answer, a deleted record).

    The job becomes an incident at once instead of using up its attempts.
    """


class HandlerRegistry:
    """Which callable runs each kind of job; built once by the composition root."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self._prepares: dict[str, Prepare] = {}

    def register(self, kind: str, handler: Handler) -> None:
        self._refuse_twice(kind)
        self._handlers[kind] = handler

    def register_prepared(self, kind: str, prepare: Prepare) -> None:
        """A job whose ``prepare`` runs outside any transaction (see the module docstring)."""
        self._refuse_twice(kind)
        self._prepares[kind] = prepare

    def _refuse_twice(self, kind: str) -> None:
        if kind in self:
            raise ValueError(f"a handler for job kind {kind!r} is already registered")

    def handles(self, kind: str) -> Callable[[Handler], Handler]:
        """Decorator form of :meth:`register`."""

        def decorate(handler: Handler) -> Handler:
            self.register(kind, handler)
            return handler

        return decorate

    def get(self, kind: str) -> Handler | None:
        return self._handlers.get(kind)

    def prepare(self, kind: str) -> Prepare | None:
        return self._prepares.get(kind)

    def __contains__(self, kind: object) -> bool:
        return kind in self._handlers or kind in self._prepares

    def __iter__(self) -> Iterator[str]:
        return iter(sorted([*self._handlers, *self._prepares]))


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: ``base``, ``base * factor``, … capped at ``cap``.

    No random jitter: retries are spread by the jobs' own times, and a
    deterministic schedule is what an operator can read off the table.
    """

    base: dt.timedelta = dt.timedelta(seconds=10)
    factor: float = 2.0
    cap: dt.timedelta = dt.timedelta(hours=1)

    def delay(self, attempts: int) -> dt.timedelta:
        """The wait after the ``attempts``-th failed run (1 for the first)."""
        exponent = min(max(attempts - 1, 0), 64)
        seconds = self.base.total_seconds() * float(self.factor) ** exponent
        # Compared as floats: a timedelta of factor ** 64 base delays would overflow.
        if seconds >= self.cap.total_seconds():
            return self.cap
        return dt.timedelta(seconds=seconds)


@dataclass
class RunReport:
    """What one :func:`run_once` did, by job id."""

    done: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    incidents: list[int] = field(default_factory=list)
    # Claimed but taken over by another worker before this one ran them.
    lost: list[int] = field(default_factory=list)

    @property
    def claimed(self) -> int:
        return len(self.done) + len(self.retrying) + len(self.incidents) + len(self.lost)


def run_once(
    engine: sa.Engine,
    registry: HandlerRegistry,
    *,
    worker_id: str,
    clock: Clock = utcnow,
    limit: int = 10,
    lease: dt.timedelta = DEFAULT_LEASE,
    retry_policy: RetryPolicy | None = None,
) -> RunReport:
    """Claim up to ``limit`` due jobs and run each in its own transaction."""
    policy = retry_policy or RetryPolicy()
    report = RunReport()
    for job in claim(engine, worker_id, clock(), limit, lease=lease):
        outcome = run_job(engine, registry, job, clock=clock, retry_policy=policy)
        getattr(report, outcome).append(job.id)
    return report


def run_job(
    engine: sa.Engine,
    registry: HandlerRegistry,
    job: Job,
    *,
    clock: Clock = utcnow,
    retry_policy: RetryPolicy | None = None,
) -> str:
    """Run one claimed job; returns the name of the :class:`RunReport` list it belongs to."""
    with engine.connect() as conn:
        conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        try:
            handler = registry.get(job.kind)
            prepare = registry.prepare(job.kind)
            if prepare is not None:
                handler = prepare(engine, job)  # no transaction open: see the docstring
            with conn.begin():
                if not lock_claimed(conn, job):
                    return "lost"
                if handler is None:
                    raise PermanentJobError(f"No handler is registered for job kind {job.kind!r}.")
                handler(conn, job)
                if not mark_done(conn, job, clock()):  # pragma: no cover - the row is locked
                    raise RuntimeError("lost the claim while running")
                return "done"
        except Exception as exc:  # the handler's own writes are rolled back by now
            return _record_failure(conn, job, exc, clock, retry_policy or RetryPolicy())


def _record_failure(
    conn: sa.Connection, job: Job, exc: Exception, clock: Clock, policy: RetryPolicy
) -> str:
    now = clock()
    permanent = isinstance(exc, PermanentJobError)
    exhausted = job.attempts >= job.max_attempts
    retry_at = None if permanent or exhausted else now + policy.delay(job.attempts)
    if permanent:
        error = f"{type(exc).__name__}: {exc}"
    else:
        error = "".join(traceback.format_exception(exc)).rstrip()
    logger.warning(
        "job %s (%s) failed on attempt %s of %s: %s",
        job.id,
        job.kind,
        job.attempts,
        job.max_attempts,
        exc,
        exc_info=not permanent,
    )
    try:
        with conn.begin():
            status = mark_failed(conn, job, error, now=now, retry_at=retry_at)
    except sa.exc.SQLAlchemyError:
        # The database went away too: the lease will expire and the job run again.
        logger.exception("could not record the failure of job %s", job.id)
        return "retrying"
    return "incidents" if status == "incident" else "retrying"


def default_worker_id() -> str:
    """Host, process and a random suffix: unique per worker, readable in ``locked_by``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    """Polls for due jobs and runs them until stopped; run it in a thread or as a process.

    Everything it needs is passed in: the engine, the handlers, the clock (a
    test drives time by hand), and the stop event (shared with whatever
    owns the worker's lifetime).
    """

    def __init__(
        self,
        engine: sa.Engine,
        registry: HandlerRegistry,
        *,
        clock: Clock = utcnow,
        stop_event: threading.Event | None = None,
        poll_interval: float = 1.0,
        batch_size: int = 10,
        lease: dt.timedelta = DEFAULT_LEASE,
        retry_policy: RetryPolicy | None = None,
        worker_id: str | None = None,
    ) -> None:
        if poll_interval <= 0 or batch_size < 1:
            raise ValueError("poll_interval must be positive and batch_size at least 1")
        self.engine = engine
        self.registry = registry
        self.clock = clock
        self.stop_event = stop_event or threading.Event()
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.lease = lease
        self.retry_policy = retry_policy or RetryPolicy()
        self.worker_id = worker_id or default_worker_id()

    def run_once(self) -> RunReport:
        return run_once(
            self.engine,
            self.registry,
            worker_id=self.worker_id,
            clock=self.clock,
            limit=self.batch_size,
            lease=self.lease,
            retry_policy=self.retry_policy,
        )

    def run(self) -> None:
        """Poll until :meth:`stop`; a full batch is followed at once by the next poll."""
        logger.info("job worker %s started", self.worker_id)
        while not self.stop_event.is_set():
            try:
                report = self.run_once()
            except Exception:
                # A database restart must not end the worker: wait and poll again.
                logger.exception("job worker %s: polling failed", self.worker_id)
                report = RunReport()
            if report.claimed < self.batch_size:
                self.stop_event.wait(self.poll_interval)
        logger.info("job worker %s stopped", self.worker_id)

    def stop(self) -> None:
        self.stop_event.set()

    def start_thread(self) -> threading.Thread:
        """Run in a daemon thread; :meth:`stop` then ``join()`` it to shut down."""
        thread = threading.Thread(target=self.run, name=f"formflow-jobs-{self.worker_id}")
        thread.daemon = True
        thread.start()
        return thread
