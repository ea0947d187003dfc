"""Why may user U (not) do A on form F — and see field X of record R?

:func:`explain` answers from the same compiled :class:`~permissions.compile.Access`
every request uses, so the answer cannot drift from enforcement: the roles
the user holds (inherited ones included), the policy lines that allow or deny
the action, each field's level with the lines behind it, the scopes and
restrictions that make up the data scope, and — given a record id — whether
that record is in scope, asked of the database with the very same WHERE clause.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from engine.forms.definition import FormDefinition
from permissions.compile import Access, AccessCompiler, PLine, UserContext
from permissions.conditions import describe


def _line(ln: PLine) -> str:
    return "p, " + ", ".join(ln)


def explain(
    conn: sa.Connection,
    compiler: AccessCompiler,
    user: UserContext,
    form: FormDefinition,
    action: str,
    *,
    form_version: int | None = None,
    field: str | None = None,
    table: sa.Table | None = None,
    record_id: int | None = None,
) -> dict[str, Any]:
    """A JSON-ready explanation; ``field`` narrows the field part to one field."""
    access = compiler.access(conn, user, form, action, form_version=form_version)
    out = explain_access(access, field=field)
    out["policy_version"] = compiler.policy(conn).version
    if record_id is not None:
        if table is None:
            raise ValueError("explaining a record needs the form's table")
        live = table.c.deleted_at.is_(None)
        exists = conn.execute(sa.select(table.c.id).where(table.c.id == record_id)).first()
        in_scope = conn.execute(
            sa.select(table.c.id).where(table.c.id == record_id, live, access.where(table))
        ).first()
        out["record"] = {
            "id": record_id,
            "exists": exists is not None,
            "in_scope": in_scope is not None,
        }
    return out


def explain_access(access: Access, *, field: str | None = None) -> dict[str, Any]:
    ex = access.explain
    by_effect: dict[str, list[str]] = {"allow": [], "deny": []}
    for ln in ex.action_lines:
        by_effect.setdefault(ln[3], []).append(_line(ln))
    if access.allowed:
        reason = "allowed by " + "; ".join(by_effect["allow"])
    elif by_effect["deny"]:
        reason = "denied by " + "; ".join(by_effect["deny"]) + " (deny wins)"
    else:
        reason = f"no line grants {access.action} on form {access.form} (default deny)"
    keys = [field] if field is not None else list(access.levels)
    fields = {
        k: {
            "level": access.level(k).label,
            "lines": [_line(ln) for ln in ex.field_lines.get(k, ())],
        }
        for k in keys
    }
    return {
        "form": access.form,
        "action": access.action,
        "allowed": access.allowed,
        "reason": reason,
        "subjects": list(ex.subjects),
        "action_lines": {k: v for k, v in by_effect.items() if v},
        "fields": fields,
        "scope": {
            "granted": list(ex.scopes),
            "lines": [_line(ln) for ln in ex.scope_lines],
            "condition": describe(access.condition),
        },
        "restrictions": [
            {
                "name": r.name,
                "applied": r.applied,
                "exemption_lines": [_line(ln) for ln in r.lines],
            }
            for r in ex.restrictions
        ],
        "problems": list(ex.problems),
    }


def format_explanation(data: dict[str, Any]) -> str:
    """Plain text for a terminal or a log."""
    lines = [
        f"{data['action']} on {data['form']}: {'ALLOWED' if data['allowed'] else 'DENIED'}",
        f"  {data['reason']}",
        f"  as: {', '.join(data['subjects'])}",
        f"  scope: {data['scope']['condition']} (granted: {', '.join(data['scope']['granted'])})",
    ]
    for r in data["restrictions"]:
        state = "applies" if r["applied"] else "lifted"
        lines.append(f"  restriction {r['name']}: {state}")
    for key, f in data["fields"].items():
        lines.append(f"  field {key}: {f['level']}")
    if "record" in data:
        rec = data["record"]
        lines.append(f"  record {rec['id']}: {'in scope' if rec['in_scope'] else 'NOT in scope'}")
    lines.extend(f"  problem: {p}" for p in data["problems"])
    return "\n".join(lines)
