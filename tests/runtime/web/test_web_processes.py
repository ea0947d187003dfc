"""Processes and tasks over HTTP: publish, start bound to a record, inbox, approve, races."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI
from process_support import approval, properties
from web_support import Account, Api, MakeApp, add_user, grant_everything, records_url

from permissions.org import create_role
from permissions.policy import PolicyStore

NOW = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)
XML = {"Content-Type": "application/xml"}


def reviewer(api: Api, name: str) -> Account:
    """A user holding the reviewer role (and the grant-everything staff role)."""
    account = add_user(api.engine, name)
    grant_everything(api.engine, account.id)
    with api.engine.begin() as conn:
        PolicyStore(conn, actor_id=None, now=NOW).assign_role(account.id, "reviewer")
    return account


def setup(api: Api) -> None:
    with api.engine.begin() as conn:
        create_role(conn, key="reviewer", name="审核人", actor_id=None, now=NOW)
    r = api.client.post(
        "/api/v1/processes", content=approval(), headers={**api.admin.headers, **XML}
    )
    assert r.status_code == 201, r.text


def test_publish_is_for_administrators_and_names_bad_elements(api: Api) -> None:
    with api.engine.begin() as conn:
        create_role(conn, key="reviewer", name="审核人", actor_id=None, now=NOW)
    headers = {**api.admin.headers, **XML}
    r = api.client.post("/api/v1/processes", content=approval(), headers=headers)
    assert (r.status_code, r.json()["key"], r.json()["version"]) == (201, "review_flow", 1)
    again = api.client.post("/api/v1/processes", content=approval(), headers=headers)
    assert (again.status_code, again.json()["changed"]) == (200, False)
    denied = api.client.post(
        "/api/v1/processes", content=approval(), headers={**api.clerk.headers, **XML}
    )
    assert denied.status_code == 403
    bad = approval(task_props=properties(candidateRoles="ghost"), condition="amount >")
    refused = api.client.post("/api/v1/processes", content=bad, headers=headers)
    assert refused.status_code == 422
    assert {e["pointer"] for e in refused.json()["errors"]} == {"#review", "#f3"}
    listed = api.client.get("/api/v1/processes", headers=api.clerk.headers).json()
    assert listed["items"] == [
        {"key": "review_flow", "name": "审批", "version": 1, "startable": True}
    ]


def test_start_bound_to_a_record_inbox_claim_approve_and_history(api: Api) -> None:
    setup(api)
    rita = reviewer(api, "rita")
    record = api.create("sample", {"title": "贷款 42"}, who=api.clerk)
    start = api.client.post(
        "/api/v1/processes/review_flow/instances",
        json={"data": {"amount": "500000.00"}, "record": {"form": "sample", "id": record["id"]}},
        headers=api.clerk.headers,
    )
    assert start.status_code == 201, start.text
    instance = start.json()
    assert instance["record"] == {"form": "sample", "id": record["id"]}
    (task,) = instance["tasks"]
    assert (task["element_id"], task["status"], task["assignee_id"]) == ("review", "open", None)

    def inbox(who: Account, view: str) -> list[int]:
        r = api.client.get(f"/api/v1/tasks?view={view}", headers=who.headers)
        assert r.status_code == 200, r.text
        return [t["id"] for t in r.json()["items"]]

    assert inbox(rita, "group") == [task["id"]] and inbox(rita, "mine") == []
    assert inbox(api.clerk, "group") == [] and inbox(api.clerk, "started") == [task["id"]]
    # Someone who is neither candidate nor starter cannot see or take it.
    bob = add_user(api.engine, "bob")
    grant_everything(api.engine, bob.id)
    hidden = api.client.post(f"/api/v1/tasks/{task['id']}:approve", json={}, headers=bob.headers)
    assert hidden.status_code == 404
    claimed = api.client.post(f"/api/v1/tasks/{task['id']}:claim", headers=rita.headers)
    assert claimed.json()["assignee_id"] == rita.id
    assert inbox(rita, "mine") == [task["id"]]
    done = api.client.post(
        f"/api/v1/tasks/{task['id']}:approve", json={"comment": "同意放款"}, headers=rita.headers
    )
    assert (done.status_code, done.json()["status"], done.json()["outcome"]) == (
        200,
        "done",
        "approve",
    )
    assert inbox(rita, "done") == [task["id"]]
    # The gateway routed to the initiator's notification task.
    assert len(inbox(api.clerk, "mine")) == 1
    view = api.client.get(
        f"/api/v1/processes/instances/{instance['id']}", headers=api.clerk.headers
    ).json()
    assert [(h["action"], h["comment"]) for h in view["history"]] == [
        ("start", None),
        ("claim", None),
        ("approve", "同意放款"),
    ]
    stranger = api.client.get(f"/api/v1/processes/instances/{instance['id']}", headers=bob.headers)
    assert stranger.status_code == 404


def test_a_record_out_of_scope_cannot_start_a_process(api: Api) -> None:
    setup(api)
    theirs = api.create("sample", {"title": "theirs"})
    with api.engine.begin() as conn:
        store = PolicyStore(conn, actor_id=None, now=NOW)
        store.unassign_role(api.clerk.id, "staff")
        store.set_action("own_only", "sample", "read")
        store.set_scope("own_only", "sample", "read", "own")
        store.assign_role(api.clerk.id, "own_only")
    r = api.client.post(
        "/api/v1/processes/review_flow/instances",
        json={"record": {"form": "sample", "id": theirs["id"]}},
        headers=api.clerk.headers,
    )
    assert r.status_code == 404
    assert (
        api.client.get(records_url("sample", theirs["id"]), headers=api.clerk.headers).status_code
        == 404
    )


def test_two_people_completing_one_task_at_once_one_wins(
    api: Api, make_app: MakeApp, live_server: Callable[[FastAPI], str]
) -> None:
    setup(api)
    rita, rob = reviewer(api, "rita"), reviewer(api, "rob")
    started = api.client.post(
        "/api/v1/processes/review_flow/instances", json={}, headers=api.clerk.headers
    ).json()
    task_id = started["tasks"][0]["id"]
    base = live_server(make_app())
    barrier = threading.Barrier(2)
    results: dict[str, Any] = {}

    def approve(who: Account) -> None:
        with httpx.Client(base_url=base, timeout=30) as client:
            barrier.wait()
            results[who.username] = client.post(
                f"/api/v1/tasks/{task_id}:approve", json={}, headers=who.headers
            )

    threads = [threading.Thread(target=approve, args=(w,)) for w in (rita, rob)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    codes = sorted(r.status_code for r in results.values())
    assert codes == [200, 409], {k: r.text for k, r in results.items()}
    loser = next(r for r in results.values() if r.status_code == 409)
    assert loser.headers["content-type"] == "application/problem+json"
    assert "already done" in loser.json()["detail"]


def test_a_bound_record_s_values_drive_assignment_and_conditions(api: Api) -> None:
    with api.engine.begin() as conn:
        create_role(conn, key="reviewer", name="审核人", actor_id=None, now=NOW)
    bpmn = approval(
        key="by_owner",
        task_props=properties(assignee="record.owner_id"),
        condition='outcome == "approve" and record.qty > 10',
    )
    headers = {**api.admin.headers, **XML}
    assert api.client.post("/api/v1/processes", content=bpmn, headers=headers).status_code == 201
    outcomes = {}
    for qty in (50, 5):
        record = api.create("sample", {"title": f"数量 {qty}", "qty": qty}, who=api.clerk)
        r = api.client.post(
            "/api/v1/processes/by_owner/instances",
            json={"record": {"form": "sample", "id": record["id"]}},
            headers=api.admin.headers,
        )
        assert r.status_code == 201, r.text
        started = r.json()
        (task,) = started["tasks"]
        assert task["assignee_id"] == api.clerk.id  # the record's owner
        r = api.client.post(
            f"/api/v1/tasks/{task['id']}:approve", json={}, headers=api.clerk.headers
        )
        assert r.status_code == 200, r.text
        view = api.client.get(
            f"/api/v1/processes/instances/{started['id']}", headers=api.admin.headers
        ).json()
        outcomes[qty] = [t["element_id"] for t in view["tasks"] if t["status"] == "open"]
    assert outcomes == {50: ["notify"], 5: []}
