"""Compiled access: a user's grants on one form and action, computed once.

For a request ``(user, form, action)`` the policy becomes an :class:`Access`:
whether the action is allowed, a data-scope condition (turned into a
SQLAlchemy WHERE clause by :meth:`Access.where`) and a level per field. Casbin
is used for what it is good at — the policy format and the role graph
(:meth:`casbin.Enforcer.get_implicit_roles_for_user`, resolved once per user
and policy version); ``enforce()`` is never called on a request path, let
alone per row or per field.

Rules (the reference semantics is permissions/model.conf's matcher):

* nothing granted is denied; a deny line wins over any allow line;
* form actions: ``form:<form>`` / ``form:*`` lines for the action;
* field levels hidden < mask < read < write: the highest level an allow line
  grants (on the field, ``<form>.*`` or ``*.*``), capped below the lowest
  level a deny line names;
* data scope: the scopes granted for the action (minus denied ones) OR'ed —
  own (``owner_id = user``), dept (``dept_id IN user's departments``),
  dept_tree (those and every department below, via the closure table), all,
  or a named custom condition; then every global restriction of the form the
  user is not exempt from is AND'ed on top. A denied action has scope false.

Results are cached per policy version (``ff_policy_state``): every policy and
organisation change bumps the version in its own transaction, so the next
request after the commit compiles afresh, in every process, with no restart.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from importlib import resources
from typing import Any

import casbin
import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from engine.forms.definition import FormDefinition
from engine.forms.fieldtypes import FIELD_TYPES
from permissions.conditions import (
    FALSE,
    TRUE,
    Condition,
    DeptTree,
    InTree,
    Leaf,
    PolicyError,
    Subject,
    all_of,
    any_of,
    bind,
    evaluate,
    parse_condition,
    to_sql,
)
from permissions.org import dept_tree_condition, policy_version
from permissions.policy import LEVELS, PolicyLines, load_policy

MODEL_PATH = str(resources.files("permissions").joinpath("model.conf"))
PLine = tuple[str, str, str, str]  # sub, obj, act, eft
MAX_CACHED = 20_000


class Level(IntEnum):
    HIDDEN = 0
    MASK = 1
    READ = 2
    WRITE = 3

    @property
    def label(self) -> str:
        return self.name.lower()


_LEVEL = {name: Level(i) for i, name in enumerate(LEVELS)}


def _freeze(value: Any) -> Any:
    if isinstance(value, (list, tuple, set, frozenset)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, Mapping):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    return value


@dataclass(frozen=True)
class UserContext:
    """Who is asking: what conditions and role lookups may use.

    ``roles`` are role keys the caller holds besides those the policy gives
    ``user:<id>`` (e.g. roles of an API key); usually empty. ``attributes``
    are the values conditions name as ``{"user": "<attribute>"}``.
    """

    user_id: int
    roles: frozenset[str] = frozenset()
    dept_ids: frozenset[int] = frozenset()
    attributes: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    _attrs_key: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "roles", frozenset(self.roles))
        object.__setattr__(self, "dept_ids", frozenset(self.dept_ids))
        object.__setattr__(self, "_attrs_key", _freeze(self.attributes))

    def subject(self) -> Subject:
        return Subject(self.user_id, self.dept_ids, self.attributes)


@dataclass(frozen=True)
class RestrictionNote:
    name: str
    applied: bool
    lines: tuple[PLine, ...]  # exemption lines that matched (allow or deny)


@dataclass(frozen=True)
class AccessExplain:
    """Which lines decided: the raw material of permissions.explain."""

    subjects: tuple[str, ...]
    action_lines: tuple[PLine, ...]
    field_lines: Mapping[str, tuple[PLine, ...]]
    scope_lines: tuple[PLine, ...]
    scopes: tuple[str, ...]
    restrictions: tuple[RestrictionNote, ...]
    problems: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Access:
    form: str
    action: str
    allowed: bool
    condition: Condition  # bound to the user; false when not allowed
    levels: Mapping[str, Level]
    explain: AccessExplain
    _where: tuple[sa.Table, ColumnElement[bool]] | None = field(default=None, repr=False)

    def where(self, table: sa.Table) -> ColumnElement[bool]:
        """The data scope as a WHERE clause over the form's table.

        Built once per table object (SQLAlchemy clauses are immutable and
        reusable); building one costs far more than the cache lookup.
        """
        memo = self._where
        if memo is not None and memo[0] is table:
            return memo[1]
        clause = to_sql(self.condition, table, dept_tree=dept_tree_condition)
        object.__setattr__(self, "_where", (table, clause))
        return clause

    def level(self, field_key: str) -> Level:
        return self.levels.get(field_key, Level.HIDDEN)

    def matches(self, record: Mapping[str, Any], *, in_tree: InTree | None = None) -> bool:
        """Python evaluation of the scope on one record (column -> value)."""
        return evaluate(self.condition, record, in_tree=in_tree)

    @property
    def unrestricted(self) -> bool:
        return self.condition == TRUE


class CompiledPolicy:
    """One policy version: lines indexed by subject and form, the role graph, a cache."""

    def __init__(self, version: int, lines: PolicyLines) -> None:
        self.version = version
        self.lines = lines
        self._lock = threading.Lock()
        # Casbin holds the role graph only: its add_policies() checks each p
        # line against the others (~85 ms for 2,600 lines), and the p lines
        # are compiled here from the index below instead.
        self.enforcer = casbin.Enforcer(MODEL_PATH)
        if lines.g:
            self.enforcer.model.add_policies("g", "g", [list(x) for x in lines.g])
        self.enforcer.build_role_links()
        # subject -> form key ("*" too) -> lines on that form
        index: dict[str, dict[str, list[PLine]]] = defaultdict(lambda: defaultdict(list))
        for line in lines.p:
            kind, _, target = line[1].partition(":")
            form = target.partition(".")[0] if kind == "field" else target
            index[line[0]][form].append(line)
        self._index = {s: {f: tuple(ls) for f, ls in forms.items()} for s, forms in index.items()}
        self._subjects: dict[tuple[int, frozenset[str]], tuple[str, ...]] = {}
        self._conditions: dict[tuple[str, int | None, str, str], Condition | str] = {}
        self._cache: dict[tuple[Any, ...], Access] = {}

    # --- roles --------------------------------------------------------------------

    def subjects(self, user: UserContext) -> tuple[str, ...]:
        key = (user.user_id, user.roles)
        found = self._subjects.get(key)
        if found is None:
            with self._lock:  # Casbin's role manager is not thread-safe
                names = [f"user:{user.user_id}", *(f"role:{r}" for r in sorted(user.roles))]
                out: dict[str, None] = {}
                for name in names:
                    out[name] = None
                    for r in self.enforcer.get_implicit_roles_for_user(name):
                        out[r] = None
            first = f"user:{user.user_id}"
            found = self._subjects[key] = (first, *sorted(s for s in out if s != first))
        return found

    # --- compile ------------------------------------------------------------------

    def access(
        self, user: UserContext, form: FormDefinition, action: str, *, form_version: int | None
    ) -> Access:
        key = (
            user.user_id,
            user.roles,
            user.dept_ids,
            user._attrs_key,
            form.key,
            form_version,
            action,
        )
        found = self._cache.get(key)
        if found is None:
            found = self._compile(user, form, action, form_version)
            if len(self._cache) >= MAX_CACHED:
                self._cache.clear()
            self._cache[key] = found
        return found

    def _lines(self, subjects: Iterable[str], form: str) -> list[PLine]:
        out: list[PLine] = []
        for s in subjects:
            forms = self._index.get(s)
            if forms:
                out.extend(forms.get(form, ()))
                out.extend(forms.get("*", ()))
        return out

    def _compile(
        self, user: UserContext, form: FormDefinition, action: str, form_version: int | None
    ) -> Access:
        subjects = self.subjects(user)
        lines = self._lines(subjects, form.key)
        problems: list[str] = []

        action_lines = tuple(ln for ln in lines if ln[1].startswith("form:") and ln[2] == action)
        allowed = _decide(action_lines)

        levels, field_lines = _levels(form, lines)

        prefix = f"{action}:"
        scope_lines = tuple(
            ln for ln in lines if ln[1].startswith("scope:") and ln[2].startswith(prefix)
        )
        granted = {ln[2][len(prefix) :] for ln in scope_lines if ln[3] == "allow"}
        denied = {ln[2][len(prefix) :] for ln in scope_lines if ln[3] == "deny"}
        scopes = tuple(sorted(granted - denied))
        subject = user.subject()
        parts = [self._scope(name, user, subject, form, form_version, problems) for name in scopes]
        condition = any_of(parts)

        notes = []
        restrict_lines = [ln for ln in lines if ln[1] == f"restrict:{form.key}"]
        for (form_key, name), _doc in sorted(self.lines.restrictions.items()):
            if form_key != form.key:
                continue
            mine = tuple(ln for ln in restrict_lines if ln[2] == f"exempt:{name}")
            applied = not _decide(mine)
            notes.append(RestrictionNote(name, applied, mine))
            if applied:
                cond = self._condition("restrict", name, form, form_version, problems)
                condition = all_of([condition, bind(cond, subject)])
        if not allowed:
            condition = FALSE
        explain = AccessExplain(
            subjects=subjects,
            action_lines=action_lines,
            field_lines=field_lines,
            scope_lines=scope_lines,
            scopes=scopes,
            restrictions=tuple(notes),
            problems=tuple(problems),
        )
        return Access(form.key, action, allowed, condition, levels, explain)

    def _scope(
        self,
        name: str,
        user: UserContext,
        subject: Subject,
        form: FormDefinition,
        form_version: int | None,
        problems: list[str],
    ) -> Condition:
        if name == "all":
            return TRUE
        if name == "own":
            return Leaf("owner_id", FIELD_TYPES["user"], {}, "eq", user.user_id)
        if name == "dept":
            if not user.dept_ids:
                return FALSE
            return Leaf(
                "dept_id", FIELD_TYPES["department"], {}, "in", tuple(sorted(user.dept_ids))
            )
        if name == "dept_tree":
            return DeptTree(user.dept_ids) if user.dept_ids else FALSE
        return bind(self._condition("scope", name, form, form_version, problems), subject)

    def _condition(
        self,
        kind: str,
        name: str,
        form: FormDefinition,
        form_version: int | None,
        problems: list[str],
    ) -> Condition:
        key = (kind, form_version, form.key, name)
        found = self._conditions.get(key)
        if found is None:
            store = self.lines.scopes if kind == "scope" else self.lines.restrictions
            if (form.key, name) not in store:
                found = f"{kind} {name!r} of form {form.key!r} is not defined: it matches nothing"
            else:
                try:
                    found = parse_condition(store[(form.key, name)], form)
                except PolicyError as e:
                    found = f"{kind} {name!r} does not fit form {form.key!r} ({e}): matches nothing"
            self._conditions[key] = found
        if isinstance(found, str):
            problems.append(found)
            return FALSE
        return found


def _decide(lines: Iterable[PLine]) -> bool:
    """Casbin's deny-override effect over matching lines."""
    allow = deny = False
    for ln in lines:
        if ln[3] == "deny":
            deny = True
        elif ln[3] == "allow":
            allow = True
    return allow and not deny


