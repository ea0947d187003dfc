"""Jobs for operators: list them, read one, retry an incident, cancel, count (superusers only).

The same operations as ``formflow jobs`` (:mod:`runtime.jobs`); retries and
cancellations are recorded in the administration audit trail (entity ``job``).
See docs/jobs.md.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from engine.jobs import Job, JobStatus, get_job
from engine.jobs.table import KIND_LENGTH
from runtime.jobs import cancel_job, job_stats, list_jobs_page, retry_job
from runtime.web.deps import Ctx, Db, RowId
from runtime.web.routes.admin_common import PREFIX, Admin, Body, IdCursor, Limit, responses

router = APIRouter(prefix=PREFIX, tags=["admin"])


class JobOut(BaseModel):
    id: int
    kind: str = Field(description="Selects the code that runs it: timer, notification, ...")
    payload: dict[str, Any] = Field(description="The job's input.")
    dedupe_key: str | None
    status: JobStatus
    run_at: dt.datetime = Field(description="When a pending job is due (its next retry).")
    attempts: int = Field(description="Runs started, counted when claimed.")
    max_attempts: int
    last_error: str | None = Field(description="The last failure, with its traceback.")
    locked_by: str | None = Field(description="The worker running it.")
    locked_until: dt.datetime | None = Field(description="The end of that worker's lease.")
    created_at: dt.datetime
    finished_at: dt.datetime | None


class JobPage(BaseModel):
    items: list[JobOut] = Field(description="Newest first.")
    next_cursor: int | None = Field(description="Pass as `cursor` for the next page; null: done.")


class RetryBody(Body):
    max_attempts: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Attempts allowed from now on (default: the job's own).",
    )


class JobStatsOut(BaseModel):
    pending: int
    running: int
    done: int
    incident: int = Field(description="Should be 0: each one needs a person.")
    cancelled: int
    overdue: int = Field(
        description="Pending jobs due more than a minute ago: workers are behind or not running."
    )
    expired_leases: int = Field(
        description="Running jobs whose worker's lease has ended: that worker died."
    )


def _job(job: Job) -> JobOut:
    return JobOut(**job.__dict__)


@router.get(
    "/jobs",
    response_model=JobPage,
    summary="List jobs, newest first (e.g. the incidents)",
    responses=responses(),
)
def list_jobs(
    _admin: Admin,
    conn: Db,
    status: JobStatus | None = None,
    kind: Annotated[str | None, Query(min_length=1, max_length=KIND_LENGTH)] = None,
    limit: Limit = 50,
    cursor: IdCursor = None,
) -> JobPage:
    jobs = list_jobs_page(conn, status=status, kind=kind, limit=limit, before_id=cursor)
    last = jobs[-1].id if len(jobs) == limit else None
    return JobPage(items=[_job(j) for j in jobs], next_cursor=last)


@router.get(
    "/jobs:stats",
    response_model=JobStatsOut,
    summary="Jobs by status, the backlog and dead workers' jobs",
    responses=responses(),
)
def read_job_stats(_admin: Admin, conn: Db, ctx: Ctx) -> JobStatsOut:
    stats = job_stats(conn, ctx.clock())
    return JobStatsOut(**stats.counts, overdue=stats.overdue, expired_leases=stats.expired_leases)


@router.get(
    "/jobs/{job_id}",
    response_model=JobOut,
    summary="Read a job, with its last error",
    responses=responses(404),
)
def read_job(_admin: Admin, job_id: RowId, conn: Db) -> JobOut:
    return _job(get_job(conn, job_id))


@router.post(
    "/jobs/{job_id}:retry",
    response_model=JobOut,
    summary="Run an incident again: pending, due now, its attempts counted from 0",
    responses=responses(404, 409, 422),
)
def retry_incident(
    admin: Admin, job_id: RowId, conn: Db, ctx: Ctx, body: RetryBody | None = None
) -> JobOut:
    max_attempts = body.max_attempts if body is not None else None
    job = retry_job(
        conn, job_id, actor_id=admin.user_id, now=ctx.clock(), max_attempts=max_attempts
    )
    return _job(job)


@router.post(
    "/jobs/{job_id}:cancel",
    response_model=JobOut,
    summary="Cancel a pending job or an incident (a running one cannot be)",
    responses=responses(404, 409),
)
def cancel_pending(admin: Admin, job_id: RowId, conn: Db, ctx: Ctx) -> JobOut:
    return _job(cancel_job(conn, job_id, actor_id=admin.user_id, now=ctx.clock()))
