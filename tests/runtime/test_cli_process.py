"""``formflow process start`` and ``process instances``, against real databases."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from process_support import HEADER, approval, properties
from test_cli import Run, make_runner

from engine.catalog import load_schema
from engine.forms.definition import parse_definition
from engine.processes.definitions import publish_process
from engine.processes.tables import history_table, instance_table, work_item_table
from engine.publish.service import publish
from engine.records.service import Actor, RecordStore
from engine.system import user_table
from permissions.org import create_role
from permissions.policy import PolicyStore
from runtime.auth.service import create_user
from runtime.cli import cli

NOW = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)
APPLICATION = {
    "key": "loan_application",
    "schema": {
        "title": "贷款申请",
        "properties": {
            "title": {"type": "string", "title": "标题"},
            "qty": {"type": "integer", "title": "数量"},
        },
    },
}
# start -> end: completed as soon as it starts.
STRAIGHT = (
    HEADER
    + """
  <bpmn:process id="straight" name="直通" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>s1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:endEvent id="end"><bpmn:incoming>s1</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="s1" sourceRef="start" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>
"""
)


@pytest.fixture
def ids(engine: sa.Engine) -> dict[str, int]:
    """alice reads every application, bob only his own, rita reviews; one record of alice's."""
    with engine.begin() as conn:
        publish(conn, parse_definition(APPLICATION), now=NOW)
        create_role(conn, key="reviewer", name="审核人", actor_id=None, now=NOW)
        users = {
            name: create_user(conn, username=name, password=None, now=NOW)
            for name in ("alice", "bob", "rita", "carol")
        }
        store = PolicyStore(conn, actor_id=None, now=NOW)
        for role, scope in (("staff", "all"), ("own_only", "own")):
            store.set_action(role, "loan_application", "read")
            store.set_field(role, "loan_application", "*", "read")
            store.set_scope(role, "loan_application", "read", scope)
        store.assign_role(users["alice"], "staff")
        store.assign_role(users["bob"], "own_only")
        store.assign_role(users["rita"], "reviewer")
        conn.execute(
            sa.update(user_table).where(user_table.c.id == users["carol"]).values(is_active=False)
        )
        for bpmn in (
            approval(),
            approval(key="by_owner", task_props=properties(assignee="record.owner_id")),
            STRAIGHT,
        ):
            publish_process(conn, bpmn, actor_id=None, now=NOW)
        records = RecordStore(
            conn, load_schema(conn).form("loan_application"), actor=Actor(user_id=users["alice"])
        )
        users["record"] = int(records.create({"title": "贷款 42", "qty": 3})["id"])
    return users


@pytest.fixture
def run(tmp_path: Path, database_url: str, ids: dict[str, int]) -> Run:
    return make_runner(tmp_path, database_url)


def ok(run: Run, *args: str) -> list[str]:
    result = run(*args)
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def fails(run: Run, status: int, *args: str) -> str:
    result = run(*args)
    assert result.exit_code == status, result.output
    assert result.stdout == ""
    return result.stderr


def counts(engine: sa.Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (instance_table, work_item_table, history_table)
        )


def test_start_unbound_prints_the_instance_and_its_open_tasks(
    run: Run, engine: sa.Engine, ids: dict[str, int]
) -> None:
    lines = ok(run, "process", "start", "review_flow", "--as", "alice", "--data", '{"amount": 0.1}')
    with engine.connect() as conn:
        row = conn.execute(sa.select(instance_table)).one()
        history = conn.execute(sa.select(history_table.c.action, history_table.c.data)).one()
    assert (row.process_key, row.started_by, row.record_form) == ("review_flow", ids["alice"], None)
    assert history.action == "start" and history.data == {"amount": "0.1"}  # exact, not 0.1000…01
    assert lines[0] == f"Started review_flow v1 as alice: instance {row.id}, running."
    assert lines[1].split() == ["TASK", "ELEMENT", "NAME", "ASSIGNEE", "CANDIDATES"]
    assert lines[2].split()[1:] == ["review", "审核", "role:reviewer"]


def test_start_bound_to_a_record_uses_its_values(
    run: Run, engine: sa.Engine, ids: dict[str, int]
) -> None:
    record = f"loan_application:{ids['record']}"
    lines = ok(run, "process", "start", "by_owner", "--as", "alice", "--record", record)
    with engine.connect() as conn:
        row = conn.execute(sa.select(instance_table)).one()
        assignee = conn.execute(sa.select(work_item_table.c.assignee_id)).scalar_one()
    assert (row.record_form, row.record_id) == ("loan_application", ids["record"])
    assert assignee == ids["alice"]  # record.owner_id
    assert lines[0] == f"Started by_owner v1 for {record} as alice: instance {row.id}, running."
    assert lines[2].split()[1:] == ["review", "审核", "alice"]


