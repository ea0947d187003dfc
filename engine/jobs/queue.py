"""Enqueue, claim, finish and re-queue jobs; every function runs in the caller's transaction.

Except :func:`claim` given an engine, nothing here commits: ``enqueue`` in
the business transaction is what makes ``ff_job`` an outbox.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from engine.errors import ConflictError, NotFoundError
from engine.jobs.table import (
    CANCELLED,
    DEDUPE_KEY_LENGTH,
    DONE,
    INCIDENT,
    KIND_LENGTH,
    PENDING,
    RUNNING,
    STATUSES,
    WORKER_ID_LENGTH,
    JobStatus,
    job_table,
)

DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_LEASE = dt.timedelta(minutes=5)
# Enough of a traceback to find the failing line; the table is no log store.
MAX_ERROR_LENGTH = 8000


class JobNotFoundError(NotFoundError):
    title = "Job not found"


class JobStateError(ConflictError):
    """The job is not in a status that allows the operation (e.g. retrying a done job)."""

    title = "Job in the wrong status"


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    payload: dict[str, Any]
    dedupe_key: str | None
    status: JobStatus
    run_at: dt.datetime
    attempts: int
    max_attempts: int
    last_error: str | None
    locked_by: str | None
    locked_until: dt.datetime | None
    created_at: dt.datetime
    finished_at: dt.datetime | None

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> Job:
        return cls(**row._asdict())


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def enqueue(
    conn: sa.Connection,
    kind: str,
    payload: Mapping[str, Any],
    *,
    run_at: dt.datetime | None = None,
    dedupe_key: str | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    now: dt.datetime | None = None,
) -> int:
    """Add a job in ``conn``'s transaction; it becomes visible when that transaction commits.

    Returns the job's id. With a ``dedupe_key`` already used, nothing is added
    and the existing job's id is returned (whatever its kind, payload or
    status), so enqueueing is idempotent; the caller's transaction is not
    disturbed by the conflict on either database.
    """
    now = now or utcnow()
    _check_text("kind", kind, KIND_LENGTH)
    if dedupe_key is not None:
        _check_text("dedupe_key", dedupe_key, DEDUPE_KEY_LENGTH)
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    # Refuse here what the JSON column would refuse at flush, far from the caller.
    payload = json.loads(json.dumps(dict(payload)))
    values = {
        "kind": kind,
        "payload": payload,
        "dedupe_key": dedupe_key,
        "status": PENDING,
        "run_at": run_at or now,
        "attempts": 0,
        "max_attempts": max_attempts,
        "created_at": now,
    }
    if dedupe_key is None:
        return int(conn.execute(_INSERT, values).scalar_one())
    job_id = conn.execute(_INSERT_ONCE[conn.dialect.name], values).scalar_one_or_none()
    if job_id is None:
        job_id = conn.execute(_BY_DEDUPE_KEY, {"dedupe_key": dedupe_key}).scalar_one()
    return int(job_id)


# Built once: enqueue runs in every process command that opens a task.
_INSERT = sa.insert(job_table).returning(job_table.c.id)
_INSERT_ONCE = {
    name: dialect.insert(job_table)
    .on_conflict_do_nothing(
        index_elements=[job_table.c.dedupe_key],
        index_where=job_table.c.dedupe_key.is_not(None),
    )
    .returning(job_table.c.id)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
_BY_DEDUPE_KEY = sa.select(job_table.c.id).where(
    job_table.c.dedupe_key == sa.bindparam("dedupe_key")
)


def _check_text(name: str, value: str, length: int) -> None:
    if not isinstance(value, str) or not value or len(value) > length:
        raise ValueError(f"{name} must be a non-empty string of at most {length} characters")


def claim(
    target: sa.Engine | sa.Connection,
    worker_id: str,
    now: dt.datetime,
    limit: int = 10,
    *,
    lease: dt.timedelta = DEFAULT_LEASE,
) -> list[Job]:
    """Take up to ``limit`` due jobs for ``worker_id``, leasing them until ``now + lease``.

    Due jobs are pending ones with ``run_at <= now`` and running ones whose
    lease has expired (their worker died), oldest ``run_at`` first. Each
    claim counts an attempt. Given an engine, the claim commits at once, so
    other workers see the lease; given a connection, the caller commits
    (on SQLite it should have begun with ``BEGIN IMMEDIATE``).

    On PostgreSQL concurrent workers skip each other's rows
    (``FOR UPDATE SKIP LOCKED``); SQLite has one writer at a time, and the
    claim's UPDATE re-checks the status, so two workers never get one job.
    """
    _check_text("worker_id", worker_id, WORKER_ID_LENGTH)
    if isinstance(target, sa.Engine):
        with target.connect() as conn:
            conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                return claim(conn, worker_id, now, limit, lease=lease)
    conn = target
    job = job_table.c
    expired = sa.and_(job.status == RUNNING, job.locked_until <= now)
    _exhaust_expired(conn, now)
    due = sa.or_(sa.and_(job.status == PENDING, job.run_at <= now), expired)
    # Two statements, not UPDATE ... WHERE id IN (SELECT ... LIMIT n FOR
    # UPDATE SKIP LOCKED): PostgreSQL may run such a subquery once per row it
    # checks, and with SKIP LOCKED each run can pick other rows, so one claim
    # took more than its limit.
    picked = (
        sa.select(job.id)
        .where(due)
        .order_by(job.run_at, job.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(conn.execute(picked).scalars())
    if not ids:
        return []
    statement = (
        sa.update(job_table)
        .where(job.id.in_(ids), due)
        .values(
            status=RUNNING,
            attempts=job.attempts + 1,
            locked_by=worker_id,
            locked_until=now + lease,
        )
        .returning(*job_table.c)
    )
    jobs = [Job.from_row(row) for row in conn.execute(statement)]
    return sorted(jobs, key=lambda claimed: (claimed.run_at, claimed.id))


def _exhaust_expired(conn: sa.Connection, now: dt.datetime) -> None:
    """Expired leases of jobs without attempts left become incidents instead of running again."""
    job = job_table.c
    lost = (
        sa.select(job.id)
        .where(job.status == RUNNING, job.locked_until <= now, job.attempts >= job.max_attempts)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    conn.execute(
        sa.update(job_table)
        .where(job.id.in_(lost), job.status == RUNNING)
        .values(
            status=INCIDENT,
            last_error=sa.func.coalesce(job.last_error + "\n\n", "")
            + "The worker running this job stopped before finishing it (its lease expired)"
            " on the last attempt.",
            locked_by=None,
            locked_until=None,
            finished_at=now,
        )
    )


def lock_claimed(conn: sa.Connection, claimed: Job) -> bool:
    """Lock ``claimed``'s row for its run, if the claim still holds.

    False when another worker has taken the job over since (this one's lease
    expired): the caller must then not run it. The row lock on PostgreSQL
    keeps a second runner waiting rather than working in parallel.
    """
    statement = sa.select(job_table.c.id).where(*_held_by(claimed)).with_for_update()
    return conn.execute(statement).first() is not None


def mark_done(conn: sa.Connection, claimed: Job, now: dt.datetime) -> bool:
    """Finish ``claimed``; False (and nothing changed) when its claim no longer holds."""
    return _finish(conn, claimed, status=DONE, finished_at=now, last_error=None)


def mark_failed(
    conn: sa.Connection,
    claimed: Job,
    error: str,
    *,
    now: dt.datetime,
    retry_at: dt.datetime | None,
) -> JobStatus:
    """Record a failed run: pending again at ``retry_at``, or an incident when it is None."""
    error = error if len(error) <= MAX_ERROR_LENGTH else "…" + error[-MAX_ERROR_LENGTH:]
    if retry_at is None:
        _finish(conn, claimed, status=INCIDENT, finished_at=now, last_error=error)
        return INCIDENT
    conn.execute(
        sa.update(job_table)
        .where(*_held_by(claimed))
        .values(
            status=PENDING, run_at=retry_at, last_error=error, locked_by=None, locked_until=None
        )
    )
    return PENDING


def _finish(
    conn: sa.Connection,
    claimed: Job,
    *,
    status: JobStatus,
    finished_at: dt.datetime,
    last_error: str | None,
) -> bool:
    values: dict[str, Any] = {
        "status": status,
        "finished_at": finished_at,
        "locked_by": None,
        "locked_until": None,
    }
    if last_error is not None:
        values["last_error"] = last_error
    result = conn.execute(sa.update(job_table).where(*_held_by(claimed)).values(values))
    return result.rowcount == 1


def _held_by(claimed: Job) -> Sequence[sa.ColumnElement[bool]]:
    # The attempt number fences a worker whose lease expired and whose job
    # another worker re-claimed: the same worker id alone would not.
    job = job_table.c
    return (
        job.id == claimed.id,
        job.status == RUNNING,
        job.locked_by == claimed.locked_by,
        job.attempts == claimed.attempts,
    )


def get_job(conn: sa.Connection, job_id: int) -> Job:
    row = conn.execute(sa.select(job_table).where(job_table.c.id == job_id)).first()
    if row is None:
        raise JobNotFoundError(f"Job {job_id} does not exist.")
    return Job.from_row(row)


def list_jobs(
    conn: sa.Connection,
    *,
    status: JobStatus | None = None,
    kind: str | None = None,
    limit: int = 100,
) -> list[Job]:
    """Jobs by status and kind, newest first: what an operator's incident list shows."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}")
    statement = sa.select(job_table).order_by(job_table.c.id.desc()).limit(limit)
    if status is not None:
        statement = statement.where(job_table.c.status == status)
    if kind is not None:
        statement = statement.where(job_table.c.kind == kind)
    return [Job.from_row(row) for row in conn.execute(statement)]


