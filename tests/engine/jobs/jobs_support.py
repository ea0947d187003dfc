"""A hand-driven clock and a probe table that handlers write to."""

from __future__ import annotations

import datetime as dt
import threading

import sqlalchemy as sa

from engine.jobs import Job

T0 = dt.datetime(2026, 3, 9, 1, 0, tzinfo=dt.UTC)

probe_metadata = sa.MetaData()
# One row per job run that committed: the primary key makes a second
# committed run of one job fail loudly.
probe_table = sa.Table(
    "job_probe",
    probe_metadata,
    sa.Column("job_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("note", sa.String(100), nullable=False),
)


class ManualClock:
    """Time that moves only when a test says so."""

    def __init__(self, start: dt.datetime = T0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        with self._lock:
            return self._now

    def advance(self, delta: dt.timedelta) -> dt.datetime:
        with self._lock:
            self._now += delta
            return self._now


def create_probe(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        probe_metadata.create_all(conn)


def write_probe(conn: sa.Connection, job: Job) -> None:
    """A handler: records that ``job`` ran, in the job's transaction."""
    conn.execute(sa.insert(probe_table).values(job_id=job.id, note=str(job.payload.get("note"))))


def probe_ids(engine: sa.Engine) -> list[int]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(probe_table.c.job_id)).scalars())
