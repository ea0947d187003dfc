"""``formflow process``: publish a BPMN file, list processes.

Registered on :data:`runtime.cli.cli` by importing this module (the last
lines of runtime/cli.py).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from engine.processes.definitions import list_processes, publish_process
from runtime.cli import CliState, _table, cli, pass_state


@cli.group()
def process() -> None:
    """BPMN processes: publish a file as a new version, list what is published."""


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