def test_a_record_the_user_cannot_read_is_not_found_and_nothing_starts(
    run: Run, engine: sa.Engine, ids: dict[str, int]
) -> None:
    before = counts(engine)
    theirs = f"loan_application:{ids['record']}"
    # bob reads only his own applications: alice's reads as missing, like over the API.
    message = fails(run, 1, "process", "start", "review_flow", "--as", "bob", "--record", theirs)
    assert "does not exist" in message and str(ids["record"]) in message
    missing = fails(
        run,
        1,
        "process",
        "start",
        "review_flow",
        "--as",
        "alice",
        "--record",
        "loan_application:999",
    )
    assert "does not exist" in missing
    assert "no published form 'nope'" in fails(
        run, 1, "process", "start", "review_flow", "--as", "alice", "--record", "nope:1"
    )
    # rita has no read grant on the form at all: refused outright.
    assert fails(run, 1, "process", "start", "review_flow", "--as", "rita", "--record", theirs)
    assert counts(engine) == before


def test_usage_errors_exit_2_and_refusals_exit_1(
    run: Run, engine: sa.Engine, tmp_path: Path
) -> None:
    before = counts(engine)
    start = ("process", "start", "review_flow", "--as", "alice")
    bad = fails(run, 2, *start, "--data", '{"amount": 1,}')
    assert "Invalid value for '--data': not JSON" in bad
    assert "line 1 column 14 (char 13)" in bad
    (tmp_path / "data.json").write_text('{"a":\n  nope}', "utf-8")
    in_file = fails(run, 2, *start, "--data-file", str(tmp_path / "data.json"))
    assert "'--data-file': not JSON" in in_file and "line 2 column 3" in in_file
    assert "must be a JSON object" in fails(run, 2, *start, "--data", "[1, 2]")
    assert "not both" in fails(run, 2, *start, "--data", "{}", "--data-file", "-")
    assert "expected FORM:ID" in fails(run, 2, *start, "--record", "loan_application:x")
    assert "Missing option '--as'" in fails(run, 2, "process", "start", "review_flow")

    assert "There is no published process 'nope'" in fails(
        run, 1, "process", "start", "nope", "--as", "alice"
    )
    assert "There is no user 'ghost'" in fails(
        run, 1, "process", "start", "review_flow", "--as", "ghost"
    )
    assert "User 'carol' is deactivated" in fails(
        run, 1, "process", "start", "review_flow", "--as", "carol"
    )
    assert counts(engine) == before


def test_data_from_a_file_or_standard_input(
    run: Run, engine: sa.Engine, tmp_path: Path, database_url: str
) -> None:
    file = tmp_path / "data.json"
    file.write_text(json.dumps({"amount": "500000.00", "note": "加急"}), "utf-8")
    ok(run, "process", "start", "straight", "--as", "alice", "--data-file", str(file))
    args = ["--database-url", database_url, "process", "start", "straight", "--as", "alice"]
    result = CliRunner().invoke(cli, [*args, "--data-file", "-"], input='{"via": "stdin"}')
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        data = conn.execute(sa.select(history_table.c.data).order_by(history_table.c.id)).scalars()
        assert list(data) == [{"amount": "500000.00", "note": "加急"}, {"via": "stdin"}]


def test_instances_listing(run: Run, ids: dict[str, int]) -> None:
    assert ok(run, "process", "instances") == ["No process instances."]
    record = f"loan_application:{ids['record']}"
    ok(run, "process", "start", "review_flow", "--as", "alice", "--record", record)
    done = ok(run, "process", "start", "straight", "--as", "bob")
    assert done[0].endswith(", completed.") and done[1] == "No open tasks."

    lines = ok(run, "process", "instances")
    assert lines[0].split() == [
        "ID", "PROCESS", "VERSION", "STATUS", "STARTED", "BY", "STARTED", "RECORD", "OPEN",
    ]  # fmt: skip
    newest, oldest = (line.split() for line in lines[1:])
    assert newest[1:5] == ["straight", "1", "completed", "bob"] and newest[-1] == "0"
    assert oldest[1:5] == ["review_flow", "1", "running", "alice"]
    assert oldest[-2:] == [record, "1"]
    assert int(newest[0]) > int(oldest[0])

    running = ok(run, "process", "instances", "--status", "running")
    assert [line.split()[1] for line in running[1:]] == ["review_flow"]
    assert [
        line.split()[1] for line in ok(run, "process", "instances", "--key", "straight")[1:]
    ] == ["straight"]
    assert len(ok(run, "process", "instances", "--limit", "1")) == 2
    assert "'paused' is not one of" in fails(run, 2, "process", "instances", "--status", "paused")
