"""``formflow role``, ``scope`` and ``restriction``: the policy from the command line.

The same operations as ``/api/v1/admin`` (:mod:`permissions.admin`): the same
checks, audit trail and policy-version bumps, one transaction a command,
audited with no actor (the system). Grants use roles.json's vocabulary:
``formflow role grant teller customer read --field '*=read' --cap
id_number=mask --scope read=dept_tree``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import click

from engine.errors import ErrorDetail
from permissions import admin, org
from permissions.admin_queries import list_conditions, role_grants
from permissions.conditions import PolicyError
from runtime.auth.service import find_user_id
from runtime.cli import CliState, cli, pass_state
from runtime.cli_admin import SYSTEM, echo_table, to_json, utcnow

# --- roles ----------------------------------------------------------------------------


@cli.group()
def role() -> None:
    """The role catalogue, who holds which role, inheritance and grants."""


@role.command("list")
@pass_state
def role_list(state: CliState) -> None:
    with state.transaction(commit=False) as conn:
        roles = org.list_roles(conn)
    rows = [[r.key, r.name, r.description or ""] for r in roles]
    echo_table(["KEY", "NAME", "DESCRIPTION"], rows, "No roles yet.")


@role.command("create")
@click.argument("key")
@click.argument("name")
@click.option("--description", metavar="TEXT")
@pass_state
def role_create(state: CliState, key: str, name: str, description: str | None) -> None:
    with state.transaction() as conn:
        org.create_role(
            conn, key=key, name=name, description=description, actor_id=SYSTEM, now=utcnow()
        )
    click.echo(f"Created role {key!r}.")


@role.command("update")
@click.argument("key")
@click.option("--name", metavar="TEXT")
@click.option("--description", metavar="TEXT", help="'' clears it.")
@pass_state
def role_update(state: CliState, key: str, name: str | None, description: str | None) -> None:
    with state.transaction() as conn:
        admin.require_role(conn, key, "/key")
        current = next(r for r in org.list_roles(conn) if r.key == key)
        org.update_role(
            conn,
            key=key,
            name=current.name if name is None else name,
            description=current.description if description is None else (description or None),
            actor_id=SYSTEM,
            now=utcnow(),
        )
    click.echo(f"Updated role {key!r}.")


@role.command("delete")
@click.argument("key")
@pass_state
def role_delete(state: CliState, key: str) -> None:
    """Delete KEY with every grant, inheritance and assignment that names it."""
    with state.transaction() as conn:
        lines = admin.delete_role(conn, key=key, actor_id=SYSTEM, now=utcnow())
    click.echo(f"Deleted role {key!r} and {lines} policy line(s).")


@role.command("assign")
@click.argument("username")
@click.argument("key")
@pass_state
def role_assign(state: CliState, username: str, key: str) -> None:
    """Give USERNAME the role KEY."""
    with state.transaction() as conn:
        user_id = find_user_id(conn, username)
        added = admin.assign_role(conn, user_id=user_id, role=key, actor_id=SYSTEM, now=utcnow())
    click.echo(f"{username} {'now holds' if added else 'already held'} role {key!r}.")


@role.command("unassign")
@click.argument("username")
@click.argument("key")
@pass_state
def role_unassign(state: CliState, username: str, key: str) -> None:
    with state.transaction() as conn:
        user_id = find_user_id(conn, username)
        admin.unassign_role(conn, user_id=user_id, role=key, actor_id=SYSTEM, now=utcnow())
    click.echo(f"{username} no longer holds role {key!r}.")


@role.command("inherit")
@click.argument("key")
@click.argument("parent")
@pass_state
def role_inherit(state: CliState, key: str, parent: str) -> None:
    """Let role KEY inherit every grant and deny of role PARENT."""
    with state.transaction() as conn:
        admin.add_parent(conn, role=key, parent=parent, actor_id=SYSTEM, now=utcnow())
    click.echo(f"Role {key!r} inherits from {parent!r}.")


@role.command("uninherit")
@click.argument("key")
@click.argument("parent")
@pass_state
def role_uninherit(state: CliState, key: str, parent: str) -> None:
    with state.transaction() as conn:
        admin.remove_parent(conn, role=key, parent=parent, actor_id=SYSTEM, now=utcnow())
    click.echo(f"Role {key!r} no longer inherits from {parent!r}.")


@role.command("show")
@click.argument("key")
@pass_state
def role_show(state: CliState, key: str) -> None:
    """Print KEY's grants as JSON, in roles.json's vocabulary."""
    with state.transaction(commit=False) as conn:
        found = role_grants(conn, key)
    document = {"key": found.key, "inherits": found.inherits, "grants": found.grants}
    click.echo(json.dumps(document, ensure_ascii=False, indent=2))
    for line in found.other_lines:
        click.echo(f"also: {line}")


def _pairs(values: Sequence[str], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        name, eq, level = value.partition("=")
        if not eq or not name or not level:
            raise click.BadParameter(f"{value!r}: expected NAME=VALUE", param_hint=option)
        out[name] = level
    return out


def _grant_options(command: Any) -> Any:
    decorators: list[Callable[[Any], Any]] = [
        click.argument("key"),
        click.argument("form"),
        click.argument("actions", nargs=-1),
        click.option("--deny", multiple=True, metavar="ACTION", help="Deny an action."),
        click.option("--field", multiple=True, metavar="FIELD=LEVEL", help="hidden..write."),
        click.option("--cap", multiple=True, metavar="FIELD=LEVEL", help="At most LEVEL."),
        click.option("--scope", multiple=True, metavar="ACTION=SCOPE", help="Data scope."),
        pass_state,
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def _change_grants(
    state: CliState,
    *,
    key: str,
    form: str,
    actions: Sequence[str],
    deny: Sequence[str],
    field: Sequence[str],
    cap: Sequence[str],
    scope: Sequence[str],
    remove: bool,
) -> None:
    grant: dict[str, Any] = {
        "actions": list(actions),
        "deny": list(deny),
        "fields": _pairs(field, "--field"),
        "field_caps": _pairs(cap, "--cap"),
        "scopes": {
            action: [v.partition("=")[2] for v in scope if v.partition("=")[0] == action]
            for action in _pairs(scope, "--scope")
        },
    }
    with state.transaction() as conn:
        changed = admin.change_grants(
            conn, role=key, form=form, grant=grant, remove=remove, actor_id=SYSTEM, now=utcnow()
        )
    verb = "removed" if remove else "added"
    for line in changed:
        click.echo(f"{verb}  {admin.format_line(line)}")
    click.echo(f"{len(changed)} line(s) {verb}.")


@role.command("grant")
@_grant_options
def role_grant(state: CliState, key: str, form: str, actions: tuple[str, ...], **kw: Any) -> None:
    """Let role KEY do ACTIONS on FORM (a form key or *), with fields, caps and scopes.

    e.g. `formflow role grant teller customer read update --field '*=read'
    --cap id_number=mask --scope read=dept_tree`
    """
    _change_grants(state, key=key, form=form, actions=actions, remove=False, **kw)


@role.command("revoke")
@_grant_options
def role_revoke(state: CliState, key: str, form: str, actions: tuple[str, ...], **kw: Any) -> None:
    """Remove the lines `role grant` with the same arguments would add."""
    _change_grants(state, key=key, form=form, actions=actions, remove=True, **kw)


# --- named scopes and restrictions ----------------------------------------------------


def _condition(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise PolicyError(
            "The condition is not JSON.", [ErrorDetail("/condition", str(exc))]
        ) from None


@cli.group()
def scope() -> None:
    """Named data scopes: conditions over a form's fields that roles may be granted."""


