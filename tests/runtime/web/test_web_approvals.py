"""Approval operations over HTTP: transfer, delegate/resolve, add signer, return, withdraw, CC."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from process_support import chain, multi_instance
from web_support import Account, Api, add_user, grant_everything

from permissions.org import create_role
from permissions.policy import PolicyStore

NOW = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)
XML = {"Content-Type": "application/xml"}


class Flow:
    """The chain process (draft by the starter -> review by reviewers -> final by bob)."""

    def __init__(self, api: Api) -> None:
        self.api = api
        with api.engine.begin() as conn:
            create_role(conn, key="reviewer", name="审核人", actor_id=None, now=NOW)
        for bpmn in (chain(), multi_instance()):
            r = api.client.post(
                "/api/v1/processes", content=bpmn, headers={**api.admin.headers, **XML}
            )
            assert r.status_code == 201, r.text
        self.rita = self.user("rita", "reviewer")
        self.bob, self.carol, self.dave = (self.user(n) for n in ("bob", "carol", "dave"))
        self.clerk = api.clerk

    def user(self, name: str, role: str | None = None) -> Account:
        account = add_user(self.api.engine, name)
        grant_everything(self.api.engine, account.id)
        if role:
            with self.api.engine.begin() as conn:
                PolicyStore(conn, actor_id=None, now=NOW).assign_role(account.id, role)
        return account

    def start(self, key: str = "chain", **data: Any) -> dict[str, Any]:
        r = self.api.client.post(
            f"/api/v1/processes/{key}/instances", json={"data": data}, headers=self.clerk.headers
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    def post(self, who: Account, url: str, body: Any = None) -> httpx.Response:
        path = url if url.startswith("/") else f"/api/v1/tasks/{url}"
        return self.api.client.post(path, json=body, headers=who.headers)

    def instance(self, instance_id: int, who: Account | None = None) -> httpx.Response:
        return self.api.client.get(
            f"/api/v1/processes/instances/{instance_id}", headers=(who or self.clerk).headers
        )

    def open(self, instance_id: int) -> list[tuple[str, int | None, int]]:
        tasks = self.instance(instance_id).json()["tasks"]
        return [
            (t["element_id"], t["assignee_id"], t["id"]) for t in tasks if t["status"] == "open"
        ]

    def at_review(self) -> tuple[int, int]:
        """An instance whose draft is submitted and whose review rita claimed."""
        instance = self.start()["id"]
        ((_, _, draft),) = self.open(instance)
        assert self.post(self.clerk, f"{draft}:complete", {}).status_code == 200
        ((_, _, review),) = self.open(instance)
        assert self.post(self.rita, f"{review}:claim").status_code == 200
        return instance, review


def test_transfer(api: Api) -> None:
    flow = Flow(api)
    instance, review = flow.at_review()
    stranger = flow.post(flow.dave, f"{review}:transfer", {"to": "bob"})
    assert stranger.status_code == 404  # not a task dave may see
    bad = flow.post(flow.rita, f"{review}:transfer", {"to": "ghost", "extra": 1})
    assert bad.status_code == 422
    assert {e["pointer"] for e in bad.json()["errors"]} == {"/extra"}
    unknown = flow.post(flow.rita, f"{review}:transfer", {"to": "ghost"})
    assert (unknown.status_code, unknown.json()["errors"][0]["pointer"]) == (422, "/to")
    assert flow.post(flow.rita, f"{review}:transfer", {}).status_code == 422
    done = flow.post(flow.rita, f"{review}:transfer", {"to": "carol", "comment": "休假"})
    assert (done.status_code, done.json()["assignee_id"]) == (200, flow.carol.id)
    # rita, who may still see the task as a candidate, no longer has it.
    refused = flow.post(flow.rita, f"{review}:transfer", {"to": "dave"})
    assert refused.status_code == 403 and "Only carol" in refused.json()["detail"]
    assert flow.post(flow.carol, f"{review}:approve", {}).status_code == 200
    again = flow.post(flow.carol, f"{review}:transfer", {"to": "dave"})
    assert again.status_code == 409
    history = flow.instance(instance).json()["history"]
    assert [(h["action"], h["comment"]) for h in history][3:5] == [
        ("transfer", "休假"),
        ("approve", None),
    ]


def test_delegate_and_resolve(api: Api) -> None:
    flow = Flow(api)
    _, review = flow.at_review()
    delegated = flow.post(flow.rita, f"{review}:delegate", {"to": "carol"})
    assert delegated.json()["assignee_id"] == flow.carol.id
    early = flow.post(flow.carol, f"{review}:approve", {})
    assert early.status_code == 409 and "delegated to carol" in early.json()["detail"]
    not_delegate = flow.post(flow.rita, f"{review}:resolve", {})
    assert not_delegate.status_code == 403
    bad = flow.post(flow.carol, f"{review}:resolve", {"data": "yes"})
    assert bad.status_code == 422
    back = flow.post(flow.carol, f"{review}:resolve", {"data": {"ok": True}, "comment": "可以"})
    assert (back.status_code, back.json()["assignee_id"]) == (200, flow.rita.id)
    assert flow.post(flow.rita, f"{review}:approve", {}).status_code == 200


def test_add_signer_before_and_after(api: Api) -> None:
    flow = Flow(api)
    instance, review = flow.at_review()
    body = {"user": "carol", "position": "before", "comment": "请合规会签"}
    assert flow.post(flow.rita, f"{review}:add-signer", body).status_code == 200
    assert (
        flow.post(
            flow.rita, f"{review}:add-signer", {**body, "user": "dave", "position": "after"}
        ).status_code
        == 200
    )
    assert flow.post(flow.rita, f"{review}:add-signer", {"user": "dave"}).status_code == 422
    bad = flow.post(flow.rita, f"{review}:add-signer", {"user": "dave", "position": "middle"})
    assert bad.status_code == 422
    blocked = flow.post(flow.rita, f"{review}:approve", {})
    assert blocked.status_code == 409 and "carol" in blocked.json()["detail"]
    mine = api.client.get("/api/v1/tasks?view=mine", headers=flow.carol.headers).json()["items"]
    (signer,) = [t["id"] for t in mine if t["instance_id"] == instance]
    assert flow.post(flow.carol, f"{signer}:approve", {"comment": "同意"}).status_code == 200
    assert flow.post(flow.rita, f"{review}:approve", {}).status_code == 200
    (after,) = [t for t in flow.open(instance)]
    assert after[:2] == ("review", flow.dave.id)
    assert flow.post(flow.dave, f"{after[2]}:approve", {}).status_code == 200
    assert [t[:2] for t in flow.open(instance)] == [("final", flow.bob.id)]


def test_return_to_an_earlier_step(api: Api) -> None:
    flow = Flow(api)
    instance, review = flow.at_review()
    assert flow.post(flow.rita, f"{review}:approve", {}).status_code == 200
    ((_, _, final),) = flow.open(instance)
    no_reason = flow.post(flow.bob, f"{final}:return", {"to_element": "draft"})
    assert no_reason.status_code == 422
    never = flow.post(flow.bob, f"{final}:return", {"to_element": "final", "comment": "x"})
    assert never.status_code == 409 and "draft, review" in never.json()["detail"]
    back = flow.post(flow.bob, f"{final}:return", {"to_element": "draft", "comment": "缺材料"})
    assert (back.status_code, back.json()["status"]) == (200, "returned")
    assert [t[:2] for t in flow.open(instance)] == [("draft", flow.clerk.id)]
    history = flow.instance(instance).json()["history"]
    assert history[-1]["action"] == "return" and history[-1]["comment"] == "缺材料"
    assert history[-1]["data"] == {"from": "final", "to": "draft"}


def test_withdraw(api: Api) -> None:
    flow = Flow(api)
    instance = flow.start()["id"]
    ((_, _, draft),) = flow.open(instance)
    assert flow.post(flow.clerk, f"{draft}:complete", {}).status_code == 200
    hidden = flow.post(flow.dave, f"/api/v1/processes/instances/{instance}:withdraw")
    assert hidden.status_code == 404
    not_starter = flow.post(flow.rita, f"/api/v1/processes/instances/{instance}:withdraw", {})
    assert not_starter.status_code == 403  # rita may see it (a reviewer), but did not start it
    done = flow.post(
        flow.clerk, f"/api/v1/processes/instances/{instance}:withdraw", {"comment": "填错"}
    )
    assert (done.status_code, done.json()["status"]) == (200, "cancelled")
    assert [t["status"] for t in done.json()["tasks"]] == ["done", "cancelled"]
    again = flow.post(flow.clerk, f"/api/v1/processes/instances/{instance}:withdraw")
    assert again.status_code == 409
    late, _ = flow.at_review()
    refused = flow.post(flow.clerk, f"/api/v1/processes/instances/{late}:withdraw")
    assert refused.status_code == 409 and "rita has already acted" in refused.json()["detail"]


def test_cc_and_the_cc_inbox(api: Api) -> None:
    flow = Flow(api)
    instance, review = flow.at_review()
    url = f"/api/v1/processes/instances/{instance}:cc"
    assert flow.instance(instance, flow.carol).status_code == 404
    assert flow.post(flow.carol, url, {"users": ["dave"]}).status_code == 404
    bad = flow.post(flow.clerk, url, {"users": ["carol", "ghost"]})
    assert (bad.status_code, bad.json()["errors"][0]["pointer"]) == (422, "/users/1")
    assert flow.post(flow.clerk, url, {"users": []}).status_code == 422
    assert flow.post(flow.clerk, url, {"users": ["carol"], "task_id": 999}).status_code == 404
    sent = flow.post(flow.rita, url, {"users": ["carol"], "task_id": review, "comment": "知悉"})
    assert (sent.status_code, sent.json()) == (200, {"sent_to": [flow.carol.id]})
    inbox = api.client.get("/api/v1/tasks?view=cc", headers=flow.carol.headers).json()["items"]
    assert [(c["instance_id"], c["task_id"], c["comment"]) for c in inbox] == [
        (instance, review, "知悉")
    ]
    assert flow.instance(instance, flow.carol).status_code == 200  # read-only access
    assert flow.post(flow.carol, f"{review}:approve", {}).status_code == 404
    assert api.client.get("/api/v1/tasks?view=cc", headers=flow.dave.headers).json() == {
        "items": []
    }


def test_a_countersign_over_http(api: Api) -> None:
    flow = Flow(api)
    instance = flow.start("vote", approvers=["rita", "bob"])["id"]
    assert sorted(t[1] for t in flow.open(instance)) == sorted([flow.rita.id, flow.bob.id])
    for who in (flow.rita, flow.bob):
        (task,) = [t for t in flow.open(instance) if t[1] == who.id]
        assert flow.post(who, f"{task[2]}:approve", {}).status_code == 200
    assert [t[:2] for t in flow.open(instance)] == [("notify", flow.clerk.id)]
