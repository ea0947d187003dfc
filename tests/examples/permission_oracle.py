"""What examples/bank_crm/roles.json means, read directly from the file.

The permission matrix test compares every answer of the REST API with this
reading. It is deliberately a second, plain implementation — no Casbin, no
compiler, no SQL — of the rules in docs/permissions.md, so a mistake in the
compiled access cannot also be a mistake in the expectation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROLES_FILE = Path(__file__).resolve().parents[2] / "examples" / "bank_crm" / "roles.json"
LEVELS = ("hidden", "mask", "read", "write")
CAP = {"hidden": 0, "mask": 1, "read": 2, "write": 3}


@dataclass(frozen=True)
class Person:
    user_id: int
    roles: frozenset[str]  # empty and superuser=True for the administrator
    dept_ids: frozenset[int]  # their departments
    tree_ids: frozenset[int]  # those and every department below
    superuser: bool = False


class Oracle:
    def __init__(self, document: Mapping[str, Any] | None = None) -> None:
        doc = document or json.loads(ROLES_FILE.read_text("utf-8"))
        self.roles = {r["key"]: r for r in doc["roles"]}
        self.scopes = {(s["form"], s["name"]): s["condition"] for s in doc.get("scopes", [])}
        self.restrictions = doc.get("restrictions", [])

    def closure(self, roles: frozenset[str]) -> set[str]:
        out: set[str] = set()
        todo = list(roles)
        while todo:
            r = todo.pop()
            if r not in out:
                out.add(r)
                todo.extend(self.roles[r].get("inherits", []))
        return out

    def _grants(self, person: Person, form: str) -> list[Mapping[str, Any]]:
        return [
            g
            for r in self.closure(person.roles)
            for key in (form, "*")
            if (g := self.roles[r]["grants"].get(key)) is not None
        ]

    def allowed(self, person: Person, form: str, action: str) -> bool:
        if person.superuser:
            return True
        grants = self._grants(person, form)
        allow = any(action in g.get("actions", []) for g in grants)
        deny = any(action in g.get("deny", []) for g in grants)
        return allow and not deny

    def level(self, person: Person, form: str, field: str) -> str:
        if person.superuser:
            return "write"
        best, cap = 0, 3
        for g in self._grants(person, form):
            fields = g.get("fields", {})
            for name in (field, "*"):
                if name in fields:
                    best = max(best, CAP[fields[name]])
            if field in g.get("field_caps", {}):
                cap = min(cap, CAP[g["field_caps"][field]])
        return LEVELS[min(best, cap)]

    def in_scope(self, person: Person, form: str, action: str, row: Mapping[str, Any]) -> bool:
        """``row``: owner_id, dept_id and the form's own columns."""
        if not self.allowed(person, form, action):
            return False
        if person.superuser:
            return True
        names: set[str] = set()
        for g in self._grants(person, form):
            granted = g.get("scopes", {}).get(action, [])
            names.update([granted] if isinstance(granted, str) else granted)
        if not any(self._scope(person, form, n, row) for n in names):
            return False
        held = self.closure(person.roles)
        for r in self.restrictions:
            exempt = held & set(r["exempt"])
            if r["form"] == form and not exempt and not _holds(r["condition"], row):
                return False
        return True

    def _scope(self, person: Person, form: str, name: str, row: Mapping[str, Any]) -> bool:
        if name == "all":
            return True
        if name == "own":
            return row["owner_id"] == person.user_id
        if name == "dept":
            return row["dept_id"] in person.dept_ids
        if name == "dept_tree":
            return row["dept_id"] in person.tree_ids
        return _holds(self.scopes[(form, name)], row)


def _holds(cond: Mapping[str, Any], row: Mapping[str, Any]) -> bool:
    """The few condition shapes roles.json uses; a NULL field compares false."""
    if "not" in cond:
        return not _holds(cond["not"], row)
    if "all" in cond:
        return all(_holds(c, row) for c in cond["all"])
    if "any" in cond:
        return any(_holds(c, row) for c in cond["any"])
    value = row.get(cond["field"])
    if value is None:
        return False
    if cond["op"] == "eq":
        return bool(value == cond["value"])
    if cond["op"] == "in":
        return value in cond["value"]
    raise AssertionError(f"the oracle does not know {cond}")
