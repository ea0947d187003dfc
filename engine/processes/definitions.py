"""Publishing a BPMN file as a new version of a process, and the cache of parsed specs.

``publish_process`` checks the file (:mod:`engine.processes.bpmn`), then
what it refers to: every ``form`` is a published form, every condition,
assignee and timer is a valid expression, every ``dueIn`` a business-calendar
duration, every candidate role exists, every ``escalation`` parses. A version
whose start event is a timer gets its first occurrence scheduled as it is
published (:mod:`engine.processes.timer_start`). All problems are reported at once,
each naming its BPMN element; nothing is written unless all is well.
Publishing the same file again changes nothing. Instances keep the version
they started on: versions are never changed or deleted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from engine.calendar import CalendarDefinitionError, parse_duration
from engine.errors import ErrorDetail, NotFoundError
from engine.expressions.errors import ExpressionError
from engine.processes.assignment import parse_scope
from engine.processes.bpmn import ParsedBpmn, parse_bpmn, property_names
from engine.processes.errors import ProcessDefinitionError
from engine.processes.escalation import check_escalation
from engine.processes.scripting import check_expression, expression_text
from engine.processes.starters import starter_problems
from engine.processes.tables import process_table, process_version_table
from engine.processes.timer_start import schedule_start
from engine.system import form_table, role_table


@dataclass(frozen=True)
class PublishedProcess:
    key: str
    name: str
    version: int
    changed: bool
    warnings: tuple[ErrorDetail, ...]


def check_references(conn: sa.Connection, parsed: ParsedBpmn) -> list[ErrorDetail]:
    """What the file names must exist and parse: forms, roles, expressions, durations."""
    problems: list[ErrorDetail] = []
    forms = set(conn.execute(sa.select(form_table.c.key)).scalars())
    roles = set(conn.execute(sa.select(role_table.c.key)).scalars())
    problems += starter_problems(conn, parsed)
    for flow, text in parsed.conditions.items():
        _expression(f"#{flow}", "condition", text, problems)
    for event, text in parsed.timers.items():
        _expression(f"#{event}", "timer", text, problems)
    for e in parsed.elements.values():
        where, props = f"#{e.id}", e.properties
        if e.kind == "userTask" and not (
            {"assignee", "candidateUsers", "candidateRoles", "candidateDepartments"} & set(props)
            or e.lane
        ):
            problems.append(
                ErrorDetail(where, "a user task needs an assignee, candidates or a lane")
            )
        if "form" in props and props["form"] not in forms:
            problems.append(ErrorDetail(where, f"form {props['form']!r} is not published"))
        if "assignee" in props:
            _expression(where, "assignee", props["assignee"], problems)
        for key in ("candidateRoles", "escalateTo"):
            for role in property_names(props.get(key, "")):
                if role not in roles:
                    problems.append(ErrorDetail(where, f"{key}: role {role!r} does not exist"))
        if "makerChecker" in props:
            value = props["makerChecker"]
            steps = property_names(value)
            if value not in ("true", "false", "initiator") and (
                not steps or any(step not in parsed.elements for step in steps)
            ):
                problems.append(
                    ErrorDetail(
                        where,
                        "makerChecker is true, false, initiator or the ids of earlier steps "
                        "whose doer may not do this one",
                    )
                )
        if "candidateScope" in props and parse_scope(props["candidateScope"]) is None:
            problems.append(
                ErrorDetail(where, "candidateScope is initiator, initiator+N, record or record+N")
            )
        if "remindBefore" in props:
            if "dueIn" not in props:
                problems.append(ErrorDetail(where, "remindBefore needs a dueIn"))
            try:
                if parse_duration(props["remindBefore"]).days:
                    problems.append(
                        ErrorDetail(where, "remindBefore takes hours and minutes (PT30M, PT4H)")
                    )
            except CalendarDefinitionError as exc:
                problems.append(ErrorDetail(where, f"remindBefore: {exc.message}"))
        if "dueIn" in props:
            try:
                parse_duration(props["dueIn"])
            except CalendarDefinitionError as exc:
                problems.append(ErrorDetail(where, f"dueIn: {exc.message}"))
        if "escalation" in props:
            problems += [ErrorDetail(where, message) for message in check_escalation(props)]
    return problems


def _expression(where: str, what: str, text: str, problems: list[ErrorDetail]) -> None:
    try:
        check_expression(text)
    except ExpressionError as exc:
        problems.append(ErrorDetail(where, f"{what} {expression_text(text)!r}: {exc.message}"))


def publish_process(
    conn: sa.Connection,
    bpmn: str,
    *,
    actor_id: int | None,
    now: dt.datetime,
    source: str = "",
    scripts: bool = False,
) -> PublishedProcess:
    """Publish ``bpmn`` as a new version (``scripts``: the server runs script tasks)."""
    parsed = parse_bpmn(bpmn, source=source, scripts=scripts)
    problems = check_references(conn, parsed)
    if problems:
        raise ProcessDefinitionError(
            f"The process {parsed.key!r} cannot be published: {len(problems)} problem(s).",
            problems,
        )
    digest = hashlib.sha256(bpmn.encode("utf-8")).hexdigest()
    p, v = process_table, process_version_table
    current = conn.execute(
        sa.select(p.c.current_version).where(p.c.key == parsed.key).with_for_update()
    ).scalar_one_or_none()
    if current is not None:
        last = conn.execute(
            sa.select(v.c.digest).where(v.c.process_key == parsed.key, v.c.version == current)
        ).scalar_one()
        if last == digest:
            return PublishedProcess(parsed.key, parsed.name, current, False, tuple(parsed.warnings))
    version = (current or 0) + 1
    if current is None:
        conn.execute(
            sa.insert(p).values(
                key=parsed.key, name=parsed.name, current_version=1, created_at=now, updated_at=now
            )
        )
    else:
        conn.execute(
            sa.update(p)
            .where(p.c.key == parsed.key)
            .values(name=parsed.name, current_version=version, updated_at=now)
        )
    conn.execute(
        sa.insert(v).values(
            process_key=parsed.key,
            version=version,
            bpmn=bpmn,
            digest=digest,
            published_at=now,
            published_by=actor_id,
        )
    )
    unscheduled = schedule_start(conn, parsed, version, now)
    warnings = (*parsed.warnings, *unscheduled)
    return PublishedProcess(parsed.key, parsed.name, version, True, warnings)


def current_version(conn: sa.Connection, key: str) -> int:
    found = conn.execute(
        sa.select(process_table.c.current_version).where(process_table.c.key == key)
    ).scalar_one_or_none()
    if found is None:
        raise NotFoundError(f"There is no published process {key!r}.")
    return int(found)


def list_processes(conn: sa.Connection) -> list[dict[str, Any]]:
    p = process_table
    rows = conn.execute(sa.select(p.c.key, p.c.name, p.c.current_version).order_by(p.c.key))
    return [{"key": r.key, "name": r.name, "version": r.current_version} for r in rows]


class SpecCache:
    """Parsed specs per (process, version): a version never changes, so entries never go stale.

    Parsing costs about a millisecond and a half; every command on an
    instance needs its spec, so each version is parsed once per process.
    """

    def __init__(self) -> None:
        self._specs: dict[tuple[str, int], ParsedBpmn] = {}
        self._lock = threading.Lock()

    def get(self, conn: sa.Connection, key: str, version: int) -> ParsedBpmn:
        found = self._specs.get((key, version))
        if found is None:
            v = process_version_table
            bpmn = conn.execute(
                sa.select(v.c.bpmn).where(v.c.process_key == key, v.c.version == version)
            ).scalar_one_or_none()
            if bpmn is None:
                raise NotFoundError(f"There is no version {version} of process {key!r}.")
            # Published means accepted: scripts in it were allowed when it was.
            found = parse_bpmn(bpmn, source=f"{key} v{version}", scripts=True)
            with self._lock:
                self._specs[(key, version)] = found
        return found
