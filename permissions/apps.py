"""Roles in app folders: ``roles.json`` read, validated, applied and written back.

An app folder may hold ``roles.json`` next to ``forms/`` (format:
docs/permissions.md, "Roles in app folders"): the roles of the app's role
catalogue, what each may do on the app's forms, the named custom scopes and
the global restrictions. :func:`import_roles` validates the whole file
against the published forms first (every problem at its JSON pointer,
``roles.json#/roles/2/grants/customer/fields/phne``) and writes nothing when
anything is wrong; then it makes the database match the file through
:class:`~permissions.policy.PolicyStore` and the role catalogue, in the
caller's transaction. Lines already there are left alone, so importing the
same file twice changes nothing and bumps nothing.

What the file owns (and an import replaces exactly): the catalogue entries
of the roles it lists, every ``p`` line whose subject is one of those roles,
the role -> role ``g`` lines of those roles, and every named custom scope and
restriction (one app per database, as :func:`engine.apps.export_app` has
it). User -> role assignments, direct user grants and roles the file does
not list are never touched. :func:`export_roles` writes the same content
back in one canonical text, so ``import -> export`` reproduces a canonical
file byte for byte.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from engine.apps import read_document
from engine.catalog import get_published
from engine.errors import DefinitionError, ErrorDetail
from engine.forms.definition import FormDefinition
from engine.system import casbin_rule_table
from permissions import org
from permissions.conditions import PolicyError, parse_condition
from permissions.policy import (
    ACTIONS,
    BUILTIN_SCOPES,
    CHUNK,
    CHUNKS,
    LEVELS,
    PolicyStore,
    load_policy,
    role_subject,
)

ROLES_FILE = "roles.json"

# field_caps: the highest level a role may get; stored as a deny line one level up.
CAP_LEVELS = LEVELS[:-1]

_ROLE_KEYS = ("key", "name", "description", "inherits", "grants")
_GRANT_KEYS = ("actions", "deny", "fields", "field_caps", "scopes")
_TOP_KEYS = ("roles", "scopes", "restrictions")
_SCOPE_KEYS = ("name", "form", "condition")
_RESTRICTION_KEYS = ("name", "form", "condition", "exempt")

PLine = tuple[str, str, str, str]  # subject, object, action, effect


class RoleFileError(DefinitionError):
    """``roles.json`` is malformed or does not fit the app's forms; nothing was changed."""

    title = "Invalid roles file"


@dataclass(frozen=True)
class RoleSpec:
    key: str
    name: str
    description: str | None


