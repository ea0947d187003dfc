"""``formflow demo``, ``serve`` and ``user``; the sample bank they load."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from click.testing import CliRunner, Result
from fastapi import FastAPI

import runtime
from engine.apps import import_app
from engine.catalog import load_schema
from engine.db import create_engine
from engine.forms.checks import CN_MOBILE_PATTERN, cn_id_problem
from engine.system import (
    admin_audit_table,
    audit_table,
    department_closure_table,
    department_table,
    role_table,
    user_table,
)
from runtime.auth.passwords import verify_password
from runtime.auth.service import authenticate
from runtime.cli import cli
from runtime.demo import ADMIN_PASSWORD, STAFF_PASSWORD, find_example_app
from runtime.sample_data import (
    DEPARTMENTS,
    SAMPLE_FORMS,
    STAFF,
    SUB_BRANCHES,
    load_sample_data,
    make_credit_code,
    tier_for,
)
from runtime.settings import Settings

TODAY = dt.date(2025, 3, 12)
REPO_ROOT = Path(runtime.__file__).resolve().parent.parent
Run = Callable[..., Result]

# The example ships with the repository: without it these tests must fail, not skip.
assert find_example_app() is not None, "examples/bank_crm is missing"


@pytest.fixture
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2 parameters: the real ones cost most of a second a hash.

    Verification reads the parameters from the hash, so it works unchanged.
    """
    cheap = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1).hash
    monkeypatch.setattr("runtime.auth.service.hash_password", cheap)
    monkeypatch.setattr("runtime.demo.hash_password", cheap)


def make_runner(tmp_path: Path, database_url: str | None) -> Run:
    runner = CliRunner()
    unset: dict[str, str | None] = {f"FORMFLOW_{n.upper()}": None for n in Settings.model_fields}

    def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
        prefix = ["--database-url", database_url] if database_url else []
        environment = {**unset, "FORMFLOW_DATA_DIR": str(tmp_path / "data"), **(env or {})}
        return runner.invoke(
            cli, [*prefix, *args], env=environment, input=input, catch_exceptions=False
        )

    return run


@pytest.fixture
def run(tmp_path: Path, database_url: str) -> Run:
    return make_runner(tmp_path, database_url)


def rows(engine_or_conn: sa.Engine | sa.Connection, sql: str) -> list[Any]:
    if isinstance(engine_or_conn, sa.Engine):
        with engine_or_conn.connect() as conn:
            return list(conn.execute(sa.text(sql)))
    return list(engine_or_conn.execute(sa.text(sql)))


# --- the sample bank -----------------------------------------------------------------


@pytest.fixture
def bank(connection: sa.Connection) -> sa.Connection:
    """The bank CRM published in the rolled-back ``connection``."""
    app = find_example_app()
    assert app is not None
    import_app(connection, app)
    return connection


def test_sample_data_is_valid_consistent_and_audited(bank: sa.Connection) -> None:
    report = load_sample_data(bank, customers=60, today=TODAY)

    assert list(report.records) == list(SAMPLE_FORMS)  # every form has records
    assert report.records["customer"] == 60
    assert all(n > 0 for n in report.records.values()), report.records
    assert report.staff == len(STAFF)
    audited = bank.execute(
        sa.select(sa.func.count()).select_from(audit_table).where(audit_table.c.action == "create")
    ).scalar_one()
    assert audited == report.total

    departments = {r.id: r for r in bank.execute(sa.select(department_table))}
    by_code = {d.code: d for d in departments.values()}
    assert by_code["BANK"].parent_id is None
    for sub in SUB_BRANCHES:  # bank -> branch -> sub-branch
        branch = departments[by_code[sub.code].parent_id]
        assert departments[branch.parent_id].code == "BANK"
    users = {r.id: r.username for r in bank.execute(sa.select(user_table))}

    schema = load_schema(bank)
    holdings: dict[int, Decimal] = {}  # money through the table: SQLite stores scaled integers
    for h in bank.execute(sa.select(schema.form("holding").table)):
        if h.kind != "loan" and h.status == "active":
            holdings[h.customer] = holdings.get(h.customer, Decimal(0)) + h.amount
    customers = bank.execute(sa.select(schema.form("customer").table)).all()
    individuals = [c for c in customers if c.customer_type == "individual"]
    assert individuals and len(individuals) < len(customers)  # some corporate customers too
    for c in customers:
        assert re.fullmatch(CN_MOBILE_PATTERN, c.phone)
        assert departments[c.branch].code in {s.code for s in SUB_BRANCHES}
        assert users[c.owner_rm].startswith("rm_")
        assert (c.owner_id, c.dept_id) == (c.owner_rm, c.branch)  # the RM's, in the RM's branch
        assert c.aum == holdings.get(c.id, Decimal(0)).quantize(Decimal("0.01"))
        if c.customer_type == "corporate":
            code = c.credit_code
            assert code == make_credit_code(code[2:8], code[8:16])  # both check characters
            continue
        assert cn_id_problem(c.id_number) is None
        assert c.id_number[6:14] == c.birthday.strftime("%Y%m%d")
        assert int(c.id_number[16]) % 2 == (1 if c.gender == "male" else 0)
        assert 18 <= (TODAY - c.birthday).days // 365 <= 85
        assert c.tier == tier_for(c.aum)

    applications = rows(bank, "SELECT id, status FROM form_loan_application")
    documents = rows(bank, "SELECT parent_id, kind FROM form_loan_application__documents")
    assert {d.parent_id for d in documents} == {a.id for a in applications}
    open_complaints = rows(
        bank, "SELECT sla_deadline FROM form_complaint WHERE status NOT IN ('closed')"
    )
    assert open_complaints  # something to work on