def _levels(
    form: FormDefinition, lines: list[PLine]
) -> tuple[dict[str, Level], dict[str, tuple[PLine, ...]]]:
    field_prefix = f"field:{form.key}."
    wide: list[PLine] = []  # <form>.* and *.*
    by_field: dict[str, list[PLine]] = defaultdict(list)
    for ln in lines:
        obj = ln[1]
        if obj.startswith(field_prefix):
            name = obj[len(field_prefix) :]
        elif obj.startswith("field:*."):
            name = obj[len("field:*.") :]
        else:
            continue
        if ln[2] not in _LEVEL:
            continue
        (wide if name == "*" else by_field[name]).append(ln)
    levels: dict[str, Level] = {}
    explained: dict[str, tuple[PLine, ...]] = {}
    for f in form.fields:
        mine = [*wide, *by_field.get(f.key, ())]
        best, cap = Level.HIDDEN, Level.WRITE
        for ln in mine:
            lv = _LEVEL[ln[2]]
            if ln[3] == "deny":
                cap = min(cap, Level(max(lv - 1, 0)))
            elif ln[3] == "allow":
                best = max(best, lv)
        levels[f.key] = Level(min(best, cap))
        explained[f.key] = tuple(mine)
    return levels, explained


class AccessCompiler:
    """Compiles and caches access per policy version; one per process.

    ``policy(conn)`` reads the version (one indexed single-row query) and
    reloads the whole policy (one query) when it moved; :meth:`access` is
    that plus a dictionary lookup when warm.
    """

    def __init__(self, *, on_load: Callable[[int], None] | None = None) -> None:
        self._current: CompiledPolicy | None = None
        self._lock = threading.Lock()
        self._on_load = on_load

    def policy(self, conn: sa.Connection, *, version: int | None = None) -> CompiledPolicy:
        """The compiled policy of the current version (``version``, if the caller
        already read it in this transaction, saves the round trip)."""
        if version is None:
            version = policy_version(conn)
        current = self._current
        if current is not None and current.version == version:
            return current
        with self._lock:
            current = self._current
            if current is None or current.version != version:
                # Read in the same transaction: the lines are at least as new
                # as the version, so a stale cache can only be refreshed.
                current = CompiledPolicy(version, load_policy(conn))
                self._current = current
                if self._on_load is not None:
                    self._on_load(version)
        return current

    def access(
        self,
        conn: sa.Connection,
        user: UserContext,
        form: FormDefinition,
        action: str,
        *,
        form_version: int | None = None,
    ) -> Access:
        return self.policy(conn).access(user, form, action, form_version=form_version)