@dataclass
class RoleFile:
    """A validated ``roles.json``: the catalogue entries and the lines they stand for."""

    roles: list[RoleSpec] = field(default_factory=list)
    p: set[PLine] = field(default_factory=set)
    g: set[tuple[str, str]] = field(default_factory=set)  # (role, parent) keys
    scopes: dict[tuple[str, str], Any] = field(default_factory=dict)
    restrictions: dict[tuple[str, str], Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ImportRolesResult:
    roles_created: int
    roles_updated: int
    lines_added: int
    lines_removed: int

    @property
    def changed(self) -> bool:
        return bool(
            self.roles_created or self.roles_updated or self.lines_added or self.lines_removed
        )


@dataclass(frozen=True)
class ExportRolesResult:
    path: Path
    changed: bool
    roles: int
    # Role lines roles.json cannot hold (e.g. a deny on a scope): not written.
    skipped: list[str]


# --- reading and validation ----------------------------------------------------


def _cap_line_level(cap: str) -> str:
    """The deny line's level for 'at most ``cap``'."""
    return LEVELS[LEVELS.index(cap) + 1]


class _Validator:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn
        self.problems: list[ErrorDetail] = []
        self._forms: dict[str, FormDefinition | None] = {}

    def problem(self, pointer: str, message: str) -> None:
        self.problems.append(ErrorDetail(f"{ROLES_FILE}#{pointer}", message))

    def form(self, key: str) -> FormDefinition | None:
        if key not in self._forms:
            published = get_published(self.conn, key) if isinstance(key, str) else None
            self._forms[key] = published.definition if published is not None else None
        return self._forms[key]

    def known_keys(self, value: Mapping[str, Any], allowed: Iterable[str], pointer: str) -> None:
        allowed = tuple(allowed)
        for k in value:
            if k not in allowed:
                self.problem(
                    f"{pointer}/{_escape(k)}", f"unknown member; expected {', '.join(allowed)}"
                )

    def name(self, value: Any, pointer: str) -> bool:
        if isinstance(value, str) and _is_name(value):
            return True
        self.problem(
            pointer, "lower-case letters, digits and _, starting with a letter (at most 63)"
        )
        return False

    def string_list(self, value: Any, pointer: str) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(pointer, "a list of strings")
            return []
        for i, v in enumerate(value):
            if v in value[:i]:
                self.problem(f"{pointer}/{i}", f"{v!r} is listed twice")
        return list(value)


def _escape(token: str) -> str:
    return str(token).replace("~", "~0").replace("/", "~1")


def _is_name(value: str) -> bool:
    return (
        bool(value)
        and len(value) <= 63
        and value[0].isascii()
        and value[0].islower()
        and all(c.isascii() and (c.islower() or c.isdigit() or c == "_") for c in value)
    )


def parse_roles(conn: sa.Connection, document: Any) -> RoleFile:
    """Validate a ``roles.json`` document against the published forms.

    Raises :class:`RoleFileError` listing every problem; reads only.
    """
    v = _Validator(conn)
    out = RoleFile()
    if not isinstance(document, dict):
        raise RoleFileError(
            "roles.json must be a JSON object.",
            [ErrorDetail(f"{ROLES_FILE}#", "expected an object")],
        )
    v.known_keys(document, _TOP_KEYS, "")
    roles = document.get("roles")
    if not isinstance(roles, list):
        v.problem("/roles", "required: a list of roles")
        roles = []

    # Keys first: grants, inherits and exemptions refer to them.
    keys: list[str | None] = []
    for i, role in enumerate(roles):
        key = role.get("key") if isinstance(role, dict) else None
        if isinstance(role, dict) and v.name(key, f"/roles/{i}/key"):
            if key in keys:
                v.problem(f"/roles/{i}/key", f"role {key!r} is defined twice")
                key = None
            keys.append(key)
        else:
            keys.append(None)
    role_keys = {k for k in keys if k is not None}

    # Named custom scopes: grants may name them.
    custom: set[tuple[str, str]] = set()
    for i, spec in enumerate(_list(v, document, "scopes")):
        found = _condition_spec(v, spec, f"/scopes/{i}", _SCOPE_KEYS, out.scopes, "scope")
        if found is not None:
            custom.add(found)

    for i, spec in enumerate(_list(v, document, "restrictions")):
        pointer = f"/restrictions/{i}"
        found = _condition_spec(
            v, spec, pointer, _RESTRICTION_KEYS, out.restrictions, "restriction"
        )
        if isinstance(spec, dict) and "exempt" in spec:
            for j, role in enumerate(v.string_list(spec["exempt"], f"{pointer}/exempt")):
                if role not in role_keys:
                    v.problem(f"{pointer}/exempt/{j}", f"unknown role {role!r}: not in roles")
                elif found is not None:
                    out.p.add(
                        (role_subject(role), f"restrict:{found[0]}", f"exempt:{found[1]}", "allow")
                    )

    parents: dict[str, list[str]] = {}
    for i, role in enumerate(roles):
        pointer = f"/roles/{i}"
        if not isinstance(role, dict):
            v.problem(pointer, "a role is an object")
            continue
        v.known_keys(role, _ROLE_KEYS, pointer)
        key = keys[i]
        name = role.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            v.problem(f"{pointer}/name", "required: a name of 1..200 characters")
        description = role.get("description")
        if description is not None and not isinstance(description, str):
            v.problem(f"{pointer}/description", "a description is text")
        inherits = v.string_list(role.get("inherits", []), f"{pointer}/inherits")
        for j, parent in enumerate(inherits):
            if parent == key:
                v.problem(f"{pointer}/inherits/{j}", "a role cannot inherit from itself")
            elif parent not in role_keys:
                v.problem(f"{pointer}/inherits/{j}", f"unknown role {parent!r}: not in roles")
        grants = role.get("grants", {})
        if not isinstance(grants, dict):
            v.problem(f"{pointer}/grants", "an object: form key (or *) -> grant")
            grants = {}
        lines: set[PLine] = set()
        for form_key, grant in grants.items():
            _grant(
                v,
                form_key,
                grant,
                f"{pointer}/grants/{_escape(form_key)}",
                custom,
                key or "",
                lines,
            )
        if key is None:
            continue
        out.roles.append(
            RoleSpec(
                key,
                name if isinstance(name, str) else "",
                description if isinstance(description, str) else None,
            )
        )
        out.p |= lines
        parents[key] = [p for p in inherits if p in role_keys and p != key]
        out.g |= {(key, p) for p in parents[key]}

    for cycle_role in _in_cycles(parents):
        i = keys.index(cycle_role)
        v.problem(
            f"/roles/{i}/inherits", f"role {cycle_role!r} inherits from itself through a cycle"
        )

    if v.problems:
        raise RoleFileError(
            f"{ROLES_FILE} has {len(v.problems)} problem(s); nothing was changed.", v.problems
        )
    return out


def _list(v: _Validator, document: Mapping[str, Any], member: str) -> list[Any]:
    value = document.get(member, [])
    if not isinstance(value, list):
        v.problem(f"/{member}", "a list")
        return []
    return value


def _condition_spec(
    v: _Validator,
    spec: Any,
    pointer: str,
    allowed: tuple[str, ...],
    into: dict[tuple[str, str], Any],
    kind: str,
) -> tuple[str, str] | None:
    if not isinstance(spec, dict):
        v.problem(pointer, f"a {kind} is an object with {', '.join(allowed)}")
        return None
    v.known_keys(spec, allowed, pointer)
    name, form_key = spec.get("name"), spec.get("form")
    ok = v.name(name, f"{pointer}/name")
    if ok and kind == "scope" and name in BUILTIN_SCOPES:
        v.problem(f"{pointer}/name", f"{name!r} is a built-in scope; choose another name")
        ok = False
    definition = v.form(form_key) if isinstance(form_key, str) else None
    if definition is None:
        v.problem(f"{pointer}/form", f"unknown form {form_key!r}: not published")
        ok = False
    if "condition" not in spec:
        v.problem(f"{pointer}/condition", "required")
        return None
    if definition is not None:
        try:
            parse_condition(spec["condition"], definition, pointer=f"{pointer}/condition")
        except PolicyError as exc:
            for e in exc.errors:
                v.problem(e.pointer, e.message)
            ok = False
        text = json.dumps(
            spec["condition"], separators=(",", ":"), ensure_ascii=False, sort_keys=True
        )
        if len(text) > CHUNK * CHUNKS:
            v.problem(f"{pointer}/condition", f"at most {CHUNK * CHUNKS} characters as JSON")
            ok = False
    if not ok:
        return None
    assert isinstance(form_key, str) and isinstance(name, str)
    if (form_key, name) in into:
        v.problem(f"{pointer}/name", f"{kind} {name!r} of {form_key!r} is defined twice")
        return None
    into[(form_key, name)] = spec["condition"]
    return form_key, name


def _grant(
    v: _Validator,
    form_key: str,
    grant: Any,
    pointer: str,
    custom: set[tuple[str, str]],
    role: str,
    lines: set[PLine],
) -> None:
    subject = role_subject(role)
    definition = None
    if form_key != "*":
        definition = v.form(form_key)
        if definition is None:
            v.problem(pointer, f"unknown form {form_key!r}: not published (or * for every form)")
            return
    if not isinstance(grant, dict):
        v.problem(pointer, f"an object with {', '.join(_GRANT_KEYS)}")
        return
    v.known_keys(grant, _GRANT_KEYS, pointer)

    def field_ok(key: str, at: str) -> bool:
        if key == "*":
            return True
        if definition is None:
            v.problem(at, "on form *, only * (every field) can be named")
            return False
        if key not in {f.key for f in definition.fields}:
            v.problem(at, f"unknown field {key!r} of form {form_key!r}")
            return False
        return True

    for member, effect in (("actions", "allow"), ("deny", "deny")):
        for i, action in enumerate(v.string_list(grant.get(member, []), f"{pointer}/{member}")):
            if action not in ACTIONS:
                v.problem(
                    f"{pointer}/{member}/{i}",
                    f"unknown action {action!r}; one of {', '.join(ACTIONS)}",
                )
            else:
                lines.add((subject, f"form:{form_key}", action, effect))
    for member, levels in (("fields", LEVELS), ("field_caps", CAP_LEVELS)):
        value = grant.get(member, {})
        if not isinstance(value, dict):
            v.problem(f"{pointer}/{member}", "an object: field key (or *) -> level")
            continue
        for fkey, level in value.items():
            at = f"{pointer}/{member}/{_escape(fkey)}"
            ok = field_ok(fkey, at)
            if level not in levels:
                v.problem(at, f"unknown level {level!r}; one of {', '.join(levels)}")
            elif ok and member == "fields":
                lines.add((subject, f"field:{form_key}.{fkey}", level, "allow"))
            elif ok:
                lines.add((subject, f"field:{form_key}.{fkey}", _cap_line_level(level), "deny"))
    scopes = grant.get("scopes", {})
    if not isinstance(scopes, dict):
        v.problem(f"{pointer}/scopes", "an object: action -> scope name (or a list of them)")
        return
    for action, names in scopes.items():
        at = f"{pointer}/scopes/{_escape(action)}"
        if action not in ACTIONS:
            v.problem(at, f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
            continue
        listed = [names] if isinstance(names, str) else v.string_list(names, at)
        for i, scope in enumerate(listed):
            where = at if isinstance(names, str) else f"{at}/{i}"
            if scope in BUILTIN_SCOPES or (form_key, scope) in custom:
                lines.add((subject, f"scope:{form_key}", f"{action}:{scope}", "allow"))
            else:
                v.problem(
                    where,
                    f"unknown scope {scope!r}: one of {', '.join(BUILTIN_SCOPES)} "
                    f"or a scope of {form_key!r} defined in scopes",
                )


def _in_cycles(parents: Mapping[str, list[str]]) -> list[str]:
    """Roles that reach themselves through ``inherits`` (one per cycle reported)."""
    found: list[str] = []
    seen_cycles: set[frozenset[str]] = set()
    for start in parents:
        stack, visited = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in parents.get(node, []):
                if nxt == start:
                    members = frozenset(path)
                    if members not in seen_cycles:
                        seen_cycles.add(members)
                        found.append(min(members))
                elif nxt not in visited:
                    visited.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    return found


def read_roles(conn: sa.Connection, app_dir: Path) -> RoleFile | None:
    """Read and validate ``app_dir/roles.json``; None when the folder has none."""
    path = Path(app_dir) / ROLES_FILE
    if not path.is_file():
        return None
    document, problems = read_document(path, name=ROLES_FILE)
    if problems:
        raise RoleFileError(f"{ROLES_FILE} is not a valid JSON document.", problems)
    return parse_roles(conn, document)


# --- import ---------------------------------------------------------------------


def import_roles(
    conn: sa.Connection,
    app_dir: Path,
    *,
    actor_id: int | None = None,
    now: dt.datetime | None = None,
) -> ImportRolesResult | None:
    """Apply ``app_dir/roles.json`` in the caller's transaction (None if there is none).

    Validates everything before writing; then creates or renames the listed
    roles and adds and removes exactly the lines that differ, each through
    the policy store (audited, one policy-version bump per changed line).
    """
    wanted = read_roles(conn, app_dir)
    if wanted is None:
        return None
    now = now or dt.datetime.now(dt.UTC)
    store = PolicyStore(conn, actor_id=actor_id, now=now)

    existing = {r.key: r for r in org.list_roles(conn)}
    created = updated = 0
    for spec in wanted.roles:
        role = existing.get(spec.key)
        if role is None:
            org.create_role(
                conn,
                key=spec.key,
                name=spec.name,
                description=spec.description,
                actor_id=actor_id,
                now=now,
            )
            created += 1
        elif (role.name, role.description) != (spec.name, spec.description):
            org.update_role(
                conn,
                key=spec.key,
                name=spec.name,
                description=spec.description,
                actor_id=actor_id,
                now=now,
            )
            updated += 1

    have_p, have_g = _role_lines(conn, [r.key for r in wanted.roles])
    policy = load_policy(conn)
    removed = added = 0
    for subject, obj, act, effect in sorted(have_p - wanted.p):
        removed += store.remove_line(subject, obj, act, effect)  # type: ignore[arg-type]
    for child, parent in sorted(have_g - wanted.g):
        removed += store.uninherit(child, parent)
    for form_key, name in sorted(set(policy.scopes) - set(wanted.scopes)):
        removed += store.drop_scope(form_key, name)
    for form_key, name in sorted(set(policy.restrictions) - set(wanted.restrictions)):
        removed += store.drop_restriction(form_key, name)

    for kind, defined, have in (
        ("scope", wanted.scopes, policy.scopes),
        ("restrict", wanted.restrictions, policy.restrictions),
    ):
        for (form_key, name), condition in sorted(defined.items()):
            if have.get((form_key, name)) == condition:
                continue
            published = get_published(conn, form_key)
            assert published is not None  # checked by parse_roles
            if kind == "scope":
                store.define_scope(published.definition, name, condition)
            else:
                store.define_restriction(published.definition, name, condition)
            added += 1
    for child, parent in sorted(wanted.g - have_g):
        added += store.inherit(child, parent)
    for subject, obj, act, effect in sorted(wanted.p - have_p):
        added += store.add_line(subject, obj, act, effect)  # type: ignore[arg-type]
    return ImportRolesResult(created, updated, added, removed)


def _role_lines(conn: sa.Connection, keys: list[str]) -> tuple[set[PLine], set[tuple[str, str]]]:
    """The p lines of ``keys``' roles and their role -> role g lines (as keys)."""
    if not keys:
        return set(), set()
    r = casbin_rule_table
    subjects = [role_subject(k) for k in keys]
    rows = conn.execute(
        sa.select(r.c.ptype, r.c.v0, r.c.v1, r.c.v2, r.c.v3).where(
            r.c.ptype.in_(["p", "g"]), r.c.v0.in_(subjects)
        )
    ).all()
    p = {(v0, v1, v2, v3 or "allow") for ptype, v0, v1, v2, v3 in rows if ptype == "p"}
    g = {
        (v0.removeprefix("role:"), v1.removeprefix("role:"))
        for ptype, v0, v1, _, _ in rows
        if ptype == "g" and v1.startswith("role:")
    }
    return p, g


# --- export ---------------------------------------------------------------------


def roles_document(conn: sa.Connection) -> tuple[dict[str, Any], list[str]]:
    """The database's roles, grants, scopes and restrictions as a canonical document.

    Returns the document and the role lines it cannot hold.
    """
    policy = load_policy(conn)
    roles = org.list_roles(conn)
    by_subject = {role_subject(r.key): r for r in roles}
    grants: dict[str, dict[str, dict[str, Any]]] = {r.key: {} for r in roles}
    exempt: dict[tuple[str, str], list[str]] = {}
    skipped: list[str] = []

    def grant(role: str, form_key: str) -> dict[str, Any]:
        return grants[role].setdefault(
            form_key, {"actions": [], "deny": [], "fields": {}, "field_caps": {}, "scopes": {}}
        )

    for subject, obj, act, effect in policy.p:
        role = by_subject.get(subject)
        if role is None:
            continue  # direct user grants are not part of the app
        kind, _, target = obj.partition(":")
        shown = f"p, {subject}, {obj}, {act}, {effect}"
        if kind == "form" and act in ACTIONS:
            grant(role.key, target)["actions" if effect == "allow" else "deny"].append(act)
        elif kind == "field" and act in LEVELS and "." in target:
            form_key, _, fkey = target.partition(".")
            g = grant(role.key, form_key)
            if effect == "allow" and fkey not in g["fields"]:
                g["fields"][fkey] = act
            elif effect == "deny" and act != "hidden" and fkey not in g["field_caps"]:
                g["field_caps"][fkey] = LEVELS[LEVELS.index(act) - 1]
            else:
                skipped.append(shown)
        elif kind == "scope" and effect == "allow" and ":" in act:
            action, _, scope = act.partition(":")
            grant(role.key, target)["scopes"].setdefault(action, []).append(scope)
        elif kind == "restrict" and effect == "allow" and act.startswith("exempt:"):
            exempt.setdefault((target, act.removeprefix("exempt:")), []).append(role.key)
        else:
            skipped.append(shown)

    inherits: dict[str, list[str]] = {}
    for child, parent in policy.g:
        if child in by_subject and parent in by_subject:
            inherits.setdefault(by_subject[child].key, []).append(by_subject[parent].key)

    out_roles = []
    for r in roles:
        entry: dict[str, Any] = {"key": r.key, "name": r.name}
        if r.description is not None:
            entry["description"] = r.description
        if inherits.get(r.key):
            entry["inherits"] = sorted(set(inherits[r.key]))
        if grants[r.key]:
            entry["grants"] = {k: _canonical_grant(grants[r.key][k]) for k in sorted(grants[r.key])}
        out_roles.append(entry)
    document: dict[str, Any] = {"roles": out_roles}
    if policy.scopes:
        document["scopes"] = [
            {"name": name, "form": form_key, "condition": _sorted(policy.scopes[(form_key, name)])}
            for form_key, name in sorted(policy.scopes)
        ]
    if policy.restrictions:
        document["restrictions"] = []
        for form_key, name in sorted(policy.restrictions):
            item: dict[str, Any] = {
                "name": name,
                "form": form_key,
                "condition": _sorted(policy.restrictions[(form_key, name)]),
            }
            if exempt.get((form_key, name)):
                item["exempt"] = sorted(set(exempt[(form_key, name)]))
            document["restrictions"].append(item)
    for (form_key, name), role_keys in sorted(exempt.items()):
        if (form_key, name) not in policy.restrictions:
            skipped.extend(
                f"p, role:{k}, restrict:{form_key}, exempt:{name}, allow" for k in role_keys
            )
    return document, skipped


def _canonical_grant(g: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for member in ("actions", "deny"):
        if g[member]:
            out[member] = [a for a in ACTIONS if a in g[member]]
    for member in ("fields", "field_caps"):
        if g[member]:
            out[member] = {k: g[member][k] for k in sorted(g[member])}
    if g["scopes"]:
        out["scopes"] = {}
        for action in ACTIONS:
            names = sorted(set(g["scopes"].get(action, [])))
            if names:
                out["scopes"][action] = names[0] if len(names) == 1 else names
    return out


def _sorted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(x) for x in value]
    return value


def dump_roles(document: Mapping[str, Any]) -> str:
    """The canonical text of a roles document (members in the documented order)."""
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def export_roles(conn: sa.Connection, app_dir: Path) -> ExportRolesResult | None:
    """Write ``app_dir/roles.json`` canonically.

    Returns None, writing nothing, when the database has no roles, scopes or
    restrictions.
    """
    document, skipped = roles_document(conn)
    if not document["roles"] and len(document) == 1:
        return None
    app_dir = Path(app_dir)
    app_dir.mkdir(parents=True, exist_ok=True)
    path = app_dir / ROLES_FILE
    data = dump_roles(document).encode("utf-8")
    try:
        changed = path.read_bytes() != data
    except FileNotFoundError:
        changed = True
    if changed:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return ExportRolesResult(path, changed, len(document["roles"]), skipped)
