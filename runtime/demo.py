"""``formflow demo``: a working system from one command.

Preparing the demo is idempotent: it upgrades the database and imports the
example app; on a database that already holds the app, nothing new is
published. Starting the web server is the CLI's next step (see
``runtime.cli.demo``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

import runtime
from engine.apps import import_app
from engine.publish.service import PublishResult
from runtime.database import FormSummary, list_forms, upgrade_database

EXAMPLE_APP = Path("examples") / "bank_crm"


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

    @property
    def created_database(self) -> bool:
        return not self.revisions_before

    @property
    def published(self) -> list[PublishResult]:
        return [r for r in self.results if r.changed]


def prepare_demo(conn: sa.Connection, app_dir: Path) -> DemoReport:
    """Upgrade the database and import ``app_dir``, in ``conn``'s transaction."""
    before, after = upgrade_database(conn)
    results = import_app(conn, app_dir)
    return DemoReport(app_dir, before, after, results, list_forms(conn))
