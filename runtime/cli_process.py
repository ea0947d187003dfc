"""``formflow process``: publish a BPMN file, list processes, start one, list instances.

``process start --as USERNAME`` acts as that person, through the same gate
and wiring as ``POST /api/v1/processes/{key}/instances``
(:mod:`runtime.process_wiring`): their roles, departments and data scope,
so a record they cannot read cannot be bound. Mistakes in the command line
itself (bad JSON, a malformed --record) exit with status 2 before the
database is opened; refusals (unknown process, user or record) exit 1.

Registered on :data:`runtime.cli.cli` by importing this module (the last
lines of runtime/cli.py).
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import click
import sqlalchemy as sa

from engine.catalog import load_schema
from engine.errors import PermissionDeniedError
from engine.processes import inbox, overview
from engine.processes.definitions import SpecCache, list_processes, publish_process
from permissions.compile import AccessCompiler
from permissions.gate import Gate, load_caller
from runtime.auth.service import find_user_id
from runtime.auth.users import get_user
from runtime.cli import CliState, _table, cli, pass_state
from runtime.cli_admin import echo_table, utcnow
from runtime.process_wiring import start_process


@cli.group()
def process() -> None:
    """BPMN processes: publish, list, start one as a user, list instances."""


@process.command("publish")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_state
def process_publish(state: CliState, file: Path) -> None:
    """Publish FILE (BPMN 2.0) as a new version of its process.

    Every problem is listed with its BPMN element (#id); nothing is published
    unless the whole file is valid. The same file twice publishes nothing.
    """
    with state.transaction() as conn:
        result = publish_process(
            conn,
            file.read_text("utf-8"),
            actor_id=None,
            now=dt.datetime.now(dt.UTC),
            source=file.name,
            scripts=state.settings.script_tasks,
        )
    for w in result.warnings:
        click.echo(f"warning {w.pointer}: {w.message}")
    if result.changed:
        click.echo(f"Published {result.key} ({result.name}) as version {result.version}.")
    else:
        click.echo(f"{result.key} is unchanged (version {result.version}).")


@process.command("list")
@pass_state
def process_list(state: CliState) -> None:
    """Published processes and their current versions."""
    with state.transaction(commit=False) as conn:
        rows = list_processes(conn)
    if not rows:
        click.echo("No processes are published.")
        return
    lines = _table(
        ["KEY", "NAME", "VERSION"], [[r["key"], r["name"], str(r["version"])] for r in rows]
    )
    for line in lines:
        click.echo(line)


# --- start ------------------------------------------------------------------------------


def _record_option(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> tuple[str, int] | None:
    if value is None:
        return None
    form, _, number = value.rpartition(":")
    if not form or not number.isdigit() or int(number) < 1:
        raise click.BadParameter(f"{value!r}: expected FORM:ID, e.g. loan_application:42")
    return form, int(number)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _data(text: str | None, file: IO[str] | None) -> dict[str, Any]:
    """--data or --data-file, parsed as the REST API parses bodies (exact decimals)."""
    if text is not None and file is not None:
        raise click.UsageError("Give --data or --data-file, not both.")
    if file is None and text is None:
        return {}
    hint = "'--data-file'" if file is not None else "'--data'"
    source = file.read() if file is not None else text or ""
    try:
        value = json.loads(source, parse_float=Decimal, parse_constant=_no_constant)
    except ValueError as exc:  # JSONDecodeError's text says where: line, column, char
        raise click.BadParameter(f"not JSON: {exc}", param_hint=hint) from None
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object ({...})", param_hint=hint)
    return value


def gate_as(conn: sa.Connection, username: str) -> Gate:
    """USERNAME's compiled access, as a request authenticated as them gets it."""
    found = get_user(conn, find_user_id(conn, username))
    if not found.is_active:
        # The API refuses a deactivated account's credentials; so does this.
        raise PermissionDeniedError(f"User {username!r} is deactivated.")
    caller = load_caller(conn, found.id, superuser=found.is_superuser)
    return Gate.open(conn, AccessCompiler(), caller, load_schema(conn))


@process.command("start")
@click.argument("key")
@click.option(
    "--as", "username", required=True, metavar="USERNAME", help="Who starts it, with their rights."
)
@click.option(
    "--record",
    metavar="FORM:ID",
    callback=_record_option,
    help="Bind a record USERNAME may read, e.g. loan_application:42.",
)
@click.option("--data", "data_text", metavar="JSON", help="The start data, a JSON object.")
@click.option(
    "--data-file",
    type=click.File("r", encoding="utf-8"),
    metavar="PATH",
    help="Read the start data from a JSON file ('-': standard input).",
)
@pass_state
def process_start(
    state: CliState,
    key: str,
    username: str,
    record: tuple[str, int] | None,
    data_text: str | None,
    data_file: IO[str] | None,
) -> None:
    """Start the current version of process KEY as USERNAME.

    Prints the instance and its open tasks. USERNAME's rights apply exactly
    as over the API: a record out of their scope is refused as not found,
    and then nothing is started.
    """
    data = _data(data_text, data_file)
    with state.transaction() as conn:
        gate = gate_as(conn, username)
        instance_id = start_process(
            conn, gate, key, data=data, record=record, specs=SpecCache(), clock=utcnow
        )
        started = inbox.instance(conn, instance_id)
        tasks = [t for t in started["tasks"] if t["status"] == "open"]
        candidates = overview.candidates(conn, (t["id"] for t in tasks))
        names = overview.usernames(conn, (t["assignee_id"] for t in tasks if t["assignee_id"]))
    bound = f" for {record[0]}:{record[1]}" if record else ""
    click.echo(
        f"Started {key} v{started['process_version']}{bound} as {username}: "
        f"instance {instance_id}, {started['status']}."
    )
    rows = [
        [
            str(t["id"]),
            t["element_id"],
            t["name"],
            names.get(t["assignee_id"], str(t["assignee_id"])) if t["assignee_id"] else "",
            ", ".join(candidates.get(t["id"], [])),
        ]
        for t in tasks
    ]
    echo_table(["TASK", "ELEMENT", "NAME", "ASSIGNEE", "CANDIDATES"], rows, "No open tasks.")


# --- instances --------------------------------------------------------------------------


@process.command("instances")
@click.option("--key", metavar="KEY", help="Only instances of this process.")
@click.option("--status", type=click.Choice(overview.INSTANCE_STATUSES), help="Only this status.")
@click.option(
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(1, inbox.MAX_LIMIT),
    help="At most this many, newest first.",
)
@pass_state
def process_instances(state: CliState, key: str | None, status: str | None, limit: int) -> None:
    """List process instances, newest first (start times in UTC)."""
    with state.transaction(commit=False) as conn:
        found = overview.instances(conn, key=key, status=status, limit=limit)
    rows = [
        [
            str(i["id"]),
            i["process_key"],
            str(i["process_version"]),
            i["status"],
            i["started_by_name"] or (str(i["started_by"]) if i["started_by"] else ""),
            f"{i['started_at']:%Y-%m-%d %H:%M}",
            f"{i['record']['form']}:{i['record']['id']}" if i["record"] else "",
            str(i["open_tasks"]),
        ]
        for i in found
    ]
    headers = ["ID", "PROCESS", "VERSION", "STATUS", "STARTED BY", "STARTED", "RECORD", "OPEN"]
    echo_table(headers, rows, "No process instances.")
