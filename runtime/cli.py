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

import datetime as dt
import os
import sys
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from engine.apps import canonical_json, export_app, import_app, read_definition
from engine.catalog import get_published, get_version_definition
from engine.errors import FormflowError, NotFoundError
from engine.processes.apps import export_processes, import_processes
from engine.publish.service import PublishResult, plan_publish, publish
from permissions.apps import ROLES_FILE, export_roles, import_roles
from runtime.auth.service import create_api_key, find_user_id
from runtime.auth.users import create_user_audited
from runtime.database import (
    DatabaseUnavailable,
    FormSummary,
    engine_from_settings,
    list_forms,
    safe_url,
    transaction,
    upgrade_database,
)
from runtime.demo import STAFF_PASSWORD, DemoReport, find_example_app, prepare_demo
from runtime.sample_data import DEFAULT_CUSTOMERS, SEED
from runtime.settings import ENV_PREFIX, Settings, SettingsError, load_settings

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
    """Publish every form of the app in DIRECTORY, all or nothing.

    Then apply DIRECTORY/roles.json, if there is one (roles, grants, scopes
    and restrictions), and publish DIRECTORY/processes/*.bpmn, in the same
    transaction.
    """
    with state.transaction(commit=not dry_run) as conn:
        results = import_app(conn, directory)
        roles = import_roles(conn, directory)
        processes = import_processes(
            conn,
            directory,
            actor_id=None,
            now=dt.datetime.now(dt.UTC),
            scripts=state.settings.script_tasks,
        )
    for result in results:
        _echo_result(result)
    for p in processes:
        state_word = f"published v{p.version}" if p.changed else f"unchanged (v{p.version})"
        click.echo(f"process {p.key}: {state_word}")
        for w in p.warnings:
            click.echo(f"  warning {w.pointer}: {w.message}")
    if roles is not None:
        click.echo(
            f"{'Dry run: ' if dry_run else ''}{ROLES_FILE}: {roles.roles_created} role(s) created, "
            f"{roles.roles_updated} renamed, {roles.lines_added} line(s) added, "
            f"{roles.lines_removed} removed."
        )
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
    """Write every published form to DIRECTORY/forms/<key>.json, and the roles to roles.json."""
    with state.transaction(commit=False) as conn:
        result = export_app(conn, directory)
        roles = export_roles(conn, directory)
        bpmn_files = export_processes(conn, directory)
    for f in result.files:
        click.echo(f"{'wrote    ' if f.changed else 'unchanged'}  {f.path}  (v{f.version})")
    for path in result.unknown:
        click.echo(f"note: {path} is not a form published in this database; left in place.")
    written = sum(f.changed for f in result.files)
    click.echo(f"{len(result.files)} form(s) exported: {written} written.")
    if roles is not None:
        status = "wrote    " if roles.changed else "unchanged"
        click.echo(f"{status}  {roles.path}  ({roles.roles} role(s))")
        for line in roles.skipped:
            click.echo(f"note: {line} cannot be written to {ROLES_FILE}; left out.")
    for path in bpmn_files:
        click.echo(f"wrote      {path}")


# --- user ---------------------------------------------------------------------


@cli.group()
def user() -> None:
    """People and service accounts, and their API keys."""


def _read_password(password: str | None, password_stdin: bool, no_password: bool) -> str | None:
    if sum((password is not None, password_stdin, no_password)) > 1:
        fail("Use only one of --password, --password-stdin and --no-password.")
    if no_password:
        return None
    if password is not None:
        return password
    if password_stdin:
        line = sys.stdin.readline()
        if not line:
            fail("--password-stdin: nothing was read from standard input.")
        return line.removesuffix("\n").removesuffix("\r")
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


