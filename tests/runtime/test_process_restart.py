"""A server killed with SIGKILL while process timers are pending loses nothing.

Real ``formflow serve`` processes with their embedded jobs worker: instances
are started over HTTP, the server is killed before their timers are due, the
timers fall due while it is down, and a new server fires each exactly once;
every instance is intact and goes on.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from process_support import HEADER, properties, publish, seed

from engine.jobs.table import job_table
from engine.processes.tables import history_table, instance_table, work_item_table
from permissions.policy import PolicyStore
from runtime.auth.service import issue_session

REPO = Path(__file__).resolve().parents[2]
INSTANCES = 6
TIMED = (
    HEADER
    + f"""
  <bpmn:process id="cool_off" name="冷静期" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:intermediateCatchEvent id="wait" name="等待冷静期">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDuration>PT3S</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:userTask id="review" name="复核">{properties(candidateRoles="reviewer")}
      <bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="wait" />
    <bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="review" />
    <bpmn:sequenceFlow id="f3" sourceRef="review" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def serve(
    database_url: str, tmp_path: Path
) -> Iterator[Callable[[], tuple[subprocess.Popen[str], str]]]:
    started: list[subprocess.Popen[str]] = []
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORMFLOW_")}
    env |= {
        "FORMFLOW_DATABASE_URL": database_url,
        "FORMFLOW_DATA_DIR": str(tmp_path / "data"),
        "FORMFLOW_WORKER_POLL_SECONDS": "0.05",
        "FORMFLOW_WORKER_LEASE_SECONDS": "1",
    }

    def start() -> tuple[subprocess.Popen[str], str]:
        port = free_port()
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from runtime.cli import main; main()",
                "serve",
                "--port",
                str(port),
            ],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started.append(process)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    return process, base
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def open_reviews(engine: sa.Engine) -> int:
    w = work_item_table
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(w.c.element_id == "review", w.c.status == "open")
            ).scalar_one()
        )


def test_timers_survive_a_killed_server_and_fire_once(
    engine: sa.Engine, serve: Callable[[], tuple[subprocess.Popen[str], str]]
) -> None:
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        ids = seed(conn)
        publish(conn, TIMED)
        token, _ = issue_session(conn, ids["alice"], now=now, ttl=dt.timedelta(hours=1))
        rita, _ = issue_session(conn, ids["rita"], now=now, ttl=dt.timedelta(hours=1))
        PolicyStore(conn, actor_id=None, now=now).assign_role(ids["rita"], "reviewer")
    first, base = serve()
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(INSTANCES):
        r = httpx.post(f"{base}/api/v1/processes/cool_off/instances", json={}, headers=headers)
        assert r.status_code == 201, r.text
    first.send_signal(signal.SIGKILL)  # mid-run: every instance waits on its timer
    assert first.wait(timeout=30) == -signal.SIGKILL
    assert open_reviews(engine) == 0
    time.sleep(3.5)  # the timers fall due while no server runs

    second, base = serve()
    deadline = time.monotonic() + 60
    while open_reviews(engine) < INSTANCES:
        assert time.monotonic() < deadline, "the timers did not fire after the restart"
        time.sleep(0.1)
    time.sleep(0.5)  # room for a duplicate, if there were one
    with engine.connect() as conn:
        timers = conn.execute(
            sa.select(history_table.c.instance_id).where(history_table.c.action == "timer")
        ).scalars()
        assert sorted(timers) == sorted(conn.execute(sa.select(instance_table.c.id)).scalars())
        jobs = conn.execute(
            sa.select(job_table.c.status, sa.func.count()).group_by(job_table.c.status)
        ).all()
        assert dict(jobs) == {"done": INSTANCES}
    assert open_reviews(engine) == INSTANCES
    # Every instance is intact and goes on: complete one.
    with engine.connect() as conn:
        task = conn.execute(sa.select(work_item_table.c.id).limit(1)).scalar_one()
    done = httpx.post(
        f"{base}/api/v1/tasks/{task}:approve", json={}, headers={"Authorization": f"Bearer {rita}"}
    )
    assert done.status_code == 200, done.text
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=30) in (0, -signal.SIGTERM)