def test_sample_data_is_deterministic(bank: sa.Connection) -> None:
    def sample() -> list[Any]:
        savepoint = bank.begin_nested()
        load_sample_data(bank, customers=15, today=TODAY, seed=7)
        result = rows(
            bank,
            "SELECT customer_no, name, id_number, credit_code, phone, aum, tags "
            "FROM form_customer ORDER BY customer_no",
        )
        savepoint.rollback()
        return result

    first = sample()
    assert len(first) == 15
    assert sample() == first


def test_sample_data_refuses_an_app_without_the_bank_forms(connection: sa.Connection) -> None:
    with pytest.raises(ValueError, match="needs the bank CRM forms"):
        load_sample_data(connection, customers=5, today=TODAY)


# --- formflow demo -----------------------------------------------------------------------


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """uvicorn.run replaced by a recorder: the calls it would have served, with the environment."""
    calls: list[dict[str, Any]] = []

    def fake_run(app: Any, **kwargs: Any) -> None:
        calls.append({"app": app, "environ": dict(os.environ), **kwargs})

    monkeypatch.setattr("uvicorn.run", fake_run)
    return calls


def test_demo_loads_the_bank_prints_logins_and_serves(
    run: Run, engine: sa.Engine, fast_hashing: None, no_server: list[dict[str, Any]]
) -> None:
    first = run("demo", "--customers", "20", "--port", "8765", "--host", "0.0.0.0")
    assert first.exit_code == 0, first.output
    out = first.stdout
    assert "9 form(s), 9 published now" in out
    assert re.search(
        rf"Sample data: {len(DEPARTMENTS)} departments, {len(STAFF)} staff, \d+ records "
        r"\(20 product, 20 customer",
        out,
    )
    assert re.search(rf"^  admin +{ADMIN_PASSWORD} ", out, re.M)
    assert re.search(rf"^  rm_wang +{STAFF_PASSWORD} ", out, re.M)
    assert "API docs:  http://127.0.0.1:8765/docs" in out
    assert re.search(r"Demo ready in \d+\.\d s\.", out)
    [served] = no_server
    assert isinstance(served["app"], FastAPI)
    assert (served["host"], served["port"]) == ("0.0.0.0", 8765)

    with engine.connect() as conn:
        hashes = {
            r.username: r.password_hash
            for r in conn.execute(sa.select(user_table.c.username, user_table.c.password_hash))
        }
        superusers = set(
            conn.execute(
                sa.select(user_table.c.username).where(user_table.c.is_superuser)
            ).scalars()
        )
    assert verify_password(hashes["admin"], ADMIN_PASSWORD)
    assert verify_password(hashes["rm_wang"], STAFF_PASSWORD)
    assert verify_password(hashes["rm_chen"], STAFF_PASSWORD)  # the other staff too
    assert superusers == {"admin"}

    second = run("demo", "--no-serve")
    assert second.exit_code == 0, second.output
    assert ", 0 published now, 9 unchanged." in second.stdout
    assert "Sample data: kept: the database already has 20 customer(s)." in second.stdout
    assert "keep the password they have now" in second.stdout
    assert len(no_server) == 1  # --no-serve
    assert rows(engine, "SELECT count(*) FROM form_customer")[0][0] == 20
    assert rows(engine, "SELECT count(*) FROM ff_user")[0][0] == len(STAFF) + 1