def retry(
    conn: sa.Connection,
    job_id: int,
    *,
    now: dt.datetime | None = None,
    max_attempts: int | None = None,
) -> Job:
    """Queue an incident again, due at once, with a fresh set of attempts.

    The last error stays on the job until its next run succeeds or fails.
    """
    return _transition(
        conn,
        job_id,
        allowed=(INCIDENT,),
        action="retried",
        values={
            "status": PENDING,
            "run_at": now or utcnow(),
            "attempts": 0,
            "finished_at": None,
            **({"max_attempts": max_attempts} if max_attempts else {}),
        },
    )


def cancel(conn: sa.Connection, job_id: int, *, now: dt.datetime | None = None) -> Job:
    """Cancel a pending job or an incident (e.g. the timer of a task completed in time).

    A running job cannot be cancelled: its handler may already have acted.
    """
    return _transition(
        conn,
        job_id,
        allowed=(PENDING, INCIDENT),
        action="cancelled",
        values={"status": CANCELLED, "finished_at": now or utcnow()},
    )


def _transition(
    conn: sa.Connection,
    job_id: int,
    *,
    allowed: tuple[JobStatus, ...],
    action: str,
    values: dict[str, Any],
) -> Job:
    statement = (
        sa.update(job_table)
        .where(job_table.c.id == job_id, job_table.c.status.in_(allowed))
        .values(values)
        .returning(*job_table.c)
    )
    row = conn.execute(statement).first()
    if row is not None:
        return Job.from_row(row)
    current = get_job(conn, job_id)  # raises JobNotFoundError
    raise JobStateError(
        f"Job {job_id} is {current.status}; only a job that is {' or '.join(allowed)}"
        f" can be {action}."
    )


def status_counts(conn: sa.Connection) -> dict[str, int]:
    """How many jobs are in each status, for a health page or metrics."""
    statement = sa.select(job_table.c.status, sa.func.count()).group_by(job_table.c.status)
    counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
    counts.update((status, int(count)) for status, count in conn.execute(statement))
    return counts
