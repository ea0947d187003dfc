"""Jobs and the outbox: work recorded in the database and run by a worker after commit.

Timers, SLA escalations, notifications and connector calls are enqueued in
the transaction of the change that causes them (:func:`enqueue`), claimed by
a :class:`Worker` with a lease, run with their completion in one transaction,
retried with backoff and left as a retryable incident when attempts run out.
See ``docs/jobs.md``.
"""

from engine.jobs.queue import (
    DEFAULT_LEASE,
    DEFAULT_MAX_ATTEMPTS,
    Job,
    JobNotFoundError,
    JobStateError,
    cancel,
    claim,
    enqueue,
    get_job,
    list_jobs,
    retry,
    status_counts,
)
from engine.jobs.table import STATUSES, JobStatus, job_table
from engine.jobs.worker import (
    Handler,
    HandlerRegistry,
    PermanentJobError,
    Prepare,
    RetryPolicy,
    RunReport,
    Worker,
    run_job,
    run_once,
)

__all__ = [
    "DEFAULT_LEASE",
    "DEFAULT_MAX_ATTEMPTS",
    "STATUSES",
    "Handler",
    "HandlerRegistry",
    "Job",
    "JobNotFoundError",
    "JobStateError",
    "JobStatus",
    "PermanentJobError",
    "Prepare",
    "RetryPolicy",
    "RunReport",
    "Worker",
    "cancel",
    "claim",
    "enqueue",
    "get_job",
    "job_table",
    "list_jobs",
    "retry",
    "run_job",
    "run_once",
    "status_counts",
]
