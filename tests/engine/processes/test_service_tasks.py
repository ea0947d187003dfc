"""Service tasks as connector jobs, against a real HTTP server on 127.0.0.1, on both databases."""

from __future__ import annotations

import datetime as dt
import html
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from http_support import Answer, Received, Server, http_server
from process_support import HEADER, NOW, actor, approvals, publish, seed

from connectors.http import call_http
from engine.jobs import HandlerRegistry, RunReport, retry, run_once
from engine.jobs.table import job_table
from engine.processes.definitions import SpecCache
from engine.processes.errors import ProcessDefinitionError
from engine.processes.handlers import process_handlers
from engine.processes.instances import Context, Processes
from engine.processes.service_handlers import service_preparers
from engine.processes.services import SERVICE
from engine.processes.state import load
from engine.processes.tables import history_table, instance_table, work_item_table


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> dt.datetime:
        return self.now


def service(eid: str = "score", **props: str) -> str:
    lines = "".join(
        f'<spiffworkflow:property name="{k}" value="{html.escape(v)}" />' for k, v in props.items()
    )
    return (
        f'<bpmn:serviceTask id="{eid}" name="评分"><bpmn:extensionElements>'
        f"<spiffworkflow:properties>{lines}</spiffworkflow:properties></bpmn:extensionElements>"
        "<bpmn:incoming>s1</bpmn:incoming><bpmn:outgoing>s2</bpmn:outgoing></bpmn:serviceTask>"
    )