@scope.command("list")
@click.option("--form", metavar="KEY")
@pass_state
def scope_list(state: CliState, form: str | None) -> None:
    with state.transaction(commit=False) as conn:
        found = list_conditions(conn, "scope", form=form)
    rows = [[c.form, c.name, to_json(c.condition)] for c in found]
    echo_table(["FORM", "NAME", "CONDITION"], rows, "No named scopes.")


@scope.command("set")
@click.argument("form")
@click.argument("name")
@click.argument("condition")
@pass_state
def scope_set(state: CliState, form: str, name: str, condition: str) -> None:
    """Create or replace scope NAME of FORM; CONDITION is JSON.

    e.g. `formflow scope set customer mass '{"field": "tier", "op": "in", "value": ["mass"]}'`
    """
    with state.transaction() as conn:
        admin.define_scope(
            conn,
            form=form,
            name=name,
            condition=_condition(condition),
            actor_id=SYSTEM,
            now=utcnow(),
        )
    click.echo(f"Scope {name!r} of {form!r} saved.")


@scope.command("delete")
@click.argument("form")
@click.argument("name")
@pass_state
def scope_delete(state: CliState, form: str, name: str) -> None:
    with state.transaction() as conn:
        admin.drop_scope(conn, form=form, name=name, actor_id=SYSTEM, now=utcnow())
    click.echo(f"Scope {name!r} of {form!r} deleted.")


@cli.group()
def restriction() -> None:
    """Global restrictions: conditions every record must meet for anyone not exempt."""


@restriction.command("list")
@click.option("--form", metavar="KEY")
@pass_state
def restriction_list(state: CliState, form: str | None) -> None:
    with state.transaction(commit=False) as conn:
        found = list_conditions(conn, "restrict", form=form)
    rows = [[c.form, c.name, to_json(c.condition), ", ".join(c.exempt)] for c in found]
    echo_table(["FORM", "NAME", "CONDITION", "EXEMPT"], rows, "No restrictions.")


@restriction.command("set")
@click.argument("form")
@click.argument("name")
@click.argument("condition")
@click.option("--exempt", multiple=True, metavar="ROLE", help="Exempt roles (replaces the list).")
@pass_state
def restriction_set(
    state: CliState, form: str, name: str, condition: str, exempt: tuple[str, ...]
) -> None:
    """Create or replace restriction NAME of FORM; CONDITION is JSON."""
    with state.transaction() as conn:
        admin.define_restriction(
            conn,
            form=form,
            name=name,
            condition=_condition(condition),
            exempt=list(exempt) if exempt else None,
            actor_id=SYSTEM,
            now=utcnow(),
        )
    click.echo(f"Restriction {name!r} of {form!r} saved.")


@restriction.command("delete")
@click.argument("form")
@click.argument("name")
@pass_state
def restriction_delete(state: CliState, form: str, name: str) -> None:
    with state.transaction() as conn:
        admin.drop_restriction(conn, form=form, name=name, actor_id=SYSTEM, now=utcnow())
    click.echo(f"Restriction {name!r} of {form!r} deleted.")
