"""The read side of administration: the audit trail, who holds what, a role's grants.

Reads only, over a Connection. Grants are shown in roles.json's vocabulary
(:func:`permissions.apps.roles_document`), so what an administrator reads
over the API is what an app folder holds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from engine.errors import ErrorDetail, NotFoundError
from engine.system import admin_audit_table, casbin_rule_table, user_table
from permissions.apps import roles_document
from permissions.policy import load_policy, role_subject, user_subject

__all__ = [
    "AuditEntry",
    "ConditionDef",
    "RoleGrants",
    "list_audit",
    "list_conditions",
    "role_grants",
    "role_members",
    "user_role_keys",
]

_rule = casbin_rule_table


@dataclass(frozen=True)
class AuditEntry:
    id: int
    actor_id: int | None
    actor: str | None  # the actor's username; None for the system (CLI, imports)
    at: dt.datetime
    entity: str
    key: str
    action: str
    before: Any
    after: Any


@dataclass(frozen=True)
class RoleGrants:
    key: str
    inherits: list[str]
    grants: dict[str, Any]  # form key (or *) -> roles.json grant
    # Lines of the role roles.json's vocabulary cannot show (e.g. a deny on a scope).
    other_lines: list[str]


@dataclass(frozen=True)
class ConditionDef:
    form: str
    name: str
    condition: Any
    exempt: list[str]  # restrictions only: roles exempt from it


def list_audit(
    conn: sa.Connection,
    *,
    entity: str | None = None,
    key: str | None = None,
    limit: int = 50,
    before_id: int | None = None,
) -> list[AuditEntry]:
    """Newest first; ``before_id`` continues a page. Served by (entity, entity_key, id)."""
    a, u = admin_audit_table, user_table
    query = (
        sa.select(a, u.c.username)
        .outerjoin(u, u.c.id == a.c.actor_id)
        .order_by(a.c.id.desc())
        .limit(limit)
    )
    if entity is not None:
        query = query.where(a.c.entity == entity)
    if key is not None:
        query = query.where(a.c.entity_key == key)
    if before_id is not None:
        query = query.where(a.c.id < before_id)
    return [
        AuditEntry(
            id=int(r.id),
            actor_id=None if r.actor_id is None else int(r.actor_id),
            actor=r.username,
            at=r.at,
            entity=r.entity,
            key=r.entity_key,
            action=r.action,
            before=r.before,
            after=r.after,
        )
        for r in conn.execute(query)
    ]


def user_role_keys(conn: sa.Connection, user_id: int) -> list[str]:
    """The roles assigned to ``user_id`` directly (not those the roles inherit)."""
    rows = conn.execute(
        sa.select(_rule.c.v1)
        .where(_rule.c.ptype == "g", _rule.c.v0 == user_subject(user_id))
        .order_by(_rule.c.v1)
    ).scalars()
    return [s.removeprefix("role:") for s in rows if s and s.startswith("role:")]


def role_members(conn: sa.Connection, key: str) -> list[int]:
    """The ids of the users the role is assigned to directly."""
    rows = conn.execute(
        sa.select(_rule.c.v0).where(_rule.c.ptype == "g", _rule.c.v1 == role_subject(key))
    ).scalars()
    return sorted(int(s.removeprefix("user:")) for s in rows if s and s.startswith("user:"))


def role_grants(conn: sa.Connection, key: str) -> RoleGrants:
    document, skipped = roles_document(conn)
    for role in document["roles"]:
        if role["key"] == key:
            prefix = f"p, {role_subject(key)}, "
            return RoleGrants(
                key=key,
                inherits=list(role.get("inherits", [])),
                grants=dict(role.get("grants", {})),
                other_lines=[line for line in skipped if line.startswith(prefix)],
            )
    raise NotFoundError(f"There is no role {key!r}.", [ErrorDetail("/key", "no such role")])


def list_conditions(
    conn: sa.Connection, kind: str, *, form: str | None = None
) -> list[ConditionDef]:
    """Named scopes (``kind="scope"``) or restrictions (``"restrict"``), by form and name."""
    policy = load_policy(conn)
    defined = policy.scopes if kind == "scope" else policy.restrictions
    exempt: dict[tuple[str, str], list[str]] = {}
    if kind == "restrict":
        for subject, obj, act, effect in policy.p:
            if obj.startswith("restrict:") and act.startswith("exempt:") and effect == "allow":
                target = (obj.removeprefix("restrict:"), act.removeprefix("exempt:"))
                exempt.setdefault(target, []).append(subject.removeprefix("role:"))
    return [
        ConditionDef(f, name, defined[(f, name)], sorted(exempt.get((f, name), [])))
        for f, name in sorted(defined)
        if form is None or f == form
    ]
