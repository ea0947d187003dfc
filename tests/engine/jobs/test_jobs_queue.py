"""Enqueue (the outbox), claims and leases, incidents and their retry, on the backend under test."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from jobs_support import T0

from engine.errors import ConflictError, NotFoundError
from engine.jobs import (
    JobNotFoundError,
    JobStateError,
    cancel,
    claim,
    enqueue,
    get_job,
    job_table,
    list_jobs,
    retry,
    status_counts,
)
from engine.jobs.queue import lock_claimed, mark_done, mark_failed

MINUTE = dt.timedelta(minutes=1)


def test_a_job_is_visible_only_once_its_transaction_commits(engine: sa.Engine) -> None:
    with engine.connect() as business, engine.connect() as observer:
        with business.begin():
            job_id = enqueue(business, "notification", {"to": "alice"}, now=T0)
            with observer.begin():
                assert list_jobs(observer) == []
        with observer.begin():
            assert [job.id for job in list_jobs(observer)] == [job_id]
    assert [job.id for job in claim(engine, "w1", T0)] == [job_id]


def test_a_rolled_back_transaction_leaves_no_job(engine: sa.Engine) -> None:
    with engine.connect() as conn, conn.begin() as transaction:
        enqueue(conn, "notification", {"to": "alice"}, now=T0)
        transaction.rollback()
    assert claim(engine, "w1", T0 + MINUTE) == []


def test_enqueue_records_what_the_worker_needs(connection: sa.Connection) -> None:
    due = T0 + dt.timedelta(hours=2)
    job = get_job(
        connection,
        enqueue(connection, "timer", {"instance": 7, "note": "催办"}, run_at=due, now=T0),
    )
    assert (job.kind, job.payload, job.status, job.run_at) == (
        "timer",
        {"instance": 7, "note": "催办"},
        "pending",
        due,
    )
    assert (job.attempts, job.max_attempts, job.created_at, job.finished_at) == (0, 5, T0, None)
    assert job.run_at.tzinfo is not None


def test_enqueue_with_a_used_dedupe_key_returns_the_existing_job(
    connection: sa.Connection,
) -> None:
    first = enqueue(connection, "timer", {"n": 1}, dedupe_key="instance:7:timer:t1", now=T0)
    again = enqueue(connection, "timer", {"n": 2}, dedupe_key="instance:7:timer:t1", now=T0)
    other = enqueue(connection, "timer", {"n": 3}, dedupe_key="instance:7:timer:t2", now=T0)
    unkeyed = [enqueue(connection, "timer", {}, now=T0) for _ in range(2)]
    assert again == first and other != first and len(set(unkeyed)) == 2
    # The conflict did not break the transaction (PostgreSQL aborts on a plain one).
    assert connection.execute(sa.select(sa.func.count()).select_from(job_table)).scalar() == 4
    assert get_job(connection, first).payload == {"n": 1}


def test_a_dedupe_key_stays_used_after_the_job_finished(connection: sa.Connection) -> None:
    first = enqueue(connection, "timer", {}, dedupe_key="once", now=T0)
    [claimed] = claim(connection, "w1", T0)
    assert mark_done(connection, claimed, T0)
    assert enqueue(connection, "timer", {}, dedupe_key="once", now=T0 + MINUTE) == first
    assert status_counts(connection) == {
        "pending": 0,
        "running": 0,
        "done": 1,
        "incident": 0,
        "cancelled": 0,
    }


@pytest.mark.parametrize(
    ("kind", "payload", "options"),
    [
        ("", {}, {}),
        ("x" * 65, {}, {}),
        ("timer", {}, {"dedupe_key": ""}),
        ("timer", {}, {"max_attempts": 0}),
        ("timer", {"when": dt.date(2026, 1, 1)}, {}),
    ],
)
def test_enqueue_refuses_programming_errors(
    connection: sa.Connection, kind: str, payload: dict[str, object], options: dict[str, object]
) -> None:
    with pytest.raises((ValueError, TypeError)):
        enqueue(connection, kind, payload, now=T0, **options)  # type: ignore[arg-type]


def test_claim_takes_due_jobs_oldest_first_with_a_lease(connection: sa.Connection) -> None:
    late = enqueue(connection, "timer", {}, run_at=T0 + 3 * MINUTE, now=T0)
    second = enqueue(connection, "timer", {}, run_at=T0 + MINUTE, now=T0)
    first = enqueue(connection, "timer", {}, run_at=T0, now=T0)
    third = enqueue(connection, "timer", {}, run_at=T0 + 2 * MINUTE, now=T0)
    now = T0 + 2 * MINUTE
    claimed = claim(connection, "w1", now, limit=2, lease=10 * MINUTE)
    assert [job.id for job in claimed] == [first, second]
    assert {(j.status, j.attempts, j.locked_by, j.locked_until) for j in claimed} == {
        ("running", 1, "w1", now + 10 * MINUTE)
    }
    assert [job.id for job in claim(connection, "w2", now)] == [third]
    assert claim(connection, "w2", now) == []
    assert get_job(connection, late).status == "pending"


def test_an_expired_lease_is_claimed_again_and_fences_the_old_worker(
    connection: sa.Connection,
) -> None:
    job_id = enqueue(connection, "timer", {}, now=T0)
    [first] = claim(connection, "w1", T0, lease=MINUTE)
    assert claim(connection, "w2", T0 + 30 * dt.timedelta(seconds=1)) == []
    [second] = claim(connection, "w2", T0 + 2 * MINUTE, lease=MINUTE)
    assert (second.id, second.attempts, second.locked_by) == (job_id, 2, "w2")
    # The first worker comes back: its claim no longer holds, whatever it tries.
    assert not lock_claimed(connection, first)
    assert not mark_done(connection, first, T0 + 3 * MINUTE)
    assert lock_claimed(connection, second)
    assert mark_done(connection, second, T0 + 3 * MINUTE)
    assert get_job(connection, job_id).status == "done"


def test_an_expired_lease_on_the_last_attempt_becomes_an_incident(
    connection: sa.Connection,
) -> None:
    job_id = enqueue(connection, "connector", {}, max_attempts=1, now=T0)
    claim(connection, "w1", T0, lease=MINUTE)
    assert claim(connection, "w2", T0 + 2 * MINUTE) == []
    job = get_job(connection, job_id)
    assert (job.status, job.locked_by, job.finished_at) == ("incident", None, T0 + 2 * MINUTE)
    assert job.last_error is not None and "lease expired" in job.last_error


def test_a_failure_is_retried_later_then_becomes_an_incident(connection: sa.Connection) -> None:
    job_id = enqueue(connection, "connector", {}, max_attempts=2, now=T0)
    [job] = claim(connection, "w1", T0)
    assert mark_failed(connection, job, "boom", now=T0, retry_at=T0 + MINUTE) == "pending"
    pending = get_job(connection, job_id)
    assert (pending.status, pending.run_at, pending.last_error) == ("pending", T0 + MINUTE, "boom")
    assert claim(connection, "w1", T0 + dt.timedelta(seconds=59)) == []
    [job] = claim(connection, "w1", T0 + MINUTE)
    assert mark_failed(connection, job, "x" * 9000, now=T0 + MINUTE, retry_at=None) == "incident"
    incident = get_job(connection, job_id)
    assert (incident.status, incident.attempts, incident.finished_at) == (
        "incident",
        2,
        T0 + MINUTE,
    )
    assert incident.last_error is not None and len(incident.last_error) == 8001


def test_an_incident_is_retried_with_fresh_attempts(connection: sa.Connection) -> None:
    job_id = enqueue(connection, "connector", {}, max_attempts=1, now=T0)
    [job] = claim(connection, "w1", T0)
    mark_failed(connection, job, "SMTP refused", now=T0, retry_at=None)
    assert [j.id for j in list_jobs(connection, status="incident")] == [job_id]
    requeued = retry(connection, job_id, now=T0 + MINUTE, max_attempts=3)
    assert (requeued.status, requeued.attempts, requeued.max_attempts) == ("pending", 0, 3)
    assert (requeued.run_at, requeued.finished_at, requeued.last_error) == (
        T0 + MINUTE,
        None,
        "SMTP refused",
    )
    [again] = claim(connection, "w1", T0 + MINUTE)
    assert again.id == job_id


def test_only_incidents_are_retried_and_only_waiting_jobs_cancelled(
    connection: sa.Connection,
) -> None:
    job_id = enqueue(connection, "timer", {}, now=T0)
    with pytest.raises(JobStateError, match="only a job that is incident"):
        retry(connection, job_id, now=T0)
    assert cancel(connection, job_id, now=T0).status == "cancelled"
    assert claim(connection, "w1", T0) == []
    with pytest.raises(JobStateError) as caught:
        cancel(connection, job_id, now=T0)
    assert isinstance(caught.value, ConflictError)
    with pytest.raises(JobNotFoundError) as missing:
        retry(connection, 999_999, now=T0)
    assert isinstance(missing.value, NotFoundError)


def test_a_running_job_cannot_be_cancelled(connection: sa.Connection) -> None:
    job_id = enqueue(connection, "timer", {}, now=T0)
    claim(connection, "w1", T0)
    with pytest.raises(JobStateError, match="is running"):
        cancel(connection, job_id, now=T0)


def test_list_jobs_filters_by_status_and_kind(connection: sa.Connection) -> None:
    timer = enqueue(connection, "timer", {}, now=T0)
    mail = enqueue(connection, "notification", {}, now=T0)
    assert [j.id for j in list_jobs(connection)] == [mail, timer]
    assert [j.id for j in list_jobs(connection, kind="timer")] == [timer]
    assert list_jobs(connection, status="done") == []
    with pytest.raises(ValueError):
        list_jobs(connection, status="failed")  # type: ignore[arg-type]