@user.command("create")
@click.argument("username")
@click.option(
    "--password",
    metavar="TEXT",
    help="The password (visible to other local users in the process list; "
    "prefer the prompt or --password-stdin).",
)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)
@click.option(
    "--no-password",
    is_flag=True,
    help="A service account without a password: it authenticates with API keys only.",
)
@click.option("--display-name", metavar="TEXT", help="Name shown in the UI (default: USERNAME).")
@click.option("--superuser", is_flag=True, help="Grant every permission.")
@pass_state
def user_create(
    state: CliState,
    username: str,
    password: str | None,
    password_stdin: bool,
    no_password: bool,
    display_name: str | None,
    superuser: bool,
) -> None:
    """Create the account USERNAME; asks for its password unless told otherwise."""
    secret = _read_password(password, password_stdin, no_password)
    with state.transaction() as conn:
        # Audited like an account an administrator creates over REST (actor: the operator).
        user_id = create_user_audited(
            conn,
            username=username,
            password=secret,
            display_name=display_name,
            is_superuser=superuser,
            actor_id=None,
            now=dt.datetime.now(dt.UTC),
        ).id
    kind = "superuser" if superuser else "user"
    how = "API keys only" if secret is None else "password"
    click.echo(f"Created {kind} {username!r} (id {user_id}); signs in with: {how}.")


@user.command("api-key")
@click.argument("name")
@click.option("--user", "username", required=True, metavar="USERNAME", help="Who the key acts as.")
@pass_state
def user_api_key(state: CliState, name: str, username: str) -> None:
    """Create an API key called NAME for --user; prints the key once.

    Send it as `Authorization: Bearer <key>`. Only a digest is stored: the
    key cannot be shown again. Revoke it with DELETE /api/v1/auth/api-keys/ID.
    """
    with state.transaction() as conn:
        user_id = find_user_id(conn, username)
        key_id, key = create_api_key(
            conn, user_id=user_id, name=name, created_by=None, now=dt.datetime.now(dt.UTC)
        )
    click.echo(f"Created API key {name!r} (id {key_id}) for {username!r}. Store it now:", err=True)
    click.echo(key)


@user.command("list")
@pass_state
def user_list(state: CliState) -> None:
    """List the accounts."""
    u = sa.table(
        "ff_user",
        sa.column("id"),
        sa.column("username"),
        sa.column("display_name"),
        sa.column("is_superuser"),
        sa.column("is_active"),
        sa.column("password_hash"),
    )
    with state.transaction(commit=False) as conn:
        rows = conn.execute(sa.select(u).order_by(u.c.id)).all()
    if not rows:
        click.echo("No users yet: create one with `formflow user create NAME`.")
        return
    table = [
        [
            str(r.id),
            r.username,
            r.display_name,
            ", ".join(
                flag
                for flag, on in (
                    ("superuser", r.is_superuser),
                    ("inactive", not r.is_active),
                    ("api keys only", r.password_hash is None),
                )
                if on
            ),
        ]
        for r in rows
    ]
    for line in _table(["ID", "USERNAME", "NAME", "NOTES"], table):
        click.echo(line)


# --- serve --------------------------------------------------------------------

host_option = click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0: every interface).",
)
port_option = click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port."
)


def _base_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else host
    return f"http://{shown}:{port}"


def _settings_environment(settings: Settings) -> dict[str, str]:
    """``settings`` as FORMFLOW_* variables, for worker processes that read the environment."""
    env = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[f"{ENV_PREFIX}{name.upper()}"] = str(value)
    return env


def _serve(state: CliState, host: str, port: int, workers: int) -> None:
    """Run the web server in the foreground until interrupted (Ctrl+C)."""
    import uvicorn

    from runtime.web.app import create_app

    settings = state.settings
    with state.transaction(commit=False):
        pass  # reachable and migrated, or a clear message and exit status 1
    click.echo(
        f"Serving {safe_url(settings.database_url)} on {_base_url(host, port)} "
        f"({workers} worker{'s' if workers > 1 else ''}); stop with Ctrl+C."
    )
    if workers == 1:
        app = create_app(settings, engine=state.engine, run_jobs=True)
        uvicorn.run(app, host=host, port=port, log_level="info")
        return
    # Worker processes build their own app from the environment, so the
    # settings in effect here (--database-url included) go there too.
    state.close()
    os.environ.update(_settings_environment(settings))
    uvicorn.run(
        "runtime.web.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )


@cli.command()
@host_option
@port_option
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Worker processes (each with its own database pool).",
)
@pass_state
def serve(state: CliState, host: str, port: int, workers: int) -> None:
    """Run the API server (uvicorn) on the configured database.

    The database must be upgraded (`formflow db upgrade`). Interactive API
    docs are at /docs, the OpenAPI document at /openapi.json.
    """
    _serve(state, host, port, workers)