def test_demo_creates_the_default_sqlite_database(
    tmp_path: Path, fast_hashing: None, no_server: list[dict[str, Any]]
) -> None:
    run = make_runner(tmp_path, None)
    result = run("demo", "--customers", "0", "--no-serve")
    assert result.exit_code == 0, result.output
    assert f"Created database sqlite:///{tmp_path / 'data' / 'formflow.db'}" in result.stdout
    assert "Sample data: not asked for." in result.stdout
    assert "admin" in result.stdout and no_server == []
    # The bank's roles (examples/bank_crm/roles.json) are loaded with its forms.
    engine = create_engine(f"sqlite:///{tmp_path / 'data' / 'formflow.db'}")
    try:
        with engine.connect() as conn:
            roles = set(conn.execute(sa.select(role_table.c.key)).scalars())
    finally:
        engine.dispose()
    assert {"relationship_manager", "branch_head", "wealth_team"} <= roles


def test_demo_is_refused_in_production(tmp_path: Path, no_server: list[dict[str, Any]]) -> None:
    run = make_runner(tmp_path, None)
    env = {"FORMFLOW_ENVIRONMENT": "production", "FORMFLOW_SECRET_KEY": "k" * 40}
    result = run("demo", env=env)
    assert result.exit_code == 1
    assert "FORMFLOW_ENVIRONMENT=production" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "data").exists() and no_server == []


# --- formflow serve ------------------------------------------------------------------------


def test_serve_refuses_a_database_that_is_not_upgraded(
    tmp_path: Path, empty_database_url: str, no_server: list[dict[str, Any]]
) -> None:
    result = make_runner(tmp_path, empty_database_url)("serve")
    assert result.exit_code == 1
    assert "run `formflow db upgrade` first" in result.stderr
    assert no_server == []