def scoring(url: str, task: str | None = None) -> str:
    """start -> score (POST customer and amount to ``url``) -> review (initiator) -> end."""
    task = task or service(
        connector="http",
        url=url,
        body='{"customer": customer, "amount": amount}',
        resultVariable="scoring",
        timeout="5",
    )
    return (
        HEADER
        + f"""
  <bpmn:process id="scored" name="评分审批" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>s1</bpmn:outgoing></bpmn:startEvent>
    {task}
    <bpmn:userTask id="review" name="审核">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="assignee" value="initiator" />
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>s2</bpmn:incoming><bpmn:outgoing>s3</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="end"><bpmn:incoming>s3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="s1" sourceRef="start" targetRef="score" />
    <bpmn:sequenceFlow id="s2" sourceRef="score" targetRef="review" />
    <bpmn:sequenceFlow id="s3" sourceRef="review" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""
    )


@pytest.fixture
def server() -> Iterator[Server]:
    with http_server() as running:
        yield running


class Flow:
    """A published scoring process, its instance, and the worker's side, on one clock."""

    def __init__(self, engine: sa.Engine, server: Server, bpmn: str | None = None) -> None:
        self.engine, self.server = engine, server
        self.clock, self.specs = Clock(), SpecCache()
        self.registry = HandlerRegistry()
        for kind, handler in process_handlers(self.specs, self.clock).items():
            self.registry.register(kind, handler)
        for kind, prepare in service_preparers(self.specs, self.clock, {"http": call_http}).items():
            self.registry.register_prepared(kind, prepare)
        with engine.begin() as conn:
            self.ids = seed(conn)
            publish(conn, bpmn or scoring(server.url + "/score"))
            self.instance = Processes(Context(conn, self.specs, self.clock)).start(
                "scored",
                actor=actor(self.ids["alice"]),
                data={"customer": "C-001", "amount": 1200.5},
            )

    def run(self) -> RunReport:
        return run_once(self.engine, self.registry, worker_id="test", clock=self.clock)

    def job(self) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(job_table).where(job_table.c.kind == SERVICE)).one()

    def open_tasks(self) -> list[str]:
        w = work_item_table
        with self.engine.connect() as conn:
            query = sa.select(w.c.element_id).where(w.c.status == "open").order_by(w.c.id)
            return list(conn.execute(query).scalars())

    def history(self) -> list[tuple[str, int | None]]:
        h = history_table
        with self.engine.connect() as conn:
            query = sa.select(h.c.action, h.c.actor_id).order_by(h.c.id)
            return [(r.action, r.actor_id) for r in conn.execute(query)]

    def data(self) -> dict[str, Any]:
        """The data of the instance's open task."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(instance_table).where(instance_table.c.id == self.instance)
            ).one()
            workflow = load(row.state, self.specs.get(conn, "scored", 1), None)
        (task,) = [t for t in workflow.get_tasks() if t.task_spec.bpmn_id == "review"]
        return dict(task.data)


@pytest.fixture
def flow(engine: sa.Engine, server: Server) -> Flow:
    return Flow(engine, server)


def test_the_instance_waits_for_the_job_which_stores_the_answer(flow: Flow) -> None:
    flow.server.answer(Answer(200, {"grade": "A", "limit": 50000.00}))
    job = flow.job()
    assert (job.status, job.payload["instance"]) == ("pending", flow.instance)
    assert flow.open_tasks() == [] and flow.server.received == []  # no call in the command

    assert len(flow.run().done) == 1
    (call,) = flow.server.received
    assert (call.method, call.path) == ("POST", "/score")
    assert call.json() == {"customer": "C-001", "amount": 1200.5}
    assert call.headers["Idempotency-Key"] == f"formflow-{flow.instance}-{job.payload['task']}"
    assert flow.open_tasks() == ["review"]
    assert flow.data()["scoring"] == {"grade": "A", "limit": 50000}
    assert flow.history() == [("start", flow.ids["alice"]), ("service", None)]
    assert flow.run().claimed == 0  # one call per task


def test_a_server_error_is_retried_with_backoff(flow: Flow) -> None:
    flow.server.answer(Answer(503, {"error": "down"}), Answer(200, {"grade": "B"}))
    report = flow.run()
    assert report.retrying and not report.done
    job = flow.job()
    assert job.status == "pending" and "503" in job.last_error
    assert job.run_at == NOW + dt.timedelta(seconds=10)
    assert flow.open_tasks() == []

    flow.clock.now += dt.timedelta(seconds=11)
    assert len(flow.run().done) == 1
    assert flow.open_tasks() == ["review"]
    assert flow.data()["scoring"] == {"grade": "B"}
    assert len(flow.server.received) == 2


def test_a_refusal_is_an_incident_retried_once_the_cause_is_fixed(flow: Flow) -> None:
    flow.server.answer(Answer(404, {"detail": "no scoring for C-001"}))
    assert flow.run().incidents
    job = flow.job()
    assert job.status == "incident"
    assert "404" in job.last_error and "no scoring for C-001" in job.last_error
    assert flow.open_tasks() == []

    flow.server.answer(Answer(200, {"grade": "C"}))  # the other side is fixed
    with flow.engine.begin() as conn:
        retry(conn, job.id, now=flow.clock.now)
    assert len(flow.run().done) == 1
    assert flow.data()["scoring"] == {"grade": "C"}
    assert flow.open_tasks() == ["review"]


def test_the_job_of_a_withdrawn_instance_does_nothing(flow: Flow) -> None:
    with flow.engine.begin() as conn:
        approvals(conn, flow.specs).withdraw(flow.instance, actor=actor(flow.ids["alice"]))
    assert len(flow.run().done) == 1
    assert flow.server.received == []
    assert [a for a, _ in flow.history()] == ["start", "withdraw"]


def test_nothing_is_locked_during_the_call(engine: sa.Engine, flow: Flow) -> None:
    """The initiator withdraws while the other side is answering: the job then does nothing.

    The withdrawal writes the instance, its work items and the jobs table, so
    it would wait for any lock the call held (SQLite's single write lock too)
    until the call timed out.
    """
    waited: list[float] = []

    def withdraw_meanwhile(_: Received) -> None:
        started = time.monotonic()
        writer = engine.execution_options(sqlite_begin="IMMEDIATE")
        with writer.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SET LOCAL lock_timeout = '2s'"))
            approvals(conn, flow.specs).withdraw(flow.instance, actor=actor(flow.ids["alice"]))
        waited.append(time.monotonic() - started)

    flow.server.on_request = withdraw_meanwhile
    assert len(flow.run().done) == 1
    assert len(waited) == 1 and waited[0] < 2.0, waited
    assert [a for a, _ in flow.history()] == ["start", "withdraw"]
    assert flow.open_tasks() == []


def test_the_url_and_body_are_expressions_over_the_data(engine: sa.Engine, server: Server) -> None:
    task = service(
        connector="http",
        method="put",
        url=f'"{server.url}/customers/" + customer',
        body='{"amount": amount * 2, "due": today()}',
    )
    clock, specs = Clock(), SpecCache()
    with engine.begin() as conn:
        ids = seed(conn)
        publish(conn, scoring("", task))
        Processes(Context(conn, specs, clock)).start(
            "scored", actor=actor(ids["alice"]), data={"customer": "C-7", "amount": 10}
        )
    registry = HandlerRegistry()
    for kind, prepare in service_preparers(specs, clock, {"http": call_http}).items():
        registry.register_prepared(kind, prepare)
    assert len(run_once(engine, registry, worker_id="t", clock=clock).done) == 1
    (call,) = server.received
    assert (call.method, call.path) == ("PUT", "/customers/C-7")
    assert call.json() == {"amount": 20, "due": "2026-03-02"}


def refused(connection: sa.Connection, task: str) -> list[tuple[str, str]]:
    seed(connection)
    with pytest.raises(ProcessDefinitionError) as caught:
        publish(connection, scoring("", task))
    return [(e.pointer, e.message) for e in caught.value.errors]


@pytest.mark.parametrize(
    ("props", "message"),
    [
        ({"url": "https://x.example/"}, "needs a connector"),
        ({"connector": "smtp", "url": "https://x.example/"}, "unknown connector 'smtp'"),
        ({"connector": "http"}, "needs a url"),
        ({"connector": "http", "url": "ftp://x.example/"}, "only http and https"),
        ({"connector": "http", "url": "https:///path"}, "has no host"),
        ({"connector": "http", "url": "base_url +"}, "url 'base_url +'"),
        ({"connector": "http", "url": "https://x/", "body": "{amount:"}, "body '{amount:'"),
        ({"connector": "http", "url": "https://x/", "method": "FETCH"}, "method 'FETCH'"),
        ({"connector": "http", "url": "https://x/", "resultVariable": "_x"}, "resultVariable"),
        ({"connector": "http", "url": "https://x/", "timeout": "600"}, "timeout '600'"),
        ({"connector": "http", "url": "https://x/", "assignee": "initiator"}, "no people"),
    ],
)
def test_publish_refuses_a_bad_service_task_naming_it(
    connection: sa.Connection, props: dict[str, str], message: str
) -> None:
    problems = refused(connection, service("score", **props))
    assert [p for p, _ in problems] == ["#score"], problems
    assert message in problems[0][1]


def test_publish_refuses_spiffarena_operators_and_service_properties_elsewhere(
    connection: sa.Connection,
) -> None:
    operator = service("score", connector="http", url="https://x/").replace(
        "</spiffworkflow:properties>",
        '</spiffworkflow:properties><spiffworkflow:serviceTaskOperator id="http/GetRequest" />',
    )
    assert "serviceTaskOperator" in refused(connection, operator)[0][1]
    misplaced = scoring("https://x/").replace(
        '<spiffworkflow:property name="assignee" value="initiator" />',
        '<spiffworkflow:property name="assignee" value="initiator" />'
        '<spiffworkflow:property name="url" value="https://x/" />',
    )
    with pytest.raises(ProcessDefinitionError) as caught:
        publish(connection, misplaced)
    assert [(e.pointer, e.message) for e in caught.value.errors] == [
        ("#review", "url is a service task property; this is a userTask")
    ]


def with_deadline(url: str) -> str:
    """``scoring``, with a one-hour interrupting timer on the call leading to ``by_hand``."""
    return scoring(url).replace(
        '<bpmn:endEvent id="end">',
        """<bpmn:boundaryEvent id="late" attachedToRef="score" cancelActivity="true">
      <bpmn:outgoing>s4</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:userTask id="by_hand" name="人工评分">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="assignee" value="initiator" />
      </spiffworkflow:properties></bpmn:extensionElements>
      <bpmn:incoming>s4</bpmn:incoming><bpmn:outgoing>s5</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="end_by_hand"><bpmn:incoming>s5</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="s4" sourceRef="late" targetRef="by_hand" />
    <bpmn:sequenceFlow id="s5" sourceRef="by_hand" targetRef="end_by_hand" />
    <bpmn:endEvent id="end">""",
    )


def test_a_call_given_up_by_its_boundary_timer_is_not_made_again(
    engine: sa.Engine, server: Server
) -> None:
    server.answer(Answer(404, {"detail": "not yet"}))
    flow = Flow(engine, server, with_deadline(server.url + "/score"))
    assert flow.run().incidents
    flow.clock.now += dt.timedelta(hours=2)
    assert len(flow.run().done) == 1  # the timer
    assert flow.open_tasks() == ["by_hand"]

    with flow.engine.begin() as conn:
        retry(conn, flow.job().id, now=flow.clock.now)
    assert len(flow.run().done) == 1
    assert len(server.received) == 1  # the retried job found no call waiting
    assert flow.open_tasks() == ["by_hand"]
