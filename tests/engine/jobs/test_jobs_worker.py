"""Running jobs: handlers and their transaction, backoff, incidents, concurrent workers."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from jobs_support import T0, ManualClock, create_probe, probe_ids, probe_table, write_probe

from engine.jobs import (
    Handler,
    HandlerRegistry,
    Job,
    PermanentJobError,
    RetryPolicy,
    Worker,
    claim,
    enqueue,
    get_job,
    list_jobs,
    retry,
    run_job,
    run_once,
)

SECOND = dt.timedelta(seconds=1)


@pytest.fixture
def probed(engine: sa.Engine) -> Iterator[sa.Engine]:
    create_probe(engine)
    yield engine


def _enqueue(engine: sa.Engine, count: int = 1, **options: object) -> list[int]:
    with engine.begin() as conn:
        return [
            enqueue(conn, "probe", {"note": f"job {n}"}, now=T0, **options)  # type: ignore[arg-type]
            for n in range(count)
        ]


def _job(engine: sa.Engine, job_id: int) -> Job:
    with engine.connect() as conn:
        return get_job(conn, job_id)


def _registry(handler: object = write_probe) -> HandlerRegistry:
    registry = HandlerRegistry()
    registry.register("probe", handler)  # type: ignore[arg-type]
    return registry


def test_a_handler_and_its_done_mark_commit_together(probed: sa.Engine) -> None:
    [job_id] = _enqueue(probed)
    clock = ManualClock()
    report = run_once(probed, _registry(), worker_id="w1", clock=clock)
    assert (report.done, report.claimed) == ([job_id], 1)
    done = _job(probed, job_id)
    assert (done.status, done.attempts, done.finished_at, done.locked_by) == ("done", 1, T0, None)
    assert probe_ids(probed) == [job_id]
    assert run_once(probed, _registry(), worker_id="w1", clock=clock).claimed == 0


def test_a_failing_handler_rolls_back_its_own_writes_and_is_retried_with_backoff(
    probed: sa.Engine,
) -> None:
    calls: list[int] = []

    def flaky(conn: sa.Connection, job: Job) -> None:
        write_probe(conn, job)
        calls.append(job.attempts)
        if job.attempts < 3:
            raise ConnectionError(f"mail server down (attempt {job.attempts})")

    [job_id] = _enqueue(probed)
    clock = ManualClock()
    registry = _registry(flaky)
    policy = RetryPolicy(base=10 * SECOND, factor=2)
    assert run_once(probed, registry, worker_id="w1", clock=clock, retry_policy=policy).retrying
    job = _job(probed, job_id)
    assert (job.status, job.attempts, job.run_at) == ("pending", 1, T0 + 10 * SECOND)
    assert job.last_error is not None and "mail server down (attempt 1)" in job.last_error
    assert "Traceback" in job.last_error
    assert probe_ids(probed) == []  # the handler's insert was rolled back

    clock.advance(9 * SECOND)
    assert run_once(probed, registry, worker_id="w1", clock=clock, retry_policy=policy).claimed == 0
    clock.advance(SECOND)
    run_once(probed, registry, worker_id="w1", clock=clock, retry_policy=policy)
    assert _job(probed, job_id).run_at == clock() + 20 * SECOND  # doubled
    clock.advance(20 * SECOND)
    report = run_once(probed, registry, worker_id="w1", clock=clock, retry_policy=policy)
    assert report.done == [job_id]
    assert calls == [1, 2, 3]
    assert probe_ids(probed) == [job_id]
    # A job that succeeded after retries keeps the error of its last failure.
    assert "attempt 2" in (_job(probed, job_id).last_error or "")


def test_exhausted_attempts_leave_a_visible_incident_that_can_be_retried(
    probed: sa.Engine,
) -> None:
    broken = True

    def handler(conn: sa.Connection, job: Job) -> None:
        if broken:
            raise ValueError("customer 42 has no e-mail address")
        write_probe(conn, job)

    [job_id] = _enqueue(probed, max_attempts=3)
    clock = ManualClock()
    registry = _registry(handler)
    for _ in range(3):
        run_once(probed, registry, worker_id="w1", clock=clock)
        clock.advance(dt.timedelta(hours=1))
    incident = _job(probed, job_id)
    assert (incident.status, incident.attempts) == ("incident", 3)
    assert incident.last_error is not None
    assert "ValueError: customer 42 has no e-mail address" in incident.last_error
    assert run_once(probed, registry, worker_id="w1", clock=clock).claimed == 0

    broken = False
    with probed.begin() as conn:
        retry(conn, job_id, now=clock())
    assert run_once(probed, registry, worker_id="w1", clock=clock).done == [job_id]
    assert probe_ids(probed) == [job_id]


def test_a_permanent_error_or_an_unknown_kind_is_an_incident_at_once(probed: sa.Engine) -> None:
    def refuse(conn: sa.Connection, job: Job) -> None:
        raise PermanentJobError("webhook answered 410 Gone")

    [refused] = _enqueue(probed)
    with probed.begin() as conn:
        unknown = enqueue(conn, "fax", {}, now=T0)
    report = run_once(probed, _registry(refuse), worker_id="w1", clock=ManualClock())
    assert sorted(report.incidents) == sorted([refused, unknown])
    assert _job(probed, refused).last_error == "PermanentJobError: webhook answered 410 Gone"
    assert "No handler is registered for job kind 'fax'" in (_job(probed, unknown).last_error or "")
    assert _job(probed, refused).attempts == 1


def test_a_worker_whose_lease_expired_does_not_run_the_job_again(probed: sa.Engine) -> None:
    [job_id] = _enqueue(probed)
    clock = ManualClock()
    [stale] = claim(probed, "w1", clock(), lease=dt.timedelta(minutes=1))
    clock.advance(dt.timedelta(minutes=2))
    assert run_once(probed, _registry(), worker_id="w2", clock=clock).done == [job_id]
    assert run_job(probed, _registry(), stale, clock=clock) == "lost"
    assert probe_ids(probed) == [job_id]
    assert _job(probed, job_id).attempts == 2


def test_the_handler_registry() -> None:
    registry = HandlerRegistry()

    @registry.handles("timer")
    def fire(conn: sa.Connection, job: Job) -> None:
        pass

    assert "timer" in registry and registry.get("timer") is fire and list(registry) == ["timer"]
    with pytest.raises(ValueError, match="already registered"):
        registry.register("timer", fire)


def test_a_prepared_job_does_its_slow_part_with_no_transaction_open(probed: sa.Engine) -> None:
    """The prepare step runs first, outside any transaction; what it returns finishes the job."""
    seen: list[str] = []

    def prepare(engine: sa.Engine, job: Job) -> Handler:
        # Another writer gets in now: nothing of the job's run holds a lock yet.
        writer = engine.execution_options(sqlite_begin="IMMEDIATE")
        with writer.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SET LOCAL lock_timeout = '2s'"))
            conn.execute(sa.insert(probe_table).values(job_id=0, note="while preparing"))
        seen.append("prepared")
        return write_probe

    def fail(engine: sa.Engine, job: Job) -> Handler:
        raise PermanentJobError("the other side answered 404")

    [job_id] = _enqueue(probed)
    registry = HandlerRegistry()
    registry.register_prepared("probe", prepare)
    report = run_once(probed, registry, worker_id="w1", clock=ManualClock())
    assert (report.done, seen, probe_ids(probed)) == ([job_id], ["prepared"], [0, job_id])
    with pytest.raises(ValueError, match="already registered"):
        registry.register("probe", write_probe)
    assert list(registry) == ["probe"] and registry.get("probe") is None

    [failing] = _enqueue(probed)
    refusing = HandlerRegistry()
    refusing.register_prepared("probe", fail)
    assert run_once(probed, refusing, worker_id="w1", clock=ManualClock()).incidents == [failing]
    assert _job(probed, failing).last_error == "PermanentJobError: the other side answered 404"
    assert probe_ids(probed) == [0, job_id]


def test_backoff_doubles_up_to_its_cap() -> None:
    policy = RetryPolicy(base=10 * SECOND, factor=2, cap=dt.timedelta(minutes=1))
    assert [policy.delay(n).total_seconds() for n in range(1, 6)] == [10, 20, 40, 60, 60]
    assert policy.delay(10_000) == dt.timedelta(minutes=1)


def _claim_until_empty(engine: sa.Engine, worker: str, seen: list[int]) -> None:
    while batch := claim(engine, worker, T0 + SECOND, limit=3):
        seen.extend(job.id for job in batch)


def test_concurrent_claims_never_return_one_job_twice(engine: sa.Engine, backend: str) -> None:
    ids = _enqueue(engine, 120)
    workers = 4
    results: list[list[int]] = [[] for _ in range(workers)]
    barrier = threading.Barrier(workers)

    def work(n: int) -> None:
        barrier.wait()
        _claim_until_empty(engine, f"w{n}", results[n])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    claimed = [job_id for result in results for job_id in result]
    assert sorted(claimed) == ids  # each job exactly once
    if backend == "postgresql":
        # The workers really overlapped. On SQLite one thread may win the
        # write lock every time while the others back off; that is allowed.
        assert sum(1 for result in results if result) >= 2


def test_worker_threads_run_every_job_exactly_once(probed: sa.Engine) -> None:
    ids = _enqueue(probed, 60)
    stop = threading.Event()
    clock = ManualClock(T0 + SECOND)
    workers = [
        Worker(
            probed,
            _registry(),
            clock=clock,
            stop_event=stop,
            poll_interval=0.01,
            batch_size=4,
            worker_id=f"w{n}",
        )
        for n in range(3)
    ]
    threads = [worker.start_thread() for worker in workers]
    deadline = time.monotonic() + 60
    while len(probe_ids(probed)) < len(ids) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
        assert not thread.is_alive()
    assert probe_ids(probed) == ids
    with probed.connect() as conn:
        jobs = list_jobs(conn, limit=1000)
    assert {job.status for job in jobs} == {"done"}
    assert {job.attempts for job in jobs} == {1}


def test_a_worker_keeps_polling_after_a_database_error(caplog: pytest.LogCaptureFixture) -> None:
    broken_engine = sa.create_engine("sqlite:////nonexistent-dir/formflow.db")
    worker = Worker(broken_engine, _registry(), poll_interval=0.01, worker_id="w-broken")
    thread = worker.start_thread()
    time.sleep(0.1)
    worker.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert caplog.text.count("polling failed") >= 2


def test_worker_settings_are_checked(probed: sa.Engine) -> None:
    with pytest.raises(ValueError):
        Worker(probed, _registry(), poll_interval=0)
    with pytest.raises(ValueError):
        Worker(probed, _registry(), batch_size=0)
    assert Worker(probed, _registry()).worker_id.count(":") == 2
