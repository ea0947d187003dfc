"""/api/v1/admin/jobs: list and page jobs, read one, retry incidents, cancel, count."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from admin_support import ADMIN, audit_since, last_audit_id
from web_support import Api

from engine.jobs import HandlerRegistry, enqueue, job_table, run_once

JOBS = f"{ADMIN}/jobs"


def add_jobs(api: Api, *kinds: str, **options: Any) -> list[int]:
    with api.engine.begin() as conn:
        return [enqueue(conn, kind, {"n": n}, **options) for n, kind in enumerate(kinds)]


def run_due(api: Api) -> None:
    """One worker round in which ``ok`` jobs succeed and every other kind is an incident."""
    registry = HandlerRegistry()
    registry.register("ok", lambda conn, job: None)
    run_once(api.engine, registry, worker_id="test")


def get(api: Api, url: str) -> Any:
    r = api.client.get(url, headers=api.admin.headers)
    assert r.status_code == 200, r.text
    return r.json()


def post(api: Api, url: str, body: Any = None) -> Any:
    kwargs = {} if body is None else {"json": body}
    return api.client.post(url, headers=api.admin.headers, **kwargs)


def test_list_filter_and_page(api: Api) -> None:
    ok1, bad, ok2, later = add_jobs(api, "ok", "mail", "ok", "ok")
    with api.engine.begin() as conn:
        tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        conn.execute(sa.update(job_table).where(job_table.c.id == later).values(run_at=tomorrow))
    run_due(api)

    everything = get(api, JOBS)
    assert [j["id"] for j in everything["items"]] == [later, ok2, bad, ok1]
    assert everything["next_cursor"] is None
    incident = everything["items"][2]
    assert incident["status"] == "incident" and incident["kind"] == "mail"
    assert "No handler is registered for job kind 'mail'" in incident["last_error"]
    assert incident["payload"] == {"n": 1} and incident["attempts"] == 1

    assert [j["id"] for j in get(api, f"{JOBS}?status=incident")["items"]] == [bad]
    assert [j["id"] for j in get(api, f"{JOBS}?status=done&kind=ok")["items"]] == [ok2, ok1]
    assert get(api, f"{JOBS}?kind=nothing")["items"] == []

    first = get(api, f"{JOBS}?limit=3")
    assert [j["id"] for j in first["items"]] == [later, ok2, bad]
    second = get(api, f"{JOBS}?limit=3&cursor={first['next_cursor']}")
    assert [j["id"] for j in second["items"]] == [ok1] and second["next_cursor"] is None

    r = api.client.get(f"{JOBS}?status=lost", headers=api.admin.headers)
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/query/status"


def test_read_a_job_or_404(api: Api) -> None:
    [job_id] = add_jobs(api, "ok", dedupe_key="once")
    job = get(api, f"{JOBS}/{job_id}")
    assert job["status"] == "pending" and job["dedupe_key"] == "once"
    assert job["max_attempts"] == 5 and job["locked_by"] is None
    r = api.client.get(f"{JOBS}/{job_id + 1}", headers=api.admin.headers)
    assert r.status_code == 404
    assert r.json()["detail"] == f"Job {job_id + 1} does not exist."


def test_retry_an_incident_audited(api: Api) -> None:
    ok, bad = add_jobs(api, "ok", "mail", max_attempts=1)
    run_due(api)
    since = last_audit_id(api)

    r = post(api, f"{JOBS}/{bad}:retry", {"max_attempts": 3})
    assert r.status_code == 200, r.text
    retried = r.json()
    assert (retried["status"], retried["attempts"], retried["max_attempts"]) == ("pending", 0, 3)
    assert retried["finished_at"] is None and "mail" in retried["last_error"]
    [entry] = audit_since(api, since)
    assert (entry["actor_id"], entry["entity"], entry["entity_key"]) == (
        api.admin.id,
        "job",
        str(bad),
    )
    assert entry["action"] == "retry"
    assert entry["before"] == {"status": "incident", "attempts": 1, "max_attempts": 1}
    assert entry["after"] == {"status": "pending", "attempts": 0, "max_attempts": 3}

    # Only incidents: a pending or done job is refused with its status.
    for job_id, status in ((bad, "pending"), (ok, "done")):
        refused = post(api, f"{JOBS}/{job_id}:retry")
        assert refused.status_code == 409, refused.text
        assert refused.json()["detail"].startswith(f"Job {job_id} is {status}")
    assert post(api, f"{JOBS}/{bad + 100}:retry").status_code == 404
    assert post(api, f"{JOBS}/{bad}:retry", {"max_attempts": 0}).status_code == 422
    assert post(api, f"{JOBS}/{bad}:retry", {"attempts": 3}).status_code == 422
    assert len(audit_since(api, since)) == 1


def test_cancel_pending_or_incident_not_done(api: Api) -> None:
    ok, bad, waiting = add_jobs(api, "ok", "mail", "ok", max_attempts=1)
    with api.engine.begin() as conn:
        tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        conn.execute(sa.update(job_table).where(job_table.c.id == waiting).values(run_at=tomorrow))
    run_due(api)
    since = last_audit_id(api)

    for job_id in (waiting, bad):
        r = post(api, f"{JOBS}/{job_id}:cancel")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "cancelled" and r.json()["finished_at"] is not None
    refused = post(api, f"{JOBS}/{ok}:cancel")
    assert refused.status_code == 409
    assert refused.json()["type"] == "urn:formflow:problem:conflict"
    assert [
        (e["entity_key"], e["action"], e["before"]["status"]) for e in audit_since(api, since)
    ] == [
        (str(waiting), "cancel", "pending"),
        (str(bad), "cancel", "incident"),
    ]


def test_stats_count_statuses_backlog_and_expired_leases(api: Api) -> None:
    assert get(api, f"{JOBS}:stats") == {
        "pending": 0,
        "running": 0,
        "done": 0,
        "incident": 0,
        "cancelled": 0,
        "overdue": 0,
        "expired_leases": 0,
    }
    now = dt.datetime.now(dt.UTC)
    add_jobs(api, "ok", "mail", max_attempts=1)
    run_due(api)
    add_jobs(api, "ok", "ok", run_at=now - dt.timedelta(minutes=5))  # overdue
    add_jobs(api, "ok", run_at=now + dt.timedelta(minutes=5))  # not yet due
    [dead, alive] = add_jobs(api, "ok", "ok")
    with api.engine.begin() as conn:
        for job_id, until in (
            (dead, now - dt.timedelta(seconds=1)),
            (alive, now + dt.timedelta(minutes=1)),
        ):
            conn.execute(
                sa.update(job_table)
                .where(job_table.c.id == job_id)
                .values(status="running", locked_by="w", locked_until=until, attempts=1)
            )
    stats = get(api, f"{JOBS}:stats")
    assert stats == {
        "pending": 3,
        "running": 2,
        "done": 1,
        "incident": 1,
        "cancelled": 0,
        "overdue": 2,
        "expired_leases": 1,
    }