def test_serve_one_worker_gets_the_app_many_get_the_factory(
    run: Run, no_server: list[dict[str, Any]], database_url: str
) -> None:
    one = run("serve", "--port", "9001")
    assert one.exit_code == 0, one.output
    assert isinstance(no_server[0]["app"], FastAPI)
    assert (no_server[0]["host"], no_server[0]["port"]) == ("127.0.0.1", 9001)

    many = run("serve", "--workers", "3")
    assert many.exit_code == 0, many.output
    call = no_server[1]
    assert call["app"] == "runtime.web.app:app_from_env"
    assert (call["factory"], call["workers"], call["port"]) == (True, 3, 8000)
    # Workers read the environment: the settings in effect (--database-url too) go there.
    assert call["environ"]["FORMFLOW_DATABASE_URL"] == database_url
    assert "FORMFLOW_DATABASE_URL" not in no_server[0]["environ"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def formflow_process(
    args: list[str], env: dict[str, str], port: int, timeout: float = 90
) -> Iterator[str]:
    """Run ``formflow ARGS`` as a real process until ``/healthz`` answers: its base URL."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FORMFLOW_")}
    process = subprocess.Popen(
        [sys.executable, "-c", "from runtime.cli import main; main()", *args],
        env={**environment, **env},
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                pytest.fail(f"formflow exited with {process.returncode}:\n{process.stdout.read()}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("formflow did not start listening in time")
            time.sleep(0.2)
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover
            process.kill()
            process.wait()


def test_serve_with_two_workers_for_real(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    env = {"FORMFLOW_DATA_DIR": str(tmp_path / "data"), "FORMFLOW_DATABASE_URL": database_url}
    args = ["serve", "--port", str(port), "--workers", "2"]
    with formflow_process(args, env, port) as base:
        assert httpx.get(f"{base}/readyz").json() == {"status": "ready"}
        assert httpx.get(f"{base}/api/v1/forms").status_code == 401


def test_demo_for_real_log_in_and_list_customers(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    env = {"FORMFLOW_DATA_DIR": str(tmp_path / "data"), "FORMFLOW_DATABASE_URL": database_url}
    args = ["demo", "--port", str(port), "--customers", "20"]
    with formflow_process(args, env, port) as base:
        assert "Swagger UI" in httpx.get(f"{base}/docs").text
        login = httpx.post(
            f"{base}/api/v1/auth/login",
            json={"username": "rm_wang", "password": STAFF_PASSWORD},
            timeout=30,
        )
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        page = httpx.get(f"{base}/api/v1/forms/customer/records?count=true", headers=headers)
        assert page.status_code == 200, page.text
        # A relationship manager sees her own customers only, ID numbers masked.
        me = httpx.get(f"{base}/api/v1/auth/me", headers=headers).json()
        mine = page.json()["items"]
        assert 0 < page.json()["total"] == len(mine) < 20
        assert {item["owner_id"] for item in mine} == {me["id"]}
        assert all(item["name"] and "*" in item["id_number"] for item in mine)
        assert all("*" not in item["phone"] for item in mine)


# --- formflow user ---------------------------------------------------------------------------


def password_hash(engine: sa.Engine, username: str) -> str | None:
    with engine.connect() as conn:
        value = conn.execute(
            sa.select(user_table.c.password_hash).where(user_table.c.username == username)
        ).scalar_one()
    return None if value is None else str(value)


def test_user_create_with_a_password_from_option_stdin_or_prompt(
    run: Run, engine: sa.Engine, fast_hashing: None
) -> None:
    created = run("user", "create", "alice", "--password", "alice-password", "--superuser")
    assert created.exit_code == 0, created.output
    assert "Created superuser 'alice'" in created.stdout
    assert verify_password(password_hash(engine, "alice"), "alice-password")

    piped = run("user", "create", "bob", "--password-stdin", input="bob-password\n")
    assert piped.exit_code == 0, piped.output
    assert verify_password(password_hash(engine, "bob"), "bob-password")

    prompted = run(
        "user", "create", "carol", "--display-name", "陈卡罗", input="carol-pass\ncarol-pass\n"
    )
    assert prompted.exit_code == 0, prompted.output
    assert verify_password(password_hash(engine, "carol"), "carol-pass")
    assert "carol-pass" not in prompted.output  # the prompt hides it

    listing = run("user", "list").stdout.splitlines()
    assert listing[0].split() == ["ID", "USERNAME", "NAME", "NOTES"]
    assert [line.split()[1] for line in listing[1:]] == ["alice", "bob", "carol"]
    assert "superuser" in listing[1] and "陈卡罗" in listing[3]
    # Each account is in the administration audit, as one made over REST is.
    a = admin_audit_table
    with engine.connect() as conn:
        audited = conn.execute(
            sa.select(a.c.actor_id, a.c.entity, a.c.action, a.c.after).order_by(a.c.id)
        ).all()
    assert [(r.actor_id, r.entity, r.action) for r in audited] == [(None, "user", "create")] * 3
    assert audited[0].after["username"] == "alice" and audited[0].after["is_superuser"] is True
    assert "password" not in str(audited[0].after)


def test_user_create_refusals_exit_1_with_a_reason(run: Run, fast_hashing: None) -> None:
    assert run("user", "create", "dave", "--password", "dave-password").exit_code == 0
    taken = run("user", "create", "dave", "--password", "other-password")
    assert taken.exit_code == 1 and "already exists" in taken.stderr
    short = run("user", "create", "erin", "--password", "short")
    assert short.exit_code == 1 and "/password: a password needs at least 8" in short.stderr
    both = run("user", "create", "erin", "--password", "x" * 10, "--no-password")
    assert both.exit_code == 1 and "only one of" in both.stderr
    empty = run("user", "create", "erin", "--password-stdin", input="")
    assert empty.exit_code == 1 and "nothing was read" in empty.stderr
    assert "Traceback" not in taken.output + short.output + both.output + empty.output


def test_api_key_for_a_service_account_authenticates(run: Run, engine: sa.Engine) -> None:
    created = run("user", "create", "crm-sync", "--no-password")
    assert created.exit_code == 0 and "API keys only" in created.stdout
    assert password_hash(engine, "crm-sync") is None

    result = run("user", "api-key", "nightly import", "--user", "crm-sync")
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert key.startswith("ffk_") and "\n" not in key  # only the key on stdout: scriptable
    assert "Store it now" in result.stderr
    with engine.begin() as conn:
        principal = authenticate(conn, key, now=dt.datetime.now(dt.UTC))
    assert principal.username == "crm-sync" and principal.via == "api_key"

    unknown = run("user", "api-key", "x", "--user", "nobody")
    assert unknown.exit_code == 1 and "There is no user 'nobody'" in unknown.stderr


def test_sample_departments_have_their_closure_rows(bank: sa.Connection) -> None:
    """Department scopes read the closure table: every sample department is in it."""
    closure = department_closure_table
    parents = {r.id: r.parent_id for r in bank.execute(sa.select(department_table))}
    expected = set()
    for dept in parents:
        node: int | None = dept
        while node is not None:
            expected.add((node, dept))
            node = parents[node]
    rows = bank.execute(sa.select(closure.c.ancestor_id, closure.c.descendant_id))
    assert {(r.ancestor_id, r.descendant_id) for r in rows} == expected
