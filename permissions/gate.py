"""One request's access: who is calling, and their compiled access per form and action.

A :class:`Gate` is made once per request (or CLI command, job, process
step). It reads the policy version once — the only database round trip the
policy costs a warm request — and compiles access per (form, action) from
that version, so every check of the request agrees with every other.
Superusers get unrestricted access: every action, every field writable, no
data scope (and no policy read at all).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from engine.catalog import Schema
from engine.errors import PermissionDeniedError
from engine.forms.definition import FormDefinition
from engine.system import policy_state_table, user_department_table
from permissions.compile import (
    Access,
    AccessCompiler,
    AccessExplain,
    CompiledPolicy,
    Level,
    UserContext,
)
from permissions.conditions import TRUE
from permissions.policy import ACTIONS


@dataclass(frozen=True)
class Caller:
    """The person (or integration) acting, as permissions see them."""

    user: UserContext
    superuser: bool = False
    primary_dept_id: int | None = None
    # ff_policy_state.version, read with the departments in the same query.
    policy_version: int | None = None

    @property
    def user_id(self) -> int:
        return self.user.user_id


def load_caller(
    conn: sa.Connection,
    user_id: int,
    *,
    superuser: bool = False,
    roles: frozenset[str] = frozenset(),
    attributes: Mapping[str, Any] | None = None,
) -> Caller:
    """The caller with their departments and the policy version: one query, the
    only round trip access costs a request once the policy is compiled.

    Conditions may name these user attributes: ``id``, ``dept_ids``, and
    ``department`` (the primary department's id) plus any given here.
    """
    m, p = user_department_table, policy_state_table
    found = conn.execute(
        sa.select(p.c.version, m.c.department_id, m.c.is_primary)
        .select_from(p.outerjoin(m, m.c.user_id == user_id))
        .where(p.c.id == 1)
    ).all()
    if not found:
        raise RuntimeError("ff_policy_state has no row; run `formflow db upgrade`")
    version = int(found[0].version)
    rows = [r for r in found if r.department_id is not None]
    primary = next((int(r.department_id) for r in rows if r.is_primary), None)
    if primary is None and rows:
        primary = min(int(r.department_id) for r in rows)
    attrs: dict[str, Any] = {"department": primary, **(attributes or {})}
    user = UserContext(
        user_id=user_id,
        roles=roles,
        dept_ids=frozenset(int(r.department_id) for r in rows),
        attributes=attrs,
    )
    return Caller(user=user, superuser=superuser, primary_dept_id=primary, policy_version=version)


class CallerCache:
    """Callers (departments) per (user, policy version); one per process.

    Every organisation change bumps the policy version, so an entry can only
    be stale for a version no request asks for any more.
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        self._entries: dict[tuple[int, int, bool], Caller] = {}
        self._max = max_entries

    def get(
        self, conn: sa.Connection, user_id: int, *, superuser: bool, version: int | None
    ) -> Caller:
        if version is None:
            return load_caller(conn, user_id, superuser=superuser)
        key = (user_id, version, superuser)
        found = self._entries.get(key)
        if found is None:
            found = load_caller(conn, user_id, superuser=superuser)
            if found.policy_version == version:
                if len(self._entries) >= self._max:
                    self._entries.clear()
                self._entries[key] = found
        return found


_NO_EXPLAIN = AccessExplain((), (), {}, (), ("all",), (), ())


def unrestricted(form: FormDefinition, action: str) -> Access:
    """A superuser's access: allowed, every record, every field writable."""
    levels = {f.key: Level.WRITE for f in form.fields}
    return Access(form.key, action, True, TRUE, levels, _NO_EXPLAIN)


@dataclass
class Gate:
    """The caller's compiled access for one request; see the module docstring."""

    caller: Caller
    schema: Schema
    _policy: CompiledPolicy | None
    _memo: dict[tuple[str, str], Access] = field(default_factory=dict)

    @classmethod
    def open(
        cls, conn: sa.Connection, compiler: AccessCompiler, caller: Caller, schema: Schema
    ) -> Gate:
        policy = None
        if not caller.superuser:
            policy = compiler.policy(conn, version=caller.policy_version)
        return cls(caller, schema, policy)

    def access(self, form: str, action: str) -> Access:
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        key = (form, action)
        found = self._memo.get(key)
        if found is None:
            definition = self.schema.form(form).definition
            if self._policy is None:
                found = unrestricted(definition, action)
            else:
                found = self._policy.access(
                    self.caller.user,
                    definition,
                    action,
                    form_version=self.schema.versions.get(form),
                )
            self._memo[key] = found
        return found

    def require(self, form: str, action: str) -> Access:
        """The access, or PermissionDeniedError when the action is not granted at all."""
        access = self.access(form, action)
        if not access.allowed:
            label = self.schema.form(form).definition.label
            raise PermissionDeniedError(f"You may not {_VERB[action]} {label} records.")
        return access

    def scope(self, form: str, action: str) -> sa.ColumnElement[bool] | None:
        """The action's WHERE clause; None when every record is in scope."""
        access = self.access(form, action)
        if access.unrestricted:
            return None
        return access.where(self.schema.form(form).table)

    def roles(self) -> frozenset[str]:
        """The caller's role keys, inherited ones included (none for a superuser)."""
        if self._policy is None:
            return frozenset()
        subjects = self._policy.subjects(self.caller.user)
        return frozenset(s.removeprefix("role:") for s in subjects if s.startswith("role:"))

    def may(self, form: str) -> Callable[[str], bool]:
        return lambda action: self.access(form, action).allowed


_VERB = {
    "create": "create",
    "read": "read",
    "update": "change",
    "delete": "delete",
    "export": "export",
    "import": "import",
}
