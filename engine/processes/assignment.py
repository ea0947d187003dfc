"""Who a task goes to: its assignee and candidates, resolved when it opens.

:func:`resolve_assignee` evaluates the ``assignee`` expression (a user id or
a username); :func:`task_candidates` gathers ``candidateRoles``,
``candidateUsers``, ``candidateDepartments`` and the lane. Roles can be
narrowed to who holds them near a department: "the branch head of the
initiator's branch".

``candidateScope`` on a task narrows its ``candidateRoles`` (and its
``escalateTo``) from everyone holding the role to the holders nearest a
department on the tree:

* ``initiator`` — the initiator's primary department, then each department
  above it, until one has a holder (the head of my team, else of my branch);
* ``initiator+N`` — the same, starting N levels up (``initiator+1``: the
  head one level above my department);
* ``record`` / ``record+N`` — from the bound record's department.

Holders are users with the role or a role that inherits it (the ``g``
lines of the policy), members of that department. They become user
candidates of the work item, resolved when it opens, like every assignee.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from engine.errors import ErrorDetail
from engine.expressions.api import evaluate_text
from engine.expressions.errors import ExpressionError
from engine.forms.keys import table_name
from engine.processes.bpmn import Element, property_names
from engine.processes.errors import ProcessRuntimeError
from engine.processes.scripting import expression_text
from engine.system import (
    casbin_rule_table,
    department_closure_table,
    department_table,
    user_department_table,
    user_table,
)

SCOPE = re.compile(r"^(initiator|record)(\+([0-9]))?$")


def parse_scope(text: str) -> tuple[str, int] | None:
    match = SCOPE.match(text.strip())
    if match is None:
        return None
    return match.group(1), int(match.group(3) or 0)


def _holders_of(conn: sa.Connection, roles: Iterable[str]) -> set[int]:
    """Users who hold any of ``roles``, directly or through a role that inherits one."""
    g = casbin_rule_table
    lines = conn.execute(sa.select(g.c.v0, g.c.v1).where(g.c.ptype == "g")).all()
    wanted = {f"role:{r}" for r in roles}
    # Roles that inherit a wanted role count too: walk the role graph upwards.
    changed = True
    while changed:
        changed = False
        for child, parent in lines:
            if parent in wanted and child.startswith("role:") and child not in wanted:
                wanted.add(child)
                changed = True
    return {
        int(child.removeprefix("user:"))
        for child, parent in lines
        if parent in wanted and child.startswith("user:") and child[5:].isdigit()
    }


def scoped_holders(
    conn: sa.Connection, roles: Iterable[str], dept_id: int | None, levels_up: int
) -> list[int]:
    """The holders of ``roles`` in the nearest department at or above ``dept_id``.

    Starts ``levels_up`` levels above it; empty when no such department has one.
    """
    if dept_id is None:
        return []
    holders = _holders_of(conn, roles)
    if not holders:
        return []
    c, m = department_closure_table, user_department_table
    rows = conn.execute(
        sa.select(c.c.depth, m.c.user_id)
        .join(m, m.c.department_id == c.c.ancestor_id)
        .where(c.c.descendant_id == dept_id, c.c.depth >= levels_up, m.c.user_id.in_(holders))
        .order_by(c.c.depth, m.c.user_id)
    ).all()
    if not rows:
        return []
    nearest = rows[0].depth
    return [int(r.user_id) for r in rows if r.depth == nearest]


def scope_department(
    conn: sa.Connection, scope: str, element_id: str, data: Mapping[str, Any], initiator: int | None
) -> tuple[int | None, int]:
    """The department a ``candidateScope`` starts from, and how many levels up."""
    parsed = parse_scope(scope)
    if parsed is None:  # pragma: no cover - refused at publish
        raise ProcessRuntimeError(
            f"candidateScope {scope!r} of {element_id} is not valid.",
            [ErrorDetail(f"#{element_id}", "initiator, initiator+N, record or record+N")],
        )
    source, levels = parsed
    if source == "record":
        record = data.get("record")
        if not isinstance(record, Mapping) or not isinstance(record.get("form"), str):
            return None, levels
        t = sa.table(table_name(record["form"]), sa.column("id"), sa.column("dept_id"))
        dept = conn.execute(sa.select(t.c.dept_id).where(t.c.id == record.get("id"))).scalar()
        return (int(dept) if dept is not None else None), levels
    if initiator is None:
        return None, levels
    m = user_department_table
    rows = conn.execute(
        sa.select(m.c.department_id, m.c.is_primary).where(m.c.user_id == initiator)
    ).all()
    primary = next((r.department_id for r in rows if r.is_primary), None)
    if primary is None and rows:
        primary = min(r.department_id for r in rows)
    return (int(primary) if primary is not None else None), levels


def role_candidates(
    conn: sa.Connection,
    roles: list[str],
    scope: str | None,
    element_id: str,
    data: Mapping[str, Any],
    initiator: int | None,
) -> list[tuple[str, str]]:
    """Candidate rows (kind, ref) for ``roles``: with a scope, the nearest holders as
    users; without one (or with no holder on the way up), the roles themselves."""
    if roles and scope:
        dept, levels = scope_department(conn, scope, element_id, data, initiator)
        holders = scoped_holders(conn, roles, dept, levels)
        if holders:
            return [("user", str(u)) for u in holders]
    return [("role", r) for r in roles]


def resolve_assignee(
    conn: sa.Connection, element: Element, context: Mapping[str, Any], now: dt.datetime
) -> int | None:
    """The user a task's ``assignee`` expression names (an id or a username), if it has one."""
    text = element.properties.get("assignee")
    if not text:
        return None
    try:
        value = evaluate_text(expression_text(text), context, now=now)
    except ExpressionError as exc:
        raise ProcessRuntimeError(
            f"The assignee of {element.id} could not be worked out: {exc.message}",
            [ErrorDetail(f"#{element.id}", exc.message)],
        ) from None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    found = conn.execute(
        sa.select(user_table.c.id).where(user_table.c.username == str(value))
    ).scalar_one_or_none()
    if found is None:
        raise ProcessRuntimeError(
            f"The assignee of {element.id} is {value!r}, who is not a user.",
            [ErrorDetail(f"#{element.id}", f"no user {value!r}")],
        )
    return int(found)


def task_candidates(
    conn: sa.Connection, element: Element, data: Mapping[str, Any], initiator: int | None
) -> list[tuple[str, str]]:
    """A task's candidates as (kind, ref): roles (or their scoped holders), users, departments."""
    props = element.properties
    out = role_candidates(
        conn,
        property_names(props.get("candidateRoles", "")),
        props.get("candidateScope"),
        element.id,
        data,
        initiator,
    )
    usernames = property_names(props.get("candidateUsers", ""))
    if usernames:
        found = conn.execute(
            sa.select(user_table.c.id).where(user_table.c.username.in_(usernames))
        ).scalars()
        out += [("user", str(i)) for i in found]
    depts = property_names(props.get("candidateDepartments", ""))
    if depts:
        found = conn.execute(
            sa.select(department_table.c.id).where(department_table.c.code.in_(depts))
        ).scalars()
        out += [("dept", str(i)) for i in found]
    if not out and "assignee" not in props and element.lane:
        out.append(("role", element.lane))  # lanes map to roles by default
    return sorted(set(out))
