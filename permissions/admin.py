"""Administration operations that span the role catalogue and the policy store.

:mod:`permissions.org` keeps the catalogue and :class:`~permissions.policy.PolicyStore`
writes single Casbin lines without asking whether the users, roles, forms and
fields they name exist: an import (:mod:`permissions.apps`) checks a whole file
first. An administrator changes one thing at a time, so the checks live here:
every function validates first (422 with pointers relative to the request
body, 404 for what does not exist, 409 for a refusal), then writes through
``org`` and the store, which audit each change and bump the policy version in
the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from engine.catalog import get_published
from engine.errors import ErrorDetail, NotFoundError
from engine.forms.definition import FormDefinition
from engine.system import casbin_rule_table, role_table, user_table
from permissions import org
from permissions.apps import PLine, _grant, _Validator
from permissions.conditions import PolicyError
from permissions.errors import OrganisationConflictError
from permissions.policy import Effect, PolicyStore, load_policy, role_subject

__all__ = [
    "add_parent",
    "assign_role",
    "change_grants",
    "define_restriction",
    "define_scope",
    "delete_role",
    "drop_restriction",
    "drop_scope",
    "format_line",
    "remove_parent",
    "require_role",
    "require_user",
    "unassign_role",
]

_rule = casbin_rule_table


def format_line(line: PLine) -> str:
    return "p, " + ", ".join(line)


def require_user(conn: sa.Connection, user_id: int, pointer: str = "/user_id") -> None:
    u = user_table
    if conn.execute(sa.select(u.c.id).where(u.c.id == user_id)).first() is None:
        raise NotFoundError(f"There is no user {user_id}.", [ErrorDetail(pointer, "no such user")])


def require_role(conn: sa.Connection, key: str, pointer: str = "/role") -> None:
    r = role_table
    if conn.execute(sa.select(r.c.key).where(r.c.key == key)).first() is None:
        raise NotFoundError(f"There is no role {key!r}.", [ErrorDetail(pointer, "no such role")])


def _form(conn: sa.Connection, key: str) -> FormDefinition:
    published = get_published(conn, key)
    if published is None:
        raise NotFoundError(
            f"There is no published form {key!r}.", [ErrorDetail("/form", "no such form")]
        )
    return published.definition


# --- who holds a role, which roles a role includes ------------------------------------


def assign_role(
    conn: sa.Connection, *, user_id: int, role: str, actor_id: int | None, now: dt.datetime
) -> bool:
    """Give ``user_id`` the role; False if they held it already."""
    require_user(conn, user_id)
    require_role(conn, role)
    return PolicyStore(conn, actor_id=actor_id, now=now).assign_role(user_id, role)


def unassign_role(
    conn: sa.Connection, *, user_id: int, role: str, actor_id: int | None, now: dt.datetime
) -> None:
    require_user(conn, user_id)
    if not PolicyStore(conn, actor_id=actor_id, now=now).unassign_role(user_id, role):
        raise NotFoundError(
            f"User {user_id} does not hold role {role!r}.", [ErrorDetail("/role", "not held")]
        )


def add_parent(
    conn: sa.Connection, *, role: str, parent: str, actor_id: int | None, now: dt.datetime
) -> bool:
    """``role`` inherits every grant and deny of ``parent``; refuses a cycle."""
    require_role(conn, role, "/role")
    require_role(conn, parent, "/parent")
    graph: dict[str, set[str]] = {}
    for child, above in load_policy(conn).g:
        graph.setdefault(child, set()).add(above)
    # A cycle would make each role of it inherit itself; Casbin would only
    # stop at its depth limit, so the loop is refused before it is written.
    seen, todo = set(), [role_subject(parent)]
    while todo:
        node = todo.pop()
        if node == role_subject(role):
            raise OrganisationConflictError(
                f"Role {parent!r} already inherits from {role!r}: that would be a cycle.",
                [ErrorDetail("/parent", "inherits from the role already")],
            )
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return PolicyStore(conn, actor_id=actor_id, now=now).inherit(role, parent)


def remove_parent(
    conn: sa.Connection, *, role: str, parent: str, actor_id: int | None, now: dt.datetime
) -> None:
    if not PolicyStore(conn, actor_id=actor_id, now=now).uninherit(role, parent):
        raise NotFoundError(
            f"Role {role!r} does not inherit from {parent!r}.",
            [ErrorDetail("/parent", "not inherited")],
        )


def delete_role(conn: sa.Connection, *, key: str, actor_id: int | None, now: dt.datetime) -> int:
    """Remove a role and every line that names it; returns how many lines went.

    Lines left behind would come back to life if a role of the same key were
    created again, with its old members and grants: so they go first, each
    through the store (audited), then the catalogue entry.
    """
    require_role(conn, key, "/key")
    subject = role_subject(key)
    rows = conn.execute(
        sa.select(_rule.c.ptype, _rule.c.v0, _rule.c.v1, _rule.c.v2, _rule.c.v3)
        .where(
            sa.or_(
                sa.and_(_rule.c.ptype == "p", _rule.c.v0 == subject),
                sa.and_(_rule.c.ptype == "g", sa.or_(_rule.c.v0 == subject, _rule.c.v1 == subject)),
            )
        )
        .order_by(_rule.c.id)
    ).all()
    store = PolicyStore(conn, actor_id=actor_id, now=now)
    removed = 0
    for ptype, v0, v1, v2, v3 in rows:
        if ptype == "p":
            removed += store.remove_line(v0, v1, v2, v3 or "allow")
        elif v0.startswith("user:"):
            removed += store.unassign_role(int(v0.removeprefix("user:")), key)
        else:
            removed += store.uninherit(v0.removeprefix("role:"), v1.removeprefix("role:"))
    org.delete_role(conn, key=key, actor_id=actor_id, now=now)
    return removed


# --- grants ---------------------------------------------------------------------------


class _BodyValidator(_Validator):
    """roles.json's checks, with pointers into a request body instead of the file."""

    def problem(self, pointer: str, message: str) -> None:
        self.problems.append(ErrorDetail(pointer, message))


