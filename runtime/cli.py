"""The ``formflow`` command line.

Every command that touches the database runs in one transaction
(:func:`runtime.database.transaction`): it commits when the command
succeeds and rolls back when it fails. Domain errors
(:class:`~engine.errors.FormflowError`) and configuration errors are shown
as a clean message, with one line per JSON pointer, on stderr, and exit
with status 1 — no traceback for a user's mistake.

Adding a command: decorate a function with ``@cli.command()`` (or a
sub-group's ``.command()``), take ``state: CliState`` via ``@pass_state``,
and open the database with ``state.transaction()``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from engine.apps import canonical_json, export_app, import_app, read_definition
from engine.catalog import get_published, get_version_definition
from engine.errors import FormflowError, NotFoundError
from engine.publish.service import PublishResult, plan_publish, publish
from runtime.database import (
    DatabaseUnavailable,
    FormSummary,
    engine_from_settings,
    list_forms,
    safe_url,
    transaction,
    upgrade_database,
)
from runtime.demo import DemoReport, find_example_app, prepare_demo
from runtime.settings import Settings, SettingsError, load_settings

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class CliState:
    """What every command gets: the settings and, on first use, an engine.

    Settings are loaded when a command first needs them, so ``--help`` works
    even when the environment is incomplete.
    """

    database_url: str | None = None
    _settings: Settings | None = field(default=None, repr=False)
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        if self.database_url and self._settings.database_url != self.database_url:
            self._settings = self._settings.with_database_url(self.database_url)
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = engine_from_settings(self.settings)
        return self._engine

    @contextmanager
    def transaction(
        self, *, require_upgraded: bool = True, commit: bool = True
    ) -> Iterator[sa.Connection]:
        with transaction(self.engine, require_upgraded=require_upgraded, commit=commit) as conn:
            yield conn

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


pass_state = click.make_pass_decorator(CliState)


def fail(message: str) -> NoReturn:
    raise click.ClickException(message)


class FormflowGroup(click.Group):
    """Turns expected errors into a clean message and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (FormflowError, SettingsError, DatabaseUnavailable) as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=FormflowGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--database-url",
    metavar="URL",
    help="Database to use, overriding FORMFLOW_DATABASE_URL "
    "(e.g. postgresql+psycopg://user:password@host/formflow).",
)
@click.version_option(package_name="formflow")
@click.pass_context
def cli(ctx: click.Context, database_url: str | None) -> None:
    """Formflow: metadata-driven forms that become real SQL tables.

    Settings come from FORMFLOW_* environment variables; see docs/operator.md.
    """
    # Tests and embedders may pass ready settings as ``obj``.
    preset = ctx.obj if isinstance(ctx.obj, Settings) else None
    state = CliState(database_url=database_url, _settings=preset)
    ctx.obj = state
    ctx.call_on_close(state.close)


def main() -> None:
    """Console-script entry point (``formflow``)."""
    cli.main(prog_name="formflow")


# --- formatting ---------------------------------------------------------------


def _width(text: str) -> int:
    """Display width in a terminal: CJK characters take two columns."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(_width(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        padded = [c + " " * (w - _width(c)) for c, w in zip(cells, widths, strict=True)]
        return "  ".join(padded).rstrip()

    return [line(headers), *(line(r) for r in rows)]


def _forms_table(forms: Sequence[FormSummary]) -> list[str]:
    return _table(
        ["KEY", "VERSION", "LABEL", "TABLE"],
        [[f.key, str(f.version), f.label, ", ".join([f.table, *f.subtables])] for f in forms],
    )


def _echo_result(result: PublishResult) -> None:
    if not result.changed:
        click.echo(f"{result.form_key}  v{result.version}  unchanged")
        return
    click.echo(f"{result.form_key}  v{result.version}  published")
    for line in result.plan.describe():
        click.echo(f"    {line}")


# --- db -----------------------------------------------------------------------


@cli.group()
def db() -> None:
    """The database's system tables."""


@db.command("upgrade")
@pass_state
def db_upgrade(state: CliState) -> None:
    """Create or upgrade Formflow's system tables (safe to run again)."""
    with state.transaction(require_upgraded=False) as conn:
        before, after = upgrade_database(conn)
    where = safe_url(state.settings.database_url)
    if before == after:
        click.echo(f"Database {where} is up to date (revision {', '.join(after)}).")
    else:
        was = ", ".join(before) or "empty"
        click.echo(f"Upgraded database {where} from {was} to revision {', '.join(after)}.")


# --- form ---------------------------------------------------------------------


@cli.group()
def form() -> None:
    """Plan, publish and inspect single forms."""


definition_file = click.argument(
    "file", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)


