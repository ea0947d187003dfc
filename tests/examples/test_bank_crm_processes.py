"""The bank CRM's example processes, end to end through the REST API as the demo staff."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from engine.apps import import_app
from engine.catalog import load_schema
from engine.records.service import Actor, RecordStore
from engine.jobs import HandlerRegistry, job_table, run_once
from engine.processes.handlers import process_handlers
from engine.processes.apps import import_processes
from engine.system import user_table
from permissions.apps import import_roles
from permissions.policy import PolicyStore
from runtime.auth.service import issue_session
from runtime.sample_data import load_sample_data
from runtime.settings import Settings
from runtime.web.app import create_app

APP = Path(__file__).resolve().parents[2] / "examples" / "bank_crm"
STAFF = ("rm_wang", "branch_li", "risk_qian", "hq_zhao", "cc_gao", "rm_liu", "rm_chen")


CST = dt.timezone(dt.timedelta(hours=8))


class Bank:
    def __init__(
        self,
        client: TestClient,
        headers: dict[str, dict[str, str]],
        ids: dict[str, int],
        engine: sa.Engine,
    ):
        self.client, self.headers, self.ids, self.engine = client, headers, ids, engine
        self.now = dt.datetime.now(dt.UTC)
        client.app.state.ctx.clock = lambda: self.now  # type: ignore[attr-defined]

    def run_jobs(self) -> None:
        """The jobs worker's turn at ``self.now`` (the simulated clock)."""
        registry = HandlerRegistry()
        specs = self.client.app.state.ctx.process_specs  # type: ignore[attr-defined]
        for kind, handler in process_handlers(specs, lambda: self.now).items():
            registry.register(kind, handler)
        report = run_once(self.engine, registry, worker_id="test", clock=lambda: self.now)
        assert not report.retrying and not report.incidents, report

    def start(self, who: str, key: str, **body: Any) -> dict[str, Any]:
        r = self.client.post(
            f"/api/v1/processes/{key}/instances", json=body, headers=self.headers[who]
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    def instance(self, who: str, instance_id: int) -> dict[str, Any]:
        r = self.client.get(f"/api/v1/processes/instances/{instance_id}", headers=self.headers[who])
        assert r.status_code == 200, r.text
        return dict(r.json())

    def open_tasks(self, instance_id: int, viewer: str = "rm_wang") -> list[str]:
        tasks = self.instance(viewer, instance_id)["tasks"]
        return sorted(t["element_id"] for t in tasks if t["status"] == "open")

    def act(
        self, who: str, instance_id: int, element: str, op: str = "approve", **body: Any
    ) -> None:
        """``who`` finds the task in their inbox (theirs or their group's) and does ``op``."""
        headers = self.headers[who]
        mine = self.client.get("/api/v1/tasks?view=mine", headers=headers).json()["items"]
        group = self.client.get("/api/v1/tasks?view=group", headers=headers).json()["items"]
        found = [
            t
            for t in mine + group
            if t["instance_id"] == instance_id and t["element_id"] == element
        ]
        assert found, f"{who} has no {element} task in {instance_id}"
        task = found[0]
        if task["assignee_id"] is None:
            claimed = self.client.post(f"/api/v1/tasks/{task['id']}:claim", headers=headers)
            assert claimed.status_code == 200, claimed.text
        r = self.client.post(f"/api/v1/tasks/{task['id']}:{op}", json=body, headers=headers)
        assert r.status_code == 200, r.text

    def status(self, instance_id: int) -> str:
        return str(self.instance("rm_wang", instance_id)["status"])


@pytest.fixture
def bank(engine: sa.Engine, database_url: str) -> Iterator[Bank]:
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        import_app(conn, APP)
        import_roles(conn, APP)
        load_sample_data(conn, customers=10, today=dt.date(2026, 3, 16))
        assert len(import_processes(conn, APP, actor_id=None, now=now)) == 4
        ids = {
            r.username: int(r.id)
            for r in conn.execute(sa.select(user_table.c.username, user_table.c.id))
        }
        headers = {}
        for who in STAFF:
            token, _ = issue_session(conn, ids[who], now=now, ttl=dt.timedelta(hours=1))
            headers[who] = {"Authorization": f"Bearer {token}"}
    app = create_app(Settings(database_url=database_url), engine=engine, schema_ttl=0)
    with TestClient(app) as client:
        yield Bank(client, headers, ids, engine)


def west_lake_complaint(bank: Bank) -> dict[str, Any]:
    """A complaint filed by the West Lake relationship manager about one of her customers."""
    with bank.engine.begin() as conn:
        schema = load_schema(conn)
        customer = conn.execute(
            sa.text("SELECT id FROM form_customer WHERE owner_id = :u LIMIT 1"),
            {"u": bank.ids["rm_wang"]},
        ).scalar_one()
        payload = {
            "ticket_no": "TS-XH-0001",
            "customer": customer,
            "channel": "hotline",
            "category": "service",
            "description": "柜台排队超过一小时",
            "received_at": "2026-03-02T01:00:00Z",
            "status": "registered",
        }
        dept = conn.execute(sa.text("SELECT id FROM ff_department WHERE code = 'HZ-XH'")).scalar()
        actor = Actor(user_id=bank.ids["rm_wang"], dept_id=dept)
        created = RecordStore(conn, schema.form("complaint"), actor=actor).create(payload)
    return {"form": "complaint", "id": int(created["id"])}


def make_branch_head(bank: Bank, who: str) -> None:
    with bank.engine.begin() as conn:
        PolicyStore(conn, actor_id=None, now=bank.now).assign_role(bank.ids[who], "branch_head")


def own_loan(bank: Bank) -> int:
    page = bank.client.get(
        "/api/v1/forms/loan_application/records?limit=1", headers=bank.headers["rm_wang"]
    ).json()
    return int(page["items"][0]["id"])


def test_credit_approval_needs_both_countersignatures(bank: Bank) -> None:
    loan = own_loan(bank)
    record = {"form": "loan_application", "id": loan}
    agreed = bank.start("rm_wang", "credit_countersign", record=record)["id"]
    refused = bank.start("rm_wang", "credit_countersign", record=record)["id"]
    before = bank.client.get(
        f"/api/v1/forms/loan_application/records/{loan}", headers=bank.headers["rm_wang"]
    ).json()
    purpose = "education" if before["purpose"] != "education" else "car"
    make_branch_head(bank, "rm_liu")  # the head of another sub-branch (Binjiang)
    for instance in (agreed, refused):
        bank.act("rm_wang", instance, "prepare", "complete", data={"purpose": purpose})
        assert bank.open_tasks(instance) == ["branch_sign", "risk_sign"]
    # The countersignature is the initiator's own branch head's, not any branch head's.
    group = bank.client.get("/api/v1/tasks?view=group", headers=bank.headers["rm_liu"]).json()
    assert not [t for t in group["items"] if t["element_id"] == "branch_sign"]
    # The task's form is the bound record's form: its data changed the loan application.
    loan_now = bank.client.get(
        f"/api/v1/forms/loan_application/records/{loan}", headers=bank.headers["rm_wang"]
    ).json()
    assert loan_now["purpose"] == purpose and loan_now["version"] > before["version"]
    history = bank.client.get(
        f"/api/v1/forms/loan_application/records/{loan}/history", headers=bank.headers["rm_wang"]
    ).json()["items"]
    assert history[-1]["actor_id"] == bank.ids["rm_wang"]
    bank.act("risk_qian", agreed, "risk_sign", comment="风险可控")
    assert bank.status(agreed) == "running"  # still waiting for the branch head
    bank.act("branch_li", agreed, "branch_sign", comment="同意")
    assert bank.status(agreed) == "completed"
    assert bank.instance("rm_wang", agreed)["history"][-1]["comment"] == "同意"
    bank.act("risk_qian", refused, "risk_sign")
    bank.act("branch_li", refused, "branch_sign", "reject", comment="额度过高")
    view = bank.instance("rm_wang", refused)
    assert view["status"] == "completed"
    assert [t["outcome"] for t in view["tasks"]] == ["submit", "approve", "reject"]
    # Task data is checked against the task's form.
    third = bank.start("rm_wang", "credit_countersign", record=record)["id"]
    mine = bank.client.get("/api/v1/tasks?view=mine", headers=bank.headers["rm_wang"]).json()
    task = next(t for t in mine["items"] if t["instance_id"] == third)
    bad = bank.client.post(
        f"/api/v1/tasks/{task['id']}:complete",
        json={"data": {"amount": "not money"}},
        headers=bank.headers["rm_wang"],
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["pointer"] == "/amount"


def test_only_the_candidate_starters_start_a_process(bank: Bank) -> None:
    def startable(who: str) -> dict[str, bool]:
        r = bank.client.get("/api/v1/processes", headers=bank.headers[who])
        assert r.status_code == 200, r.text
        return {p["key"]: p["startable"] for p in r.json()["items"]}

    assert startable("rm_wang") == {
        "complaint_handling": True,
        "credit_countersign": True,
        "loan_service": True,
        "monthly_review": False,
    }
    assert startable("risk_qian") == dict.fromkeys(startable("rm_wang"), False)
    assert startable("hq_zhao")["monthly_review"] is True
    assert startable("cc_gao")["complaint_handling"] is True
    # A risk officer may approve loans but not open one: refused, and nothing started.
    before = bank.client.get("/api/v1/tasks?view=started", headers=bank.headers["risk_qian"])
    r = bank.client.post(
        "/api/v1/processes/loan_service/instances", json={}, headers=bank.headers["risk_qian"]
    )
    assert r.status_code == 403, r.text
    assert "role relationship_manager" in r.json()["detail"]
    after = bank.client.get("/api/v1/tasks?view=started", headers=bank.headers["risk_qian"])
    assert after.json()["items"] == before.json()["items"] == []


def test_loan_service_runs_its_nine_steps(bank: Bank) -> None:
    instance = bank.start(
        "rm_wang", "loan_service", record={"form": "loan_application", "id": own_loan(bank)}
    )["id"]
    steps = [
        ("rm_wang", "accept", "complete"),
        ("rm_wang", "collect_documents", "complete"),
        ("branch_li", "branch_review", "approve"),
        ("rm_wang", "due_diligence", "complete"),
        ("risk_qian", "risk_review", "approve"),
        ("hq_zhao", "credit_approval", "approve"),
        ("rm_wang", "sign_contract", "complete"),
        ("hq_zhao", "disburse", "complete"),
        ("rm_wang", "follow_up", "complete"),
    ]
    for who, element, op in steps:
        assert bank.open_tasks(instance) == [element]
        bank.act(who, instance, element, op)
    view = bank.instance("rm_wang", instance)
    assert view["status"] == "completed"
    assert [t["element_id"] for t in view["tasks"]] == [e for _, e, _ in steps]
    assert all(t["due_at"] for t in view["tasks"])
    # A rejection at the branch review ends with the customer told.
    other = bank.start("rm_wang", "loan_service")["id"]
    for who, element, op in steps[:2]:
        bank.act(who, other, element, op)
    bank.act("branch_li", other, "branch_review", "reject", comment="收入证明不足")
    assert bank.open_tasks(other) == ["notify_rejection"]
    bank.act("rm_wang", other, "notify_rejection", "complete")
    assert bank.status(other) == "completed"


def test_complaint_loops_until_the_customer_is_satisfied(bank: Bank) -> None:
    instance = bank.start(
        "cc_gao",
        "complaint_handling",
        data={"summary": "柜台排队过久"},
        record=west_lake_complaint(bank),
    )["id"]
    bank.act("branch_li", instance, "first_response", "complete")
    bank.act("branch_li", instance, "handle", "complete")
    bank.act("cc_gao", instance, "confirm", "reject", comment="客户仍不满意")
    assert bank.open_tasks(instance, viewer="cc_gao") == ["handle"]
    bank.act("branch_li", instance, "handle", "complete")
    bank.act("cc_gao", instance, "confirm", "approve")
    view = bank.instance("cc_gao", instance)
    assert view["status"] == "completed"
    assert [t["element_id"] for t in view["tasks"]] == [
        "first_response",
        "handle",
        "confirm",
        "handle",
        "confirm",
    ]
    # The risk officer had no part in it.
    outsider = bank.client.get(
        f"/api/v1/processes/instances/{instance}", headers=bank.headers["risk_qian"]
    )
    assert outsider.status_code == 404


def test_complaint_first_response_sla_escalates_across_national_day(bank: Bank) -> None:
    # Wednesday 30 September 2026, 16:30: one working hour left before the holiday.
    bank.now = dt.datetime(2026, 9, 30, 16, 30, tzinfo=CST)
    make_branch_head(bank, "rm_liu")  # another sub-branch's head: not this complaint's
    instance = bank.start(
        "cc_gao",
        "complaint_handling",
        data={"summary": "理财产品误导销售"},
        record=west_lake_complaint(bank),
    )["id"]
    (task,) = [t for t in bank.instance("cc_gao", instance)["tasks"] if t["status"] == "open"]
    assert dt.datetime.fromisoformat(task["due_at"]) == dt.datetime(2026, 10, 8, 10, 0, tzinfo=CST)
    bank.now = dt.datetime(2026, 10, 6, 12, 0, tzinfo=CST)  # mid-holiday: nothing is due
    bank.run_jobs()
    bank.now = dt.datetime(2026, 10, 8, 9, 40, tzinfo=CST)
    bank.run_jobs()
    bank.now = dt.datetime(2026, 10, 8, 10, 5, tzinfo=CST)
    bank.run_jobs()
    history = bank.instance("cc_gao", instance)["history"]
    assert [(h["action"], h["element_id"]) for h in history] == [
        ("start", None),
        ("remind", "first_response"),
        ("escalate", "first_response"),
    ]
    assert history[-1]["data"] == {"roles": ["branch_head"]}
    # Escalated to the West Lake branch head, not to every branch head.
    group = bank.client.get("/api/v1/tasks?view=group", headers=bank.headers["rm_liu"]).json()
    assert not [t for t in group["items"] if t["instance_id"] == instance]
    bank.act("branch_li", instance, "first_response", "complete")
    assert bank.open_tasks(instance, viewer="cc_gao") == ["handle"]


def test_a_branch_review_left_for_a_day_sends_a_reminder_and_stays_open(bank: Bank) -> None:
    bank.now = dt.datetime(2026, 3, 2, 9, 0, tzinfo=CST)
    instance = bank.start("rm_wang", "loan_service")["id"]
    bank.act("rm_wang", instance, "accept", "complete")
    bank.act("rm_wang", instance, "collect_documents", "complete")
    bank.now += dt.timedelta(hours=23)
    bank.run_jobs()
    assert bank.open_tasks(instance) == ["branch_review"]
    bank.now += dt.timedelta(hours=2)
    bank.run_jobs()
    # Non-interrupting: the review is still open, and the manager is asked to chase it.
    assert bank.open_tasks(instance) == ["branch_review", "chase_review"]
    bank.act("rm_wang", instance, "chase_review", "complete")
    bank.act("branch_li", instance, "branch_review", "approve")
    assert bank.open_tasks(instance) == ["due_diligence"]


def test_every_approval_operation_on_the_loan_process_as_the_bank_staff(bank: Bank) -> None:
    """转交, 委派, 加签, 退回, 撤回 and 抄送 on the loan service process."""
    post = bank.client.post

    def task_of(who: str, instance: int, element: str) -> int:
        mine = bank.client.get("/api/v1/tasks?view=mine", headers=bank.headers[who]).json()
        group = bank.client.get("/api/v1/tasks?view=group", headers=bank.headers[who]).json()
        found = [
            t["id"]
            for t in mine["items"] + group["items"]
            if t["instance_id"] == instance and t["element_id"] == element
        ]
        assert found, f"{who} has no {element} in {instance}"
        return int(found[0])

    # 撤回: the manager withdraws a process no one else has touched yet.
    withdrawn = bank.start("rm_wang", "loan_service")["id"]
    r = post(
        f"/api/v1/processes/instances/{withdrawn}:withdraw",
        json={"comment": "客户放弃"},
        headers=bank.headers["rm_wang"],
    )
    assert r.status_code == 200, r.text
    assert bank.status(withdrawn) == "cancelled"

    instance = bank.start("rm_wang", "loan_service")["id"]
    bank.act("rm_wang", instance, "accept", "complete")
    bank.act("rm_wang", instance, "collect_documents", "complete")
    # 抄送: the branch's other manager gets a read-only copy.
    r = post(
        f"/api/v1/processes/instances/{instance}:cc",
        json={"users": ["rm_chen"]},
        headers=bank.headers["rm_wang"],
    )
    assert r.status_code == 200, r.text
    cc = bank.client.get("/api/v1/tasks?view=cc", headers=bank.headers["rm_chen"]).json()
    assert any(t["instance_id"] == instance for t in cc["items"])
    # 委派: the branch head delegates the pre-review to the risk officer, then decides.
    review = task_of("branch_li", instance, "branch_review")
    assert (
        post(f"/api/v1/tasks/{review}:claim", headers=bank.headers["branch_li"]).status_code == 200
    )
    r = post(
        f"/api/v1/tasks/{review}:delegate",
        json={"to": "risk_qian", "comment": "请先看风险"},
        headers=bank.headers["branch_li"],
    )
    assert r.status_code == 200, r.text
    r = post(
        f"/api/v1/tasks/{review}:resolve",
        json={"comment": "风险可控"},
        headers=bank.headers["risk_qian"],
    )
    assert r.status_code == 200, r.text
    # 加签 (before): the head asks the headquarters admin to sign before deciding.
    r = post(
        f"/api/v1/tasks/{review}:add-signer",
        json={"user": "hq_zhao", "position": "before"},
        headers=bank.headers["branch_li"],
    )
    assert r.status_code == 200, r.text
    signer = task_of("hq_zhao", instance, "branch_review")
    assert (
        post(
            f"/api/v1/tasks/{signer}:approve", json={}, headers=bank.headers["hq_zhao"]
        ).status_code
        == 200
    )
    bank.act("branch_li", instance, "branch_review")
    bank.act("rm_wang", instance, "due_diligence", "complete")
    # 转交: the risk review goes to a colleague (here: the HQ admin, who may act on it).
    risk = task_of("risk_qian", instance, "risk_review")
    assert post(f"/api/v1/tasks/{risk}:claim", headers=bank.headers["risk_qian"]).status_code == 200
    r = post(
        f"/api/v1/tasks/{risk}:transfer",
        json={"to": "hq_zhao", "comment": "出差"},
        headers=bank.headers["risk_qian"],
    )
    assert r.status_code == 200 and r.json()["assignee_id"] == bank.ids["hq_zhao"]
    bank.act("hq_zhao", instance, "risk_review")
    # 退回: the approver sends it back to due diligence, with the reason.
    approval = task_of("hq_zhao", instance, "credit_approval")
    assert (
        post(f"/api/v1/tasks/{approval}:claim", headers=bank.headers["hq_zhao"]).status_code == 200
    )
    r = post(
        f"/api/v1/tasks/{approval}:return",
        json={"to_element": "due_diligence", "comment": "尽调报告缺现金流分析"},
        headers=bank.headers["hq_zhao"],
    )
    assert r.status_code == 200, r.text
    assert bank.open_tasks(instance) == ["due_diligence"]
    actions = [h["action"] for h in bank.instance("rm_wang", instance)["history"]]
    assert actions == [
        "start", "submit", "submit", "cc", "claim", "delegate", "resolve", "add_signer",
        "approve", "approve", "submit", "claim", "transfer", "approve", "claim", "return",
    ]  # fmt: skip


def test_the_monthly_review_starts_itself_on_the_fifth_for_the_branch_heads(bank: Bank) -> None:
    with bank.engine.connect() as conn:
        due = conn.execute(
            sa.select(job_table.c.run_at).where(job_table.c.kind == "process.timer_start")
        ).scalar_one()
    assert (due.astimezone(CST).day, due.astimezone(CST).hour) == (5, 9)
    issued, bank.now = bank.now, due + dt.timedelta(minutes=1)
    bank.run_jobs()
    bank.now = issued  # the staff's sessions were issued now, for an hour
    group = bank.client.get("/api/v1/tasks?view=group", headers=bank.headers["branch_li"])
    (task,) = [t for t in group.json()["items"] if t["element_id"] == "branch_review"]
    view = bank.instance("branch_li", task["instance_id"])
    assert view["started_by"] is None  # nobody: the timer started it
    assert [(h["action"], h["element_id"], h["actor_id"]) for h in view["history"]] == [
        ("start", None, None),
        ("timer", "every_month", None),
    ]
    bank.run_jobs()  # the next month's start is scheduled, not yet due
    group = bank.client.get("/api/v1/tasks?view=group", headers=bank.headers["branch_li"])
    assert len([t for t in group.json()["items"] if t["element_id"] == "branch_review"]) == 1
