"""``formflow`` commands that administer the organisation and the policy.

The same operations as ``/api/v1/admin`` (:mod:`permissions.admin`,
:mod:`permissions.org`, :mod:`runtime.auth.users`), so the same checks, the
same audit trail and the same policy-version bumps; each command is one
transaction. Changes made here are audited with no actor (``actor_id``
NULL): the system, as for ``app import``. Users are named by username.

Roles, grants, scopes and restrictions are in :mod:`runtime.cli_policy`.
Both are registered on :data:`runtime.cli.cli` by importing them (the last
lines of runtime/cli.py).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import click

from permissions import org
from permissions.admin_queries import list_audit, user_role_keys
from runtime.auth.service import find_user_id
from runtime.auth.users import update_user
from runtime.cli import CliState, _table, cli, pass_state, user

SYSTEM: int | None = None  # the actor of changes made from the command line


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[str]], empty: str) -> None:
    if not rows:
        click.echo(empty)
        return
    for line in _table(headers, rows):
        click.echo(line)


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


# --- departments ----------------------------------------------------------------------


@cli.group()
def dept() -> None:
    """The department tree: list, create, rename, move, delete."""


@dept.command("list")
@pass_state
def dept_list(state: CliState) -> None:
    """Print the tree, each department under its parent."""
    with state.transaction(commit=False) as conn:
        departments = org.list_departments(conn)
    depth: dict[str, int] = {}
    rows = []
    for d in departments:
        depth[d.code] = 0 if d.parent_code is None else depth.get(d.parent_code, -1) + 1
        rows.append(["  " * depth[d.code] + d.code, d.name, d.parent_code or ""])
    echo_table(["CODE", "NAME", "PARENT"], rows, "No departments yet.")


@dept.command("create")
@click.argument("code")
@click.argument("name")
@click.option("--parent", metavar="CODE", help="The parent department (default: a root).")
@pass_state
def dept_create(state: CliState, code: str, name: str, parent: str | None) -> None:
    """Add department CODE called NAME."""
    with state.transaction() as conn:
        org.create_department(
            conn, code=code, name=name, parent_code=parent, actor_id=SYSTEM, now=utcnow()
        )
    click.echo(f"Created department {code!r}" + (f" under {parent!r}." if parent else "."))


@dept.command("rename")
@click.argument("code")
@click.argument("name")
@pass_state
def dept_rename(state: CliState, code: str, name: str) -> None:
    with state.transaction() as conn:
        org.rename_department(conn, code=code, name=name, actor_id=SYSTEM, now=utcnow())
    click.echo(f"Department {code!r} is now called {name!r}.")


@dept.command("move")
@click.argument("code")
@click.option("--parent", metavar="CODE", help="The new parent.")
@click.option("--root", is_flag=True, help="Make it a root department.")
@pass_state
def dept_move(state: CliState, code: str, parent: str | None, root: bool) -> None:
    """Move CODE, with everything below it, under --parent (or to the top with --root)."""
    if (parent is None) == (not root):
        raise click.UsageError("Give exactly one of --parent CODE and --root.")
    with state.transaction() as conn:
        org.move_department(conn, code=code, new_parent_code=parent, actor_id=SYSTEM, now=utcnow())
    click.echo(f"Department {code!r} is now " + (f"under {parent!r}." if parent else "a root."))


@dept.command("delete")
@click.argument("code")
@pass_state
def dept_delete(state: CliState, code: str) -> None:
    """Delete CODE (refused while it has sub-departments, members or records)."""
    with state.transaction() as conn:
        org.delete_department(conn, code=code, actor_id=SYSTEM, now=utcnow())
    click.echo(f"Deleted department {code!r}.")


# --- users: memberships and flags ------------------------------------------------------


@user.command("add-to-dept")
@click.argument("username")
@click.argument("department")
@click.option("--primary", is_flag=True, help="Make it the user's primary department.")
@pass_state
def user_add_to_dept(state: CliState, username: str, department: str, primary: bool) -> None:
    """Make USERNAME a member of DEPARTMENT."""
    with state.transaction() as conn:
        org.add_member(
            conn,
            user_id=find_user_id(conn, username),
            dept_code=department,
            primary=primary,
            actor_id=SYSTEM,
            now=utcnow(),
        )
    click.echo(f"{username} is a member of {department!r}{' (primary)' if primary else ''}.")


@user.command("remove-from-dept")
@click.argument("username")
@click.argument("department")
@pass_state
def user_remove_from_dept(state: CliState, username: str, department: str) -> None:
    """Take USERNAME out of DEPARTMENT."""
    with state.transaction() as conn:
        org.remove_member(
            conn,
            user_id=find_user_id(conn, username),
            dept_code=department,
            actor_id=SYSTEM,
            now=utcnow(),
        )
    click.echo(f"{username} is no longer a member of {department!r}.")


@user.command("set-primary-dept")
@click.argument("username")
@click.argument("department")
@pass_state
def user_set_primary(state: CliState, username: str, department: str) -> None:
    """Make DEPARTMENT (one of the user's) USERNAME's primary department."""
    with state.transaction() as conn:
        org.set_primary_department(
            conn,
            user_id=find_user_id(conn, username),
            dept_code=department,
            actor_id=SYSTEM,
            now=utcnow(),
        )
    click.echo(f"{department!r} is {username}'s primary department.")


@user.command("show")
@click.argument("username")
@pass_state
def user_show(state: CliState, username: str) -> None:
    """Print USERNAME's departments and roles."""
    with state.transaction(commit=False) as conn:
        user_id = find_user_id(conn, username)
        memberships = org.user_departments(conn, user_id)
        roles = user_role_keys(conn, user_id)
    departments = [m.code + (" (primary)" if m.is_primary else "") for m in memberships]
    click.echo(f"user:        {username} (id {user_id})")
    click.echo(f"departments: {', '.join(departments) or '-'}")
    click.echo(f"roles:       {', '.join(roles) or '-'}")


@user.command("update")
@click.argument("username")
@click.option("--display-name", metavar="TEXT")
@click.option("--active/--inactive", default=None, help="Whether the account may sign in.")
@click.option("--superuser/--no-superuser", default=None)
@pass_state
def user_update(
    state: CliState,
    username: str,
    display_name: str | None,
    active: bool | None,
    superuser: bool | None,
) -> None:
    """Change USERNAME's display name, whether it may sign in, or its superuser flag."""
    with state.transaction() as conn:
        info = update_user(
            conn,
            user_id=find_user_id(conn, username),
            display_name=display_name,
            is_active=active,
            is_superuser=superuser,
            actor_id=SYSTEM,
            now=utcnow(),
        )
    flags = [
        f for f, on in (("superuser", info.is_superuser), ("inactive", not info.is_active)) if on
    ]
    click.echo(
        f"{info.username}: {info.display_name}" + (f" ({', '.join(flags)})" if flags else "")
    )


# --- audit ----------------------------------------------------------------------------


@cli.group()
def audit() -> None:
    """The administration audit trail."""


@audit.command("list")
@click.option("--entity", help="user, department, membership, role or policy.")
@click.option("--key", help="The entity's key (user id, department code, role key, ...).")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
@pass_state
def audit_list(state: CliState, entity: str | None, key: str | None, limit: int) -> None:
    """Newest first: when, who (- for the system), what, before -> after."""
    with state.transaction(commit=False) as conn:
        entries = list_audit(conn, entity=entity, key=key, limit=limit)
    rows = [
        [
            e.at.strftime("%Y-%m-%d %H:%M:%S"),
            e.actor or "-",
            e.entity,
            e.key,
            e.action,
            f"{to_json(e.before)} -> {to_json(e.after)}",
        ]
        for e in entries
    ]
    echo_table(["AT (UTC)", "ACTOR", "ENTITY", "KEY", "ACTION", "CHANGE"], rows, "No entries.")
