"""The policy store: Casbin lines in ``ff_casbin_rule``.

Casbin's own adapters are not used (their ``remove_policies`` deletes a
cross-product of rows); this store writes one line per call, and every
write bumps the policy version (:func:`permissions.org.bump_policy_version`)
in the caller's transaction, so cached compiled access goes stale exactly
when the change commits. Loading the whole policy is one query.

Lines (see permissions/model.conf)::

    p, role:teller, form:customer, read, allow              form action
    p, role:intern, form:customer, export, deny             deny wins
    p, role:teller, field:customer.*, read, allow           field level (* = all fields)
    p, role:teller, field:customer.phone, read, deny        a cap: at most mask
    p, role:teller, scope:customer, read:dept_tree, allow   data scope for an action
    p, role:wealth, restrict:customer, exempt:no_private, allow
    g, user:42, role:teller                                 user -> role
    g, role:manager, role:teller                            manager inherits teller

Named custom scopes and global restrictions are conditions
(:mod:`permissions.conditions`) stored as ``scope`` / ``restrict`` lines:
v0 the form, v1 the name, v2..v5 the condition's JSON in up to four
255-character pieces. Casbin never sees those two kinds.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from engine.errors import ErrorDetail
from engine.forms.definition import FormDefinition
from engine.system import admin_audit_table, casbin_rule_table
from permissions.conditions import PolicyError, parse_condition
from permissions.org import bump_policy_version

ACTIONS = ("create", "read", "update", "delete", "export", "import")
LEVELS = ("hidden", "mask", "read", "write")
BUILTIN_SCOPES = ("own", "dept", "dept_tree", "all")
Effect = Literal["allow", "deny"]

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_FORM = re.compile(r"^(\*|[a-z][a-z0-9_]{0,62})$")
_FIELD = re.compile(r"^(\*|[a-z][a-z0-9_]{0,62})$")
_SUBJECT = re.compile(r"^(role:[a-z][a-z0-9_]{0,62}|user:[1-9][0-9]{0,18})$")
CHUNK, CHUNKS = 255, 4
_rule = casbin_rule_table


@dataclass(frozen=True)
class PolicyLines:
    """The whole policy as loaded: Casbin lines and condition definitions."""

    p: tuple[tuple[str, str, str, str], ...]
    g: tuple[tuple[str, str], ...]
    scopes: dict[tuple[str, str], Any]  # (form, name) -> condition document
    restrictions: dict[tuple[str, str], Any]


def role_subject(key: str) -> str:
    return f"role:{key}"


def user_subject(user_id: int) -> str:
    return f"user:{user_id}"


def load_policy(conn: sa.Connection) -> PolicyLines:
    """Every line, in one query."""
    rows = conn.execute(
        sa.select(
            _rule.c.ptype, _rule.c.v0, _rule.c.v1, _rule.c.v2, _rule.c.v3, _rule.c.v4, _rule.c.v5
        ).order_by(_rule.c.id)
    ).all()
    p: list[tuple[str, str, str, str]] = []
    g: list[tuple[str, str]] = []
    scopes: dict[tuple[str, str], Any] = {}
    restrictions: dict[tuple[str, str], Any] = {}
    for ptype, v0, v1, v2, v3, v4, v5 in rows:
        if ptype == "p":
            p.append((v0, v1, v2, v3 or "allow"))
        elif ptype == "g":
            g.append((v0, v1))
        elif ptype in ("scope", "restrict"):
            text = "".join(x or "" for x in (v2, v3, v4, v5))
            try:
                doc = json.loads(text)
            except ValueError:
                doc = None  # compiles to "matches nothing"
            (scopes if ptype == "scope" else restrictions)[(v0, v1)] = doc
    return PolicyLines(tuple(p), tuple(g), scopes, restrictions)


class PolicyStore:
    """Writes policy lines; every change bumps the policy version in the same transaction.

    ``actor_id`` and ``now`` go to the administration audit trail (ff_admin_audit).
    """

    def __init__(self, conn: sa.Connection, *, actor_id: int | None, now: dt.datetime) -> None:
        self.conn = conn
        self.actor_id = actor_id
        self.now = now

    # --- generic lines ------------------------------------------------------------

    def _where(self, ptype: str, values: Sequence[str | None]) -> sa.ColumnElement[bool]:
        cols = (_rule.c.v0, _rule.c.v1, _rule.c.v2, _rule.c.v3, _rule.c.v4, _rule.c.v5)
        conds = [_rule.c.ptype == ptype]
        for col, v in zip(cols, [*values, *([None] * (6 - len(values)))], strict=True):
            conds.append(col.is_(None) if v is None else col == v)
        return sa.and_(*conds)

    def _add(self, ptype: str, values: Sequence[str]) -> bool:
        exists = self.conn.execute(
            sa.select(_rule.c.id).where(self._where(ptype, values)).limit(1)
        ).first()
        if exists is not None:
            return False
        self.conn.execute(
            sa.insert(_rule).values(ptype=ptype, **{f"v{i}": v for i, v in enumerate(values)})
        )
        self._changed(ptype, values, "add")
        return True

    def _remove(self, ptype: str, values: Sequence[str]) -> bool:
        n = self.conn.execute(sa.delete(_rule).where(self._where(ptype, values))).rowcount
        if n:
            self._changed(ptype, values, "remove")
        return bool(n)

    def _changed(self, ptype: str, values: Sequence[str], action: str) -> None:
        bump_policy_version(self.conn)
        shown = values[:2] if ptype in ("scope", "restrict") else values
        line = ", ".join([ptype, *shown])
        self.conn.execute(
            sa.insert(admin_audit_table).values(
                actor_id=self.actor_id,
                at=self.now,
                entity="policy",
                entity_key=line[:200],
                action=action,
                before=None if action == "add" else {"line": list(values)},
                after={"line": list(values)} if action == "add" else None,
            )
        )

    def add_line(self, subject: str, obj: str, act: str, effect: Effect = "allow") -> bool:
        """Add a ``p`` line (checked); False if it was already there."""
        _check_p(subject, obj, act, effect)
        return self._add("p", [subject, obj, act, effect])

    def remove_line(self, subject: str, obj: str, act: str, effect: Effect = "allow") -> bool:
        return self._remove("p", [subject, obj, act, effect])

    # --- roles --------------------------------------------------------------------

    def assign_role(self, user_id: int, role: str) -> bool:
        _check_name(role, "/role")
        return self._add("g", [user_subject(user_id), role_subject(role)])

    def unassign_role(self, user_id: int, role: str) -> bool:
        return self._remove("g", [user_subject(user_id), role_subject(role)])

    def inherit(self, role: str, parent: str) -> bool:
        """``role`` gets every grant (and deny) of ``parent``."""
        _check_name(role, "/role")
        _check_name(parent, "/parent")
        if role == parent:
            raise PolicyError(
                "A role cannot inherit from itself.", [ErrorDetail("/parent", "same role")]
            )
        return self._add("g", [role_subject(role), role_subject(parent)])

    def uninherit(self, role: str, parent: str) -> bool:
        return self._remove("g", [role_subject(role), role_subject(parent)])

    # --- grants -------------------------------------------------------------------

    def set_action(self, role: str, form: str, action: str, effect: Effect = "allow") -> bool:
        return self.add_line(role_subject(role), f"form:{form}", action, effect)

    def unset_action(self, role: str, form: str, action: str, effect: Effect = "allow") -> bool:
        return self._remove("p", [role_subject(role), f"form:{form}", action, effect])

    def set_field(
        self, role: str, form: str, field: str, level: str, effect: Effect = "allow"
    ) -> bool:
        """Grant ``level`` on a field (``*``: every field); with deny, cap below ``level``."""
        return self.add_line(role_subject(role), f"field:{form}.{field}", level, effect)

    def unset_field(
        self, role: str, form: str, field: str, level: str, effect: Effect = "allow"
    ) -> bool:
        return self._remove("p", [role_subject(role), f"field:{form}.{field}", level, effect])

    def set_scope(
        self, role: str, form: str, action: str, scope: str, effect: Effect = "allow"
    ) -> bool:
        """Rows ``role`` may ``action``: own, dept, dept_tree, all or a named custom scope."""
        return self.add_line(role_subject(role), f"scope:{form}", f"{action}:{scope}", effect)

    def unset_scope(
        self, role: str, form: str, action: str, scope: str, effect: Effect = "allow"
    ) -> bool:
        return self._remove("p", [role_subject(role), f"scope:{form}", f"{action}:{scope}", effect])

    def exempt(self, role: str, form: str, restriction: str, effect: Effect = "allow") -> bool:
        """Lift a global restriction for ``role`` (a deny line keeps it, whatever allows)."""
        obj, act = f"restrict:{form}", f"exempt:{restriction}"
        return self.add_line(role_subject(role), obj, act, effect)

    def unexempt(self, role: str, form: str, restriction: str, effect: Effect = "allow") -> bool:
        return self._remove(
            "p", [role_subject(role), f"restrict:{form}", f"exempt:{restriction}", effect]
        )

    # --- conditions ---------------------------------------------------------------

    def define_scope(self, form: FormDefinition, name: str, condition: Any) -> None:
        """Define (or replace) the named custom scope ``name`` of ``form``."""
        self._define("scope", form, name, condition)

    def drop_scope(self, form: str, name: str) -> bool:
        return self._drop("scope", form, name)

    def define_restriction(self, form: FormDefinition, name: str, condition: Any) -> None:
        """Records of ``form`` must satisfy ``condition`` for everyone not exempt.

        Restrictions AND over every scope and every later grant; only an
        ``exempt`` line (and no deny) lifts one.
        """
        self._define("restrict", form, name, condition)

    def drop_restriction(self, form: str, name: str) -> bool:
        return self._drop("restrict", form, name)

    def _define(self, ptype: str, form: FormDefinition, name: str, condition: Any) -> None:
        _check_name(name, "/name")
        if ptype == "scope" and name in BUILTIN_SCOPES:
            raise PolicyError(
                f"{name!r} is a built-in scope.", [ErrorDetail("/name", "choose another name")]
            )
        parse_condition(condition, form, pointer="/condition")
        text = json.dumps(condition, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
        if len(text) > CHUNK * CHUNKS:
            raise PolicyError(
                "The condition is too long to store.",
                [ErrorDetail("/condition", f"at most {CHUNK * CHUNKS} characters as JSON")],
            )
        pieces = [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)]
        existing = self.conn.execute(
            sa.select(_rule.c.v2, _rule.c.v3, _rule.c.v4, _rule.c.v5).where(
                _rule.c.ptype == ptype, _rule.c.v0 == form.key, _rule.c.v1 == name
            )
        ).first()
        if existing is not None and "".join(x or "" for x in existing) == text:
            return
        self.conn.execute(
            sa.delete(_rule).where(
                _rule.c.ptype == ptype, _rule.c.v0 == form.key, _rule.c.v1 == name
            )
        )
        self.conn.execute(
            sa.insert(_rule).values(
                ptype=ptype,
                v0=form.key,
                v1=name,
                **{f"v{i + 2}": piece for i, piece in enumerate(pieces)},
            )
        )
        self._changed(ptype, [form.key, name, text], "add")

    def _drop(self, ptype: str, form: str, name: str) -> bool:
        n = self.conn.execute(
            sa.delete(_rule).where(_rule.c.ptype == ptype, _rule.c.v0 == form, _rule.c.v1 == name)
        ).rowcount
        if n:
            self._changed(ptype, [form, name], "remove")
        return bool(n)


def _check_name(name: str, pointer: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise PolicyError(
            "The policy line is not valid.",
            [ErrorDetail(pointer, "lower-case letters, digits and _, starting with a letter")],
        )


def _check_p(subject: str, obj: str, act: str, effect: str) -> None:
    problems: list[ErrorDetail] = []
    if not _SUBJECT.match(subject):
        problems.append(ErrorDetail("/subject", "must be role:<key> or user:<id>"))
    if effect not in ("allow", "deny"):
        problems.append(ErrorDetail("/effect", "must be allow or deny"))
    kind, _, target = obj.partition(":")
    if kind == "form":
        if not _FORM.match(target):
            problems.append(ErrorDetail("/object", "form:<form key> or form:*"))
        if act not in ACTIONS:
            problems.append(ErrorDetail("/action", f"must be one of {', '.join(ACTIONS)}"))
    elif kind == "field":
        form, dot, field = target.partition(".")
        if not (dot and _FORM.match(form) and _FIELD.match(field)):
            problems.append(ErrorDetail("/object", "field:<form>.<field> (either may be *)"))
        if act not in LEVELS:
            problems.append(ErrorDetail("/action", f"must be one of {', '.join(LEVELS)}"))
    elif kind == "scope":
        action, colon, scope = act.partition(":")
        if not _FORM.match(target):
            problems.append(ErrorDetail("/object", "scope:<form key> or scope:*"))
        if action not in ACTIONS or not colon or not _NAME.match(scope):
            problems.append(ErrorDetail("/action", "<action>:<own|dept|dept_tree|all|scope name>"))
    elif kind == "restrict":
        verb, colon, name = act.partition(":")
        if not _FORM.match(target) or target == "*":
            problems.append(ErrorDetail("/object", "restrict:<form key>"))
        if verb != "exempt" or not _NAME.match(name):
            problems.append(ErrorDetail("/action", "exempt:<restriction name>"))
    else:
        problems.append(ErrorDetail("/object", "form:, field:, scope: or restrict:<...>"))
    if problems:
        raise PolicyError("The policy line is not valid.", problems)