# --- demo ---------------------------------------------------------------------


@cli.command()
@click.option(
    "--app",
    "app_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="App folder to load instead of examples/bank_crm.",
)
@host_option
@port_option
@click.option(
    "--customers",
    default=DEFAULT_CUSTOMERS,
    show_default=True,
    type=click.IntRange(min=0),
    help="Sample customers to generate on a new demo database (0: no sample data).",
)
@click.option("--seed", default=SEED, show_default=True, type=int, help="Seed of the sample data.")
@click.option("--no-serve", is_flag=True, help="Prepare the database, then exit.")
@pass_state
def demo(
    state: CliState,
    app_dir: Path | None,
    host: str,
    port: int,
    customers: int,
    seed: int,
    no_serve: bool,
) -> None:
    """Set up and serve a demo: the bank CRM with sample data and demo logins.

    Uses FORMFLOW_DATABASE_URL (default: a SQLite file in FORMFLOW_DATA_DIR).
    Safe to run again: an existing demo database is reused as it is.
    The demo logins have fixed, published passwords, so it refuses to run
    with FORMFLOW_ENVIRONMENT=production.
    """
    started = time.perf_counter()
    if state.settings.environment == "production":
        fail(
            "`formflow demo` creates accounts with published passwords and is refused with "
            f"{ENV_PREFIX}ENVIRONMENT=production. Use `formflow db upgrade`, `formflow app "
            "import` and `formflow user create` to set up a real system."
        )
    app_dir = app_dir or find_example_app()
    if app_dir is None:
        fail("The example app examples/bank_crm was not found; pass --app DIR.")
    with state.transaction(require_upgraded=False) as conn:
        report = prepare_demo(conn, app_dir, customers=customers, seed=seed)
    _echo_demo(state.settings, report)
    _echo_logins(report, _base_url(host, port))
    click.echo(f"Demo ready in {time.perf_counter() - started:.1f} s.")
    if not no_serve:
        click.echo("")
        _serve(state, host, port, workers=1)


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
    click.echo("")
    if report.sample is not None:
        sample = report.sample
        click.echo(
            f"Sample data: {sample.departments} departments, {sample.staff} staff, "
            f"{sample.total} records ({sample.describe()})."
        )
    else:
        click.echo(f"Sample data: {report.sample_note}.")


def _echo_logins(report: DemoReport, base_url: str) -> None:
    click.echo("")
    click.echo("Demo logins (fixed demo passwords: keep this server on your own machine):")
    rows = [[login.username, login.password, login.role] for login in report.logins]
    for line in _table(["USERNAME", "PASSWORD", "ROLE"], rows):
        click.echo(f"  {line}")
    if report.sample is not None or report.sample_note.startswith("kept"):
        click.echo(
            f"  The sample bank's other staff (rm_chen, rm_liu, ...) use {STAFF_PASSWORD} too."
        )
    if len(report.created_logins) < len(report.logins):
        click.echo("  Accounts that existed before this run keep the password they have now.")
    click.echo("")
    click.echo(f"API docs:  {base_url}/docs")
    click.echo(f"OpenAPI:   {base_url}/openapi.json")
    staff = next(login for login in report.logins if not login.superuser)
    click.echo(
        f"Log in:    curl -s -X POST {base_url}/api/v1/auth/login -H 'Content-Type: "
        f'application/json\' -d \'{{"username": "{staff.username}", "password": '
        f'"{staff.password}"}}\''
    )


# Administration commands (dept, role, scope, restriction, audit, user membership and flags)
# register themselves on the groups above.
from runtime import cli_admin, cli_jobs, cli_policy, cli_process  # noqa: E402, F401