@form.command("plan")
@definition_file
@pass_state
def form_plan(state: CliState, file: Path) -> None:
    """Preview what publishing FILE would change; exit 1 if it would be refused."""
    definition = read_definition(file)
    with state.transaction(commit=False) as conn:
        current = get_published(conn, definition.key)
        if current is not None and current.definition.document == definition.document:
            click.echo(
                f"Form {definition.key!r} is identical to its published version "
                f"{current.version}: publishing it changes nothing."
            )
            return
        plan = plan_publish(conn, definition)
    if current is None:
        click.echo(f"Plan for new form {definition.key!r} (version 1):")
    else:
        click.echo(
            f"Plan for form {definition.key!r} "
            f"(version {current.version} -> {current.version + 1}):"
        )
    for line in plan.describe():
        click.echo(f"  {line}")


@form.command("publish")
@definition_file
@pass_state
def form_publish(state: CliState, file: Path) -> None:
    """Publish FILE as its form's next version (all or nothing)."""
    definition = read_definition(file)
    with state.transaction() as conn:
        result = publish(conn, definition)
    if not result.changed:
        click.echo(
            f"Form {result.form_key!r} is identical to version {result.version}; "
            "nothing was published."
        )
        return
    click.echo(f"Published form {result.form_key!r} version {result.version}:")
    for line in result.plan.describe():
        click.echo(f"  {line}")


@form.command("list")
@pass_state
def form_list(state: CliState) -> None:
    """List the published forms."""
    with state.transaction(commit=False) as conn:
        forms = list_forms(conn)
    if not forms:
        click.echo("No forms are published yet.")
        return
    for line in _forms_table(forms):
        click.echo(line)


@form.command("show")
@click.argument("key")
@click.option("--version", "version", type=click.IntRange(min=1), help="A published version.")
@pass_state
def form_show(state: CliState, key: str, version: int | None) -> None:
    """Print the definition of form KEY (its current version by default)."""
    with state.transaction(commit=False) as conn:
        if version is not None:
            document: Any = get_version_definition(conn, key, version)
        else:
            published = get_published(conn, key)
            if published is None:
                raise NotFoundError(f"There is no published form {key!r}.")
            document = published.definition.document
    click.echo(canonical_json(document), nl=False)


# --- app ----------------------------------------------------------------------


@cli.group()
def app() -> None:
    """Apps as plain files (forms/<key>.json), reviewable in git."""


@app.command("import")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--dry-run", is_flag=True, help="Show what would be published, then roll everything back."
)
@pass_state
def app_import(state: CliState, directory: Path, dry_run: bool) -> None:
    """Publish every form of the app in DIRECTORY, all or nothing."""
    with state.transaction(commit=not dry_run) as conn:
        results = import_app(conn, directory)
    for result in results:
        _echo_result(result)
    published = sum(r.changed for r in results)
    verb = "would publish" if dry_run else "published"
    click.echo(
        f"{'Dry run: ' if dry_run else ''}{len(results)} form(s): {published} {verb}, "
        f"{len(results) - published} unchanged."
    )


@app.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@pass_state
def app_export(state: CliState, directory: Path) -> None:
    """Write every published form to DIRECTORY/forms/<key>.json."""
    with state.transaction(commit=False) as conn:
        result = export_app(conn, directory)
    for f in result.files:
        click.echo(f"{'wrote    ' if f.changed else 'unchanged'}  {f.path}  (v{f.version})")
    for path in result.unknown:
        click.echo(f"note: {path} is not a form published in this database; left in place.")
    written = sum(f.changed for f in result.files)
    click.echo(f"{len(result.files)} form(s) exported: {written} written.")


# --- demo ---------------------------------------------------------------------


@cli.command()
@click.option(
    "--app",
    "app_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="App folder to load instead of examples/bank_crm.",
)
@pass_state
def demo(state: CliState, app_dir: Path | None) -> None:
    """Set up a demo system: database, the bank CRM example app.

    Uses FORMFLOW_DATABASE_URL (default: a SQLite file in FORMFLOW_DATA_DIR).
    Safe to run again: an existing demo database is reused.
    """
    app_dir = app_dir or find_example_app()
    if app_dir is None:
        fail("The example app examples/bank_crm was not found; pass --app DIR.")
    with state.transaction(require_upgraded=False) as conn:
        report = prepare_demo(conn, app_dir)
    _echo_demo(state.settings, report)
    # Next step: start the web server with the same settings. When `serve`
    # exists, call it here (e.g. ``ctx.invoke(serve, ...)``) so that
    # `formflow demo` is the one command that starts the whole system.


def _echo_demo(settings: Settings, report: DemoReport) -> None:
    if report.created_database:
        click.echo(f"Created database {safe_url(settings.database_url)}")
    else:
        click.echo(f"Reusing database {safe_url(settings.database_url)}")
    click.echo(f"Data directory: {settings.data_dir}")
    published = report.published
    click.echo(
        f"App {report.app_dir}: {len(report.results)} form(s), {len(published)} published now, "
        f"{len(report.results) - len(published)} unchanged."
    )
    for result in published:
        click.echo(f"  {result.form_key} v{result.version}: {len(result.plan.steps)} step(s)")
    click.echo("")
    for line in _forms_table(report.forms):
        click.echo(line)
