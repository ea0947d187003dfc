"""Processes in app folders: ``processes/*.bpmn``, imported and exported with the app.

Import publishes every file (sorted by name) in the caller's transaction
after the app's forms and roles, since tasks name both; a refusal of any file
lists the problems of every file (pointers like ``processes/loan.bpmn#review``)
and the caller rolls back. Files identical to their published version
publish nothing. Export writes each process's current version as published,
byte for byte.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa

from engine.errors import ErrorDetail
from engine.processes.bpmn import BPMN, read_xml
from engine.processes.definitions import PublishedProcess, publish_process
from engine.processes.errors import ProcessDefinitionError
from engine.processes.tables import process_table, process_version_table

PROCESSES_DIR = "processes"
SUFFIX = ".bpmn"


def import_processes(
    conn: sa.Connection,
    app_dir: Path,
    *,
    actor_id: int | None,
    now: dt.datetime,
    scripts: bool = False,
) -> list[PublishedProcess]:
    folder = Path(app_dir) / PROCESSES_DIR
    if not folder.is_dir():
        return []
    results: list[PublishedProcess] = []
    problems: list[ErrorDetail] = []
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        where = f"{PROCESSES_DIR}/{path.name}"
        try:
            text = path.read_text("utf-8")
            results.append(
                publish_process(
                    conn, text, actor_id=actor_id, now=now, source=where, scripts=scripts
                )
            )
        except UnicodeDecodeError:
            problems.append(ErrorDetail(where, "not UTF-8 text"))
        except ProcessDefinitionError as exc:
            problems.extend(ErrorDetail(f"{where}{e.pointer}", e.message) for e in exc.errors)
    if problems:
        raise ProcessDefinitionError(
            "Importing the app's processes was refused; nothing was changed.", problems
        )
    return results


def export_processes(conn: sa.Connection, app_dir: Path) -> list[Path]:
    """Write ``processes/<key>.bpmn`` for every process whose file differs; the paths written."""
    p, v = process_table, process_version_table
    rows = conn.execute(
        sa.select(p.c.key, v.c.bpmn)
        .join(v, sa.and_(v.c.process_key == p.c.key, v.c.version == p.c.current_version))
        .order_by(p.c.key)
    ).all()
    if not rows:
        return []
    folder = Path(app_dir) / PROCESSES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for key, bpmn in rows:
        target = _file_of(folder, key, bpmn)
        data = bpmn.encode("utf-8")
        if not target.exists() or target.read_bytes() != data:
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(target)
            written.append(target)
    return written


def _file_of(folder: Path, key: str, bpmn: str) -> Path:
    """The file already holding this process (any name), else ``<key>.bpmn``."""
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        try:
            root = read_xml(path.read_bytes())
        except ProcessDefinitionError:
            continue
        ids = {p.get("id") for p in root.iter(f"{{{BPMN}}}process")}
        if key in ids:
            return path
    return folder / f"{key}{SUFFIX}"
