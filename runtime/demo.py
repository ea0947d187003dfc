"""``formflow demo``: a working system from one command.

Preparing the demo is idempotent: it upgrades the database, imports the
example app, creates the demo logins and, when the database has the bank
CRM forms but no customers yet, loads the sample bank
(:mod:`runtime.sample_data`). On a database that already holds all that,
nothing new is published or created. Starting the web server is the CLI's
next step (``runtime.cli.demo``).

The demo passwords are fixed, documented strings: the demo is for a local
machine, and ``formflow demo`` refuses to run in production.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

import runtime
from engine.apps import import_app
from engine.catalog import load_schema
from engine.processes.apps import import_processes
from engine.publish.service import PublishResult
from engine.system import user_table
from permissions.apps import import_roles
from runtime.auth.passwords import hash_password
from runtime.auth.service import create_user
from runtime.database import FormSummary, list_forms, upgrade_database
from runtime.sample_data import (
    DEFAULT_CUSTOMERS,
    SEED,
    STAFF_BY_USERNAME,
    SampleReport,
    count_customers,
    ensure_staff,
    load_sample_data,
    missing_forms,
)

EXAMPLE_APP = Path("examples") / "bank_crm"

# Fixed and documented (docs/operator.md): for a demo on your own machine only.
ADMIN_PASSWORD = "formflow-admin"
STAFF_PASSWORD = "formflow-demo"


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: str
    superuser: bool = False


DEMO_LOGINS = (
    DemoLogin("admin", ADMIN_PASSWORD, "administrator (superuser)", superuser=True),
    DemoLogin("hq_zhao", STAFF_PASSWORD, "head office, retail banking (总行零售金融部)"),
    DemoLogin("branch_li", STAFF_PASSWORD, "head of the West Lake sub-branch (西湖支行行长)"),
    DemoLogin("rm_wang", STAFF_PASSWORD, "relationship manager, West Lake (西湖支行客户经理)"),
)


def find_example_app() -> Path | None:
    """The bank CRM example app, if this installation has it.

    It lives at the repository root (``examples/bank_crm``), next to the
    ``runtime`` package in a source checkout; the current directory is
    tried as well.
    """
    repo_root = Path(runtime.__file__).resolve().parent.parent
    for candidate in (repo_root / EXAMPLE_APP, Path.cwd() / EXAMPLE_APP):
        if (candidate / "forms").is_dir():
            return candidate
    return None


@dataclass(frozen=True)
class DemoReport:
    app_dir: Path
    revisions_before: tuple[str, ...]
    revisions_after: tuple[str, ...]
    results: list[PublishResult]
    forms: list[FormSummary]
    logins: tuple[DemoLogin, ...] = DEMO_LOGINS
    created_logins: tuple[str, ...] = ()
    # The sample data loaded now, or None with the reason in sample_note.
    sample: SampleReport | None = None
    sample_note: str = ""

    @property
    def created_database(self) -> bool:
        return not self.revisions_before

    @property
    def published(self) -> list[PublishResult]:
        return [r for r in self.results if r.changed]


class _Hashes:
    """Argon2 costs most of a second a hash: hash each demo password once, if needed."""

    def __init__(self) -> None:
        self._done: dict[str, str] = {}

    def __call__(self, password: str) -> str:
        if password not in self._done:
            self._done[password] = hash_password(password)
        return self._done[password]

    def of(self, password: str) -> Callable[[], str]:
        return lambda: self(password)


def prepare_demo(
    conn: sa.Connection,
    app_dir: Path,
    *,
    customers: int = DEFAULT_CUSTOMERS,
    seed: int = SEED,
    today: dt.date | None = None,
) -> DemoReport:
    """Upgrade, import ``app_dir``, add the demo logins and sample data, in ``conn``'s transaction.

    Sample data (``customers`` customers and their activity) is loaded only
    when the database has every bank CRM form and no customer yet;
    ``customers=0`` skips it.
    """
    before, after = upgrade_database(conn)
    results = import_app(conn, app_dir)
    import_roles(conn, app_dir)  # roles.json, when the app has one; idempotent
    import_processes(conn, app_dir, actor_id=None, now=dt.datetime.now(dt.UTC))
    now = dt.datetime.now(dt.UTC)
    hashes = _Hashes()
    created = _ensure_logins(conn, now=now, hashes=hashes)

    sample: SampleReport | None = None
    schema = load_schema(conn)
    if customers <= 0:
        note = "not asked for"
    elif missing := missing_forms(schema):
        note = f"the app has no bank CRM forms ({', '.join(missing)})"
    elif existing := count_customers(conn, schema):
        note = f"kept: the database already has {existing} customer(s)"
    else:
        note = ""
        sample = load_sample_data(
            conn,
            customers=customers,
            seed=seed,
            today=today,
            staff_password_hash=hashes.of(STAFF_PASSWORD),
        )
    return DemoReport(
        app_dir,
        before,
        after,
        results,
        list_forms(conn),
        created_logins=created,
        sample=sample,
        sample_note=note,
    )


def _ensure_logins(conn: sa.Connection, *, now: dt.datetime, hashes: _Hashes) -> tuple[str, ...]:
    """Create the demo logins that do not exist yet; existing accounts are left alone."""
    existing = set(
        conn.execute(
            sa.select(user_table.c.username).where(
                user_table.c.username.in_([login.username for login in DEMO_LOGINS])
            )
        ).scalars()
    )
    created = []
    for login in DEMO_LOGINS:
        if login.username in existing:
            continue
        if login.username in STAFF_BY_USERNAME:
            ensure_staff(
                conn, now=now, password_hash=hashes.of(login.password), only=[login.username]
            )
        else:
            create_user(
                conn,
                username=login.username,
                password=login.password,
                display_name="系统管理员",
                is_superuser=login.superuser,
                now=now,
            )
        created.append(login.username)
    return tuple(created)
