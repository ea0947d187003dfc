"""Jobs at runtime: the registry's contributors, the server's embedded worker,
``formflow worker`` as a real process (SIGTERM, SIGKILL and restart), ``formflow jobs``."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient

from engine.jobs import HandlerRegistry, enqueue, get_job, job_table, run_once
from engine.system import admin_audit_table
from runtime.cli import cli
from runtime.jobs import NOOP, build_registry, build_worker
from runtime.settings import Settings, SettingsError, load_settings
from runtime.web.app import create_app

REPO_ROOT = Path(__file__).resolve().parents[2]
FAST = {"worker_poll_seconds": 0.02}

probe_table = sa.Table(
    "probe_run",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.BigInteger, nullable=False),
)

# `formflow worker` with one more contributor: "probe" jobs note their start
# in a file (outside any transaction), write a row (in the job's), then sleep.
WORKER = """
import os, time
import sqlalchemy as sa
from runtime import jobs
from runtime.cli import main

def register_probe(registry):
    def probe(conn, job):
        with open(os.environ["PROBE_STARTS"], "a") as starts:
            starts.write(f"{job.id}\\n")
        conn.execute(sa.text("INSERT INTO probe_run (job_id) VALUES (:id)"), {"id": job.id})
        time.sleep(job.payload.get("seconds", 0))
    registry.register("probe", probe)

