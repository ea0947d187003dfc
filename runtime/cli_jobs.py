"""``formflow worker`` and ``formflow jobs``: run the jobs worker, see and re-run incidents.

``formflow worker`` runs the same worker as the server's embedded thread
(:func:`runtime.jobs.build_worker`), in the foreground, for deployments that
set ``FORMFLOW_WORKER=off`` on their web servers or want more workers. The
``jobs`` commands are the operations of ``/api/v1/admin/jobs``; retries and
cancellations are audited with no actor (the system), like every command.

Registered on :data:`runtime.cli.cli` by importing this module (the last
lines of runtime/cli.py).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import signal
from collections.abc import Sequence
from types import FrameType

import click

from engine.forms.fieldtypes import INT64_MAX
from engine.jobs import STATUSES, Job, JobStatus, Worker, get_job
from runtime.cli import CliState, _table, cli, pass_state
from runtime.cli_admin import echo_table, utcnow
from runtime.database import safe_url
from runtime.jobs import build_worker, cancel_job, job_stats, list_jobs_page, retry_job

SYSTEM: int | None = None  # the actor of changes made from the command line
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

job_id_argument = click.argument("job_id", metavar="ID", type=click.IntRange(1, INT64_MAX))


# --- formflow worker -------------------------------------------------------------------


def run_until_signalled(worker: Worker, signals: Sequence[signal.Signals] = STOP_SIGNALS) -> None:
    """Run ``worker`` until one of ``signals`` arrives, then let it finish its batch.

    The worker runs in a thread and this (main) thread only waits for it:
    a signal handler that set the stop event while the main thread held
    that event's lock would deadlock. A second signal acts as if none of
    this were installed (SIGINT: KeyboardInterrupt, SIGTERM: killed).
    """
    previous = {sig: signal.getsignal(sig) for sig in signals}

    def stop(signum: int, _frame: FrameType | None) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        logging.getLogger("formflow.jobs").info(
            "%s: stopping after the jobs in hand", signal.Signals(signum).name
        )
        worker.stop()

    for sig in signals:
        signal.signal(sig, stop)
    try:
        thread = worker.start_thread()
        while thread.is_alive():
            thread.join(timeout=0.5)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@cli.command("worker")
@pass_state
def worker_command(state: CliState) -> None:
    """Run the jobs worker in the foreground until SIGTERM or Ctrl+C.

    Runs timers, escalations, notifications and connector calls. On SIGTERM
    or SIGINT it finishes the jobs it has claimed, then exits with status 0;
    a second signal ends it at once (its jobs run again when their lease
    ends). Any number of workers may run against one database; a server
    runs one of its own unless FORMFLOW_WORKER=off.
    """
    settings = state.settings
    with state.transaction(commit=False):
        pass  # reachable and migrated, or a clear message and exit status 1
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    worker = build_worker(settings, state.engine)
    click.echo(
        f"Jobs worker {worker.worker_id} on {safe_url(settings.database_url)}: "
        f"{', '.join(worker.registry) or 'no job kinds'}; polling every "
        f"{settings.worker_poll_seconds:g} s; stop with Ctrl+C or SIGTERM."
    )
    run_until_signalled(worker)
    click.echo("Jobs worker stopped.")


# --- formflow jobs ---------------------------------------------------------------------


@cli.group()
def jobs() -> None:
    """Jobs: list them, show one, retry incidents, cancel, count by status."""


def _when(value: dt.datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _error_line(job: Job) -> str:
    """The last line of the last error (a traceback ends with the exception), shortened."""
    lines = [line for line in (job.last_error or "").splitlines() if line.strip()]
    last = lines[-1].strip() if lines else ""
    return last if len(last) <= 70 else last[:69] + "…"


@jobs.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="Only jobs in this status.")
@click.option("--kind", metavar="KIND", help="Only jobs of this kind.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
@pass_state
def jobs_list(state: CliState, status: JobStatus | None, kind: str | None, limit: int) -> None:
    """Print jobs, newest first, with the last line of each one's error."""
    with state.transaction(commit=False) as conn:
        found = list_jobs_page(conn, status=status, kind=kind, limit=limit)
    rows = [
        [
            str(j.id),
            j.kind,
            j.status,
            f"{j.attempts}/{j.max_attempts}",
            _when(j.run_at),
            _error_line(j),
        ]
        for j in found
    ]
    echo_table(["ID", "KIND", "STATUS", "TRIES", "RUN AT (UTC)", "LAST ERROR"], rows, "No jobs.")


@jobs.command("show")
@job_id_argument
@pass_state
def jobs_show(state: CliState, job_id: int) -> None:
    """Print job ID with its payload and its whole last error."""
    with state.transaction(commit=False) as conn:
        job = get_job(conn, job_id)
    _echo_job(job)
    if job.last_error:
        click.echo("last error:")
        click.echo(job.last_error)


def _echo_job(job: Job) -> None:
    fields = {
        "id": str(job.id),
        "kind": job.kind,
        "status": job.status,
        "attempts": f"{job.attempts} of {job.max_attempts}",
        "run at": _when(job.run_at),
        "created at": _when(job.created_at),
        "finished at": _when(job.finished_at),
        "locked by": f"{job.locked_by or ''} {_when(job.locked_until)}".strip(),
        "dedupe key": job.dedupe_key or "",
        "payload": json.dumps(job.payload, ensure_ascii=False, sort_keys=True),
    }
    for name, value in fields.items():
        click.echo(f"{name + ':':<13} {value}")


@jobs.command("retry")
@job_id_argument
@click.option(
    "--max-attempts",
    type=click.IntRange(1, 1000),
    help="Attempts allowed from now on (default: the job's own).",
)
@pass_state
def jobs_retry(state: CliState, job_id: int, max_attempts: int | None) -> None:
    """Run incident ID again: pending, due now, its attempts counted from 0."""
    with state.transaction() as conn:
        job = retry_job(conn, job_id, actor_id=SYSTEM, now=utcnow(), max_attempts=max_attempts)
    click.echo(f"Job {job.id} ({job.kind}) is pending again, up to {job.max_attempts} attempts.")


@jobs.command("cancel")
@job_id_argument
@pass_state
def jobs_cancel(state: CliState, job_id: int) -> None:
    """Cancel job ID, a pending job or an incident (a running one cannot be)."""
    with state.transaction() as conn:
        job = cancel_job(conn, job_id, actor_id=SYSTEM, now=utcnow())
    click.echo(f"Job {job.id} ({job.kind}) cancelled.")


@jobs.command("stats")
@pass_state
def jobs_stats(state: CliState) -> None:
    """Count jobs by status, and those that need watching."""
    with state.transaction(commit=False) as conn:
        stats = job_stats(conn, utcnow())
    rows = [[status, str(count)] for status, count in stats.counts.items()]
    rows += [
        ["overdue", str(stats.overdue)],  # pending, due more than a minute ago
        ["expired lease", str(stats.expired_leases)],  # running, its worker gone
    ]
    for line in _table(["STATUS", "JOBS"], rows):
        click.echo(line)
