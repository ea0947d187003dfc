"""Who may start a process: its candidate starters.

A process may name ``candidateStarterRoles`` and ``candidateStarterUsers``
(Camunda Modeler's candidate starter groups and users). Then only the
holders of one of those roles (a role that inherits one counts, as for task
candidates), those users and administrators may start it. A process that
names neither may be started by anyone signed in, as in Camunda. The
system's own starts (a timer start event) are an administrator's.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from engine.errors import ErrorDetail, PermissionDeniedError
from engine.processes.bpmn import ParsedBpmn
from engine.system import role_table, user_table


def starter_problems(conn: sa.Connection, parsed: ParsedBpmn) -> list[ErrorDetail]:
    """Starter roles and users that do not exist, pointed at the process."""
    where = f"#{parsed.key}"
    problems = []
    if parsed.starter_roles:
        roles = set(conn.execute(sa.select(role_table.c.key)).scalars())
        problems += [
            ErrorDetail(where, f"candidateStarterRoles: role {role!r} does not exist")
            for role in parsed.starter_roles
            if role not in roles
        ]
    if parsed.starter_users:
        users = set(
            conn.execute(
                sa.select(user_table.c.username).where(
                    user_table.c.username.in_(parsed.starter_users)
                )
            ).scalars()
        )
        problems += [
            ErrorDetail(where, f"candidateStarterUsers: there is no user {name!r}")
            for name in parsed.starter_users
            if name not in users
        ]
    return problems


def may_start(conn: sa.Connection, parsed: ParsedBpmn, actor: Any) -> bool:
    """``actor`` (an :class:`~engine.processes.instances.Actor`) may start the process."""
    if actor.superuser or not (parsed.starter_roles or parsed.starter_users):
        return True
    if set(parsed.starter_roles) & set(actor.roles):
        return True
    if not parsed.starter_users or actor.user_id is None:
        return False
    named = conn.execute(
        sa.select(user_table.c.id).where(
            user_table.c.id == actor.user_id, user_table.c.username.in_(parsed.starter_users)
        )
    ).first()
    return named is not None


def require_starter(conn: sa.Connection, parsed: ParsedBpmn, actor: Any) -> None:
    if not may_start(conn, parsed, actor):
        who = [f"role {r}" for r in parsed.starter_roles]
        who += [f"user {u}" for u in parsed.starter_users]
        raise PermissionDeniedError(
            f"You may not start {parsed.name!r}: it is started by {', '.join(who)}."
        )