def grant_lines(conn: sa.Connection, *, role: str, form: str, grant: Any) -> list[PLine]:
    """The lines a grant in roles.json's vocabulary stands for, checked like the file.

    ``grant`` is ``{"actions", "deny", "fields", "field_caps", "scopes"}`` for
    one form (or ``*``); problems point into it (``/fields/phne``).
    """
    require_role(conn, role, "/role")
    if form != "*":
        _form(conn, form)
    v = _BodyValidator(conn)
    custom = set(load_policy(conn).scopes)
    lines: set[PLine] = set()
    _grant(v, form, grant, "", custom, role, lines)
    if v.problems:
        raise PolicyError(
            f"The grant has {len(v.problems)} problem(s); nothing was changed.", v.problems
        )
    return sorted(lines)


def change_grants(
    conn: sa.Connection,
    *,
    role: str,
    form: str,
    grant: Any,
    remove: bool,
    actor_id: int | None,
    now: dt.datetime,
) -> list[PLine]:
    """Add (or remove) the lines of ``grant``; returns those that changed."""
    store = PolicyStore(conn, actor_id=actor_id, now=now)
    change = store.remove_line if remove else store.add_line
    return [
        line
        for line in grant_lines(conn, role=role, form=form, grant=grant)
        if change(*line)  # type: ignore[arg-type]
    ]


# --- named scopes and restrictions ----------------------------------------------------


def define_scope(
    conn: sa.Connection,
    *,
    form: str,
    name: str,
    condition: Any,
    actor_id: int | None,
    now: dt.datetime,
) -> None:
    """Create or replace a named custom scope (the condition checked against the form)."""
    PolicyStore(conn, actor_id=actor_id, now=now).define_scope(_form(conn, form), name, condition)


def drop_scope(
    conn: sa.Connection, *, form: str, name: str, actor_id: int | None, now: dt.datetime
) -> None:
    """Remove a named scope no role uses (a grant of it would silently match nothing)."""
    users = conn.execute(
        sa.select(_rule.c.v0)
        .where(
            _rule.c.ptype == "p",
            _rule.c.v1 == f"scope:{form}",
            _rule.c.v2.like(f"%:{_escape_like(name)}", escape="\\"),
        )
        .distinct()
        .order_by(_rule.c.v0)
    ).scalars()
    holders = [s for s in users if s]
    if holders:
        raise OrganisationConflictError(
            f"Scope {name!r} of {form!r} is granted to {', '.join(holders)}; remove those first.",
            [ErrorDetail("/name", f"in use by {len(holders)} subject(s)")],
        )
    if not PolicyStore(conn, actor_id=actor_id, now=now).drop_scope(form, name):
        raise NotFoundError(
            f"Form {form!r} has no scope {name!r}.", [ErrorDetail("/name", "no such scope")]
        )


def define_restriction(
    conn: sa.Connection,
    *,
    form: str,
    name: str,
    condition: Any,
    exempt: Sequence[str] | None,
    actor_id: int | None,
    now: dt.datetime,
) -> None:
    """Create or replace a global restriction; ``exempt`` (if given) is its whole exempt list."""
    definition = _form(conn, form)
    wanted = list(exempt or [])
    problems = [
        ErrorDetail(f"/exempt/{i}", "listed twice") for i, k in enumerate(wanted) if k in wanted[:i]
    ]
    known = set(
        conn.execute(sa.select(role_table.c.key).where(role_table.c.key.in_(wanted))).scalars()
    )
    problems += [
        ErrorDetail(f"/exempt/{i}", f"no role {k!r}")
        for i, k in enumerate(wanted)
        if k not in known
    ]
    if problems:
        raise PolicyError("The restriction cannot be saved.", problems)
    store = PolicyStore(conn, actor_id=actor_id, now=now)
    store.define_restriction(definition, name, condition)
    if exempt is None:
        return
    have = {
        subject.removeprefix("role:")
        for subject, effect in _exemptions(conn, form, name)
        if effect == "allow" and subject.startswith("role:")
    }
    for key in sorted(have - set(wanted)):
        store.unexempt(key, form, name)
    for key in sorted(set(wanted) - have):
        store.exempt(key, form, name)


def drop_restriction(
    conn: sa.Connection, *, form: str, name: str, actor_id: int | None, now: dt.datetime
) -> None:
    """Remove a restriction and the exemptions from it (they mean nothing without it)."""
    store = PolicyStore(conn, actor_id=actor_id, now=now)
    if not store.drop_restriction(form, name):
        raise NotFoundError(
            f"Form {form!r} has no restriction {name!r}.",
            [ErrorDetail("/name", "no such restriction")],
        )
    for subject, effect in _exemptions(conn, form, name):
        store.remove_line(subject, f"restrict:{form}", f"exempt:{name}", effect)


def _exemptions(conn: sa.Connection, form: str, name: str) -> list[tuple[str, Effect]]:
    """(subject, effect) of every exempt line, allow and deny, of a restriction."""
    rows = conn.execute(
        sa.select(_rule.c.v0, _rule.c.v3)
        .where(
            _rule.c.ptype == "p",
            _rule.c.v1 == f"restrict:{form}",
            _rule.c.v2 == f"exempt:{name}",
        )
        .order_by(_rule.c.id)
    ).all()
    return [(s, "deny" if e == "deny" else "allow") for s, e in rows]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
