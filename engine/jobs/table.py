"""``ff_job``: timers, escalations, notifications and connector calls to run.

The table is an outbox as much as a queue: a job is inserted in the same
transaction as the change that causes it, so it exists exactly when that
change committed. It is a system table owned by ``migrations/`` (revision
0004) and registered on :data:`engine.system.metadata` like the others.
"""

from __future__ import annotations

from typing import Final, Literal

import sqlalchemy as sa

from engine.forms.columns import BigIntId, UTCDateTime
from engine.system import metadata

JobStatus = Literal["pending", "running", "done", "incident", "cancelled"]

PENDING: Final = "pending"
RUNNING: Final = "running"
DONE: Final = "done"
INCIDENT: Final = "incident"
CANCELLED: Final = "cancelled"
STATUSES: Final = (PENDING, RUNNING, DONE, INCIDENT, CANCELLED)

KIND_LENGTH = 64
DEDUPE_KEY_LENGTH = 200
WORKER_ID_LENGTH = 200

job_table = sa.Table(
    "ff_job",
    metadata,
    sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
    # What to run: the handler registered for this kind gets the payload.
    sa.Column("kind", sa.String(KIND_LENGTH), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    # Enqueueing twice with one key makes one job, whatever its status: a
    # timer keyed by instance and event fires once even if its step re-runs.
    sa.Column("dedupe_key", sa.String(DEDUPE_KEY_LENGTH), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    # When a pending job may run next (its due time, or its next retry).
    sa.Column("run_at", UTCDateTime, nullable=False),
    # Started runs, counted when claimed, so a job that kills its worker
    # still runs out of attempts instead of crashing workers forever.
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("max_attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    # The lease of a running job: when it expires, the worker is presumed
    # dead and another worker may claim the job again.
    sa.Column("locked_by", sa.String(WORKER_ID_LENGTH), nullable=True),
    sa.Column("locked_until", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.CheckConstraint(
        "status IN ('pending', 'running', 'done', 'incident', 'cancelled')", name="status"
    ),
    # The worker's poll (status = 'pending' AND run_at <= now ORDER BY run_at)
    # and its search for expired leases (status = 'running') are range scans
    # of this index; done jobs, the bulk of the table, are never read by it.
    sa.Index("ix_ff_job_status_run_at", "status", "run_at"),
    sa.Index(
        "ix_ff_job_dedupe_key",
        "dedupe_key",
        unique=True,
        sqlite_where=sa.text("dedupe_key IS NOT NULL"),
        postgresql_where=sa.text("dedupe_key IS NOT NULL"),
    ),
)