jobs.CONTRIBUTORS = (*jobs.CONTRIBUTORS, register_probe)
main()
"""


def jobs_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("formflow-jobs")]


def wait_for(condition: Callable[[], bool], timeout: float = 20, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or condition}")
        time.sleep(0.02)


def statuses(engine: sa.Engine) -> dict[int, str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(job_table.c.id, job_table.c.status))
        return {row.id: row.status for row in rows}


def add_jobs(engine: sa.Engine, kind: str, count: int, **payload: object) -> list[int]:
    with engine.begin() as conn:
        return [enqueue(conn, kind, dict(payload)) for _ in range(count)]


# --- the registry and the settings -------------------------------------------------------


EVERY_KIND = [
    NOOP,
    "process.escalate",
    "process.remind",
    "process.service",
    "process.timer",
    "process.timer_start",
]


def test_registry_is_built_from_contributors() -> None:
    assert sorted(build_registry()) == EVERY_KIND

    def mail(registry: HandlerRegistry) -> None:
        registry.register("notification", lambda conn, job: None)

    assert list(build_registry([mail])) == ["notification"]
    assert sorted(build_registry()) == EVERY_KIND  # nothing left behind in a shared registry
    with pytest.raises(ValueError, match="already registered"):
        build_registry([mail, mail])


def test_worker_settings(tmp_path: Path) -> None:
    defaults = load_settings({"FORMFLOW_DATA_DIR": str(tmp_path)})
    assert (defaults.worker, defaults.worker_poll_seconds, defaults.worker_batch_size) == (
        "embedded",
        1.0,
        10,
    )
    env = {
        "FORMFLOW_DATA_DIR": str(tmp_path),
        "FORMFLOW_WORKER": "Off",
        "FORMFLOW_WORKER_POLL_SECONDS": "0.25",
        "FORMFLOW_WORKER_BATCH_SIZE": "3",
        "FORMFLOW_WORKER_LEASE_SECONDS": "60",
    }
    settings = load_settings(env)
    assert settings.worker == "off"
    worker = build_worker(settings, sa.create_engine("sqlite://"))
    assert (worker.poll_interval, worker.batch_size) == (0.25, 3)
    assert worker.lease == dt.timedelta(minutes=1)
    assert sorted(worker.registry) == EVERY_KIND
    with pytest.raises(SettingsError, match="FORMFLOW_WORKER:"):
        load_settings({**env, "FORMFLOW_WORKER": "celery"})
    with pytest.raises(SettingsError, match="FORMFLOW_WORKER_POLL_SECONDS:"):
        load_settings({**env, "FORMFLOW_WORKER_POLL_SECONDS": "0"})


# --- the embedded worker ----------------------------------------------------------------


def test_an_app_starts_no_worker_unless_asked(engine: sa.Engine, database_url: str) -> None:
    [job_id] = add_jobs(engine, NOOP, 1)
    app = create_app(Settings(database_url=database_url, **FAST), engine=engine)
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        assert jobs_threads() == []
        time.sleep(0.1)
    assert statuses(engine) == {job_id: "pending"}

    off = Settings(database_url=database_url, worker="off", **FAST)
    app = create_app(off, engine=engine, run_jobs=True)
    with TestClient(app):
        assert app.state.jobs_worker is None and jobs_threads() == []


def test_the_embedded_worker_runs_jobs_for_the_apps_lifetime(
    engine: sa.Engine, database_url: str
) -> None:
    app = create_app(Settings(database_url=database_url, **FAST), engine=engine, run_jobs=True)
    with TestClient(app) as client:
        worker = app.state.jobs_worker
        [thread] = jobs_threads()
        job_ids = add_jobs(engine, NOOP, 3)
        wait_for(lambda: set(statuses(engine).values()) == {"done"}, what="the jobs to run")
        assert client.get("/readyz").status_code == 200
    assert worker.stop_event.is_set() and not thread.is_alive() and jobs_threads() == []
    with engine.connect() as conn:
        assert {get_job(conn, i).locked_by for i in job_ids} == {None}


# --- real processes ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def processes() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """``start(code, *args, env=...)`` runs ``python -c code args``; none outlives the test."""
    started: list[subprocess.Popen[str]] = []
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FORMFLOW_")}

    def start(code: str, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            env={**clean, **env},
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def output_of(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    return process.stdout.read()


@pytest.fixture
def probe_env(engine: sa.Engine, database_url: str, tmp_path: Path) -> dict[str, str]:
    probe_table.create(engine)
    return {
        "FORMFLOW_DATA_DIR": str(tmp_path / "data"),
        "FORMFLOW_DATABASE_URL": database_url,
        "FORMFLOW_WORKER_POLL_SECONDS": "0.02",
        "FORMFLOW_WORKER_LEASE_SECONDS": "1",
        "PROBE_STARTS": str(tmp_path / "starts"),
    }


def probe_runs(engine: sa.Engine) -> list[int]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(probe_table.c.job_id)).scalars())


def starts(env: dict[str, str]) -> list[int]:
    path = Path(env["PROBE_STARTS"])
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def test_formflow_worker_runs_jobs_and_stops_gracefully_on_sigterm(
    engine: sa.Engine, probe_env: dict[str, str], processes: Callable[..., subprocess.Popen[str]]
) -> None:
    quick = add_jobs(engine, "probe", 5)
    worker = processes(WORKER, "worker", env=probe_env)
    wait_for(lambda: set(statuses(engine).values()) == {"done"}, what="the first jobs")

    [slow] = add_jobs(engine, "probe", 1, seconds=0.5)
    wait_for(lambda: slow in starts(probe_env), what="the slow job to start")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0, output_of(worker)

    # It finished the job in hand before exiting.
    assert statuses(engine)[slow] == "done"
    assert probe_runs(engine) == [*quick, slow]
    out = output_of(worker)
    assert "polling every 0.02 s" in out and "noop, probe" in out
    assert "SIGTERM: stopping after the jobs in hand" in out
    assert out.rstrip().endswith("Jobs worker stopped.")


def test_a_killed_worker_s_jobs_run_exactly_once_after_a_restart(
    engine: sa.Engine, probe_env: dict[str, str], processes: Callable[..., subprocess.Popen[str]]
) -> None:
    job_ids = add_jobs(engine, "probe", 4, seconds=0.3)
    first = processes(WORKER, "worker", env=probe_env)
    wait_for(lambda: len(starts(probe_env)) >= 2, what="the second job to start")
    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=30) == -signal.SIGKILL
    killed_in = starts(probe_env)[-1]
    with engine.connect() as conn:
        assert get_job(conn, killed_in).status == "running"  # its lease has to run out

    second = processes(WORKER, "worker", env=probe_env)
    wait_for(lambda: set(statuses(engine).values()) == {"done"}, what="every job to run")
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=30) == 0, output_of(second)

    # The job the kill interrupted ran twice; its first run left nothing behind.
    assert starts(probe_env).count(killed_in) == 2
    assert probe_runs(engine) == job_ids
    with engine.connect() as conn:
        assert get_job(conn, killed_in).attempts == 2


def test_formflow_serve_runs_the_embedded_worker(
    engine: sa.Engine, probe_env: dict[str, str], processes: Callable[..., subprocess.Popen[str]]
) -> None:
    [job_id] = add_jobs(engine, NOOP, 1)
    port = free_port()
    server = processes(
        "from runtime.cli import main; main()", "serve", "--port", str(port), env=probe_env
    )

    def served() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return server.poll() is not None

    wait_for(served, timeout=60, what="the server")
    wait_for(lambda: statuses(engine)[job_id] == "done", what="the embedded worker")
    server.send_signal(signal.SIGTERM)
    # uvicorn shuts down (the lifespan stops the worker), then re-raises the signal.
    assert server.wait(timeout=30) in (0, -signal.SIGTERM)
    assert "Application shutdown complete." in output_of(server)


# --- formflow jobs -------------------------------------------------------------------------


@pytest.fixture
def run(database_url: str, tmp_path: Path) -> Callable[..., Result]:
    runner = CliRunner()
    unset: dict[str, str | None] = {f"FORMFLOW_{n.upper()}": None for n in Settings.model_fields}
    env = {**unset, "FORMFLOW_DATA_DIR": str(tmp_path / "data")}

    def run(*args: str) -> Result:
        return runner.invoke(cli, ["--database-url", database_url, *args], env=env)

    return run


def test_jobs_commands(engine: sa.Engine, run: Callable[..., Result]) -> None:
    ok, bad, waiting = add_jobs(engine, "ok", 3)
    with engine.begin() as conn:
        conn.execute(sa.update(job_table).where(job_table.c.id == bad).values(kind="mail"))
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        conn.execute(sa.update(job_table).where(job_table.c.id == waiting).values(run_at=later))
    registry = HandlerRegistry()
    registry.register("ok", lambda conn, job: None)
    run_once(engine, registry, worker_id="test")

    listed = run("jobs", "list")
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert lines[0].split() == [
        "ID",
        "KIND",
        "STATUS",
        "TRIES",
        "RUN",
        "AT",
        "(UTC)",
        "LAST",
        "ERROR",
    ]
    assert [line.split()[:4] for line in lines[1:]] == [
        [str(waiting), "ok", "pending", "0/5"],
        [str(bad), "mail", "incident", "1/5"],
        [str(ok), "ok", "done", "1/5"],
    ]
    assert "PermanentJobError: No handler is registered for job kind 'mail'." in lines[2]
    incidents = run("jobs", "list", "--status", "incident").stdout.splitlines()[1:]
    assert [line.split()[0] for line in incidents] == [str(bad)]
    assert run("jobs", "list", "--kind", "none").stdout == "No jobs.\n"

    shown = run("jobs", "show", str(bad))
    assert shown.exit_code == 0, shown.output
    assert "status:       incident" in shown.stdout and "payload:      {}" in shown.stdout
    assert shown.stdout.rstrip().endswith("No handler is registered for job kind 'mail'.")

    stats = run("jobs", "stats").stdout
    assert {tuple(line.split()) for line in stats.splitlines()[1:]} == {
        ("pending", "1"),
        ("running", "0"),
        ("done", "1"),
        ("incident", "1"),
        ("cancelled", "0"),
        ("overdue", "0"),
        ("expired", "lease", "0"),
    }

    retried = run("jobs", "retry", str(bad), "--max-attempts", "2")
    assert retried.exit_code == 0, retried.output
    assert retried.stdout == f"Job {bad} (mail) is pending again, up to 2 attempts.\n"
    again = run("jobs", "retry", str(bad))
    assert again.exit_code == 1
    assert f"Job {bad} is pending; only a job that is incident can be retried." in again.stderr

    assert run("jobs", "cancel", str(waiting)).stdout == f"Job {waiting} (ok) cancelled.\n"
    refused = run("jobs", "cancel", str(ok))
    assert refused.exit_code == 1 and f"Job {ok} is done" in refused.stderr
    missing = run("jobs", "show", "999")
    assert missing.exit_code == 1 and "Job 999 does not exist." in missing.stderr
    assert run("jobs", "retry", "0").exit_code == 2  # not an id

    with engine.connect() as conn:
        audit = conn.execute(
            sa.select(
                admin_audit_table.c.actor_id,
                admin_audit_table.c.entity_key,
                admin_audit_table.c.action,
            ).where(admin_audit_table.c.entity == "job")
        ).all()
    assert [tuple(row) for row in audit] == [
        (None, str(bad), "retry"),
        (None, str(waiting), "cancel"),
    ]


def test_formflow_worker_refuses_a_database_that_is_not_upgraded(
    empty_database_url: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        cli,
        ["--database-url", empty_database_url, "worker"],
        env={"FORMFLOW_DATA_DIR": str(tmp_path)},
    )
    assert result.exit_code == 1
    assert "run `formflow db upgrade` first" in result.stderr
    assert jobs_threads() == []
