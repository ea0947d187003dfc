"""The organisation: a department tree, memberships and the role catalogue.

Plain functions over a Connection. The caller owns the transaction: nothing
here commits. Every change writes an ``ff_admin_audit`` row (who, when, the
values before and after) and every change to departments or memberships
bumps the policy version (data scopes depend on both), in the caller's
transaction, so a rollback takes the change, its audit row and the bump.

The tree is stored twice. ``ff_department.parent_id`` is its shape;
``ff_department_closure`` holds every (ancestor, descendant, depth) pair,
each department paired with itself at depth 0, so that "department D and
below" is one indexed condition at any depth (:func:`dept_tree_condition`).
Changes to it are set-based: a new department gets its pairs from one
``INSERT … SELECT``; a move deletes the pairs that tied the subtree to its
old ancestors and inserts the cross product of the new ancestors with the
subtree, a fixed number of statements however large the subtree.

Tree and membership changes first lock the ``ff_policy_state`` row (``FOR
UPDATE`` on PostgreSQL; SQLite serialises writers anyway). Without it, two
concurrent moves could each pass the cycle check and together make a cycle.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from engine.errors import ErrorDetail, NotFoundError
from engine.system import (
    admin_audit_table,
    department_closure_table,
    department_table,
    policy_state_table,
    role_table,
    user_department_table,
    user_table,
)
from permissions.errors import AdministrationInputError, OrganisationConflictError

__all__ = [
    "Department",
    "Membership",
    "Role",
    "add_member",
    "bump_policy_version",
    "create_department",
    "create_role",
    "delete_department",
    "delete_role",
    "dept_tree_condition",
    "descendants",
    "list_departments",
    "list_roles",
    "move_department",
    "policy_version",
    "rebuild_closure",
    "remove_member",
    "rename_department",
    "set_primary_department",
    "update_role",
    "user_departments",
    "write_audit",
]

# Codes end up in URLs, imports and Casbin policy lines: keep them plain.
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# Role keys are Casbin subjects; lower case so "Teller" and "teller" cannot both exist.
_ROLE_KEY = re.compile(r"[a-z][a-z0-9_-]{0,63}")

_dept = department_table
_closure = department_closure_table
_member = user_department_table


@dataclass(frozen=True)
class Department:
    id: int
    code: str
    name: str
    parent_id: int | None
    parent_code: str | None


@dataclass(frozen=True)
class Membership:
    department_id: int
    code: str
    name: str
    is_primary: bool


@dataclass(frozen=True)
class Role:
    key: str
    name: str
    description: str | None
    created_at: dt.datetime


# --- the policy version ---------------------------------------------------------------


def bump_policy_version(conn: sa.Connection) -> int:
    """Mark every cached compiled access stale: the new version, in one statement."""
    p = policy_state_table
    version = conn.execute(
        sa.update(p).where(p.c.id == 1).values(version=p.c.version + 1).returning(p.c.version)
    ).scalar_one_or_none()
    if version is None:
        raise RuntimeError("ff_policy_state has no row; run `formflow db upgrade`")
    return int(version)


def policy_version(conn: sa.Connection) -> int:
    p = policy_state_table
    version = conn.execute(sa.select(p.c.version).where(p.c.id == 1)).scalar_one_or_none()
    if version is None:
        raise RuntimeError("ff_policy_state has no row; run `formflow db upgrade`")
    return int(version)


def _lock_organisation(conn: sa.Connection) -> None:
    p = policy_state_table
    conn.execute(sa.select(p.c.version).where(p.c.id == 1).with_for_update())


# --- reading the tree -----------------------------------------------------------------


DeptIds = Iterable[int] | sa.Select[Any]


def _ids(dept_ids: DeptIds) -> sa.Select[Any] | list[int]:
    return dept_ids if isinstance(dept_ids, sa.Select) else [int(i) for i in dept_ids]


def descendants(conn: sa.Connection | None, dept_ids: DeptIds) -> sa.Select[Any]:
    """The ids of ``dept_ids`` and of every department below them, as a SELECT.

    Nothing is executed (``conn`` is not used; it is accepted so callers read
    like the rest of this module): embed the SELECT in a larger query, or run
    it. ``dept_ids`` may itself be a SELECT of ids, e.g. a user's memberships.
    """
    c = _closure
    return sa.select(c.c.descendant_id).where(c.c.ancestor_id.in_(_ids(dept_ids))).distinct()


def dept_tree_condition(column: sa.ColumnElement[Any], dept_ids: DeptIds) -> sa.ColumnElement[bool]:
    """``column`` is one of ``dept_ids`` or a department below one of them.

    ``column IN (SELECT descendant_id FROM ff_department_closure WHERE
    ancestor_id IN (...))``: the closure table's primary key serves the
    subquery, whatever the depth of the tree. An empty ``dept_ids`` matches
    nothing; a NULL ``column`` never matches.
    """
    c = _closure
    # Never correlated: embedded in a query that itself reads the closure
    # table, the subquery must keep its own FROM.
    below = sa.select(c.c.descendant_id).where(c.c.ancestor_id.in_(_ids(dept_ids)))
    return column.in_(below.correlate(None))


def list_departments(conn: sa.Connection) -> list[Department]:
    """Every department, each parent before its children (then by code)."""
    parent = _dept.alias("parent")
    depth = (
        sa.select(sa.func.max(_closure.c.depth))
        .where(_closure.c.descendant_id == _dept.c.id)
        .scalar_subquery()
    )
    rows = conn.execute(
        sa.select(*_department_columns(parent))
        .outerjoin(parent, parent.c.id == _dept.c.parent_id)
        .order_by(depth, _dept.c.code)
    )
    return [_department(r) for r in rows]


def user_departments(conn: sa.Connection, user_id: int) -> list[Membership]:
    """The departments ``user_id`` belongs to, the primary one first."""
    m, d = _member, _dept
    rows = conn.execute(
        sa.select(d.c.id, d.c.code, d.c.name, m.c.is_primary)
        .join(d, d.c.id == m.c.department_id)
        .where(m.c.user_id == user_id)
        .order_by(m.c.is_primary.desc(), d.c.code)
    )
    return [Membership(int(r.id), r.code, r.name, bool(r.is_primary)) for r in rows]


def _department_columns(parent: sa.FromClause) -> list[sa.ColumnElement[Any]]:
    d = _dept
    return [d.c.id, d.c.code, d.c.name, d.c.parent_id, parent.c.code.label("parent_code")]


def _department(row: Any) -> Department:
    parent_id = None if row.parent_id is None else int(row.parent_id)
    return Department(int(row.id), row.code, row.name, parent_id, row.parent_code)


def _departments_by_code(conn: sa.Connection, codes: Sequence[str]) -> dict[str, Department]:
    parent = _dept.alias("parent")
    rows = conn.execute(
        sa.select(*_department_columns(parent))
        .outerjoin(parent, parent.c.id == _dept.c.parent_id)
        .where(_dept.c.code.in_(sorted(set(codes))))
    )
    return {r.code: _department(r) for r in rows}


def _get(found: dict[str, Department], code: str, pointer: str) -> Department:
    if code not in found:
        raise NotFoundError(
            f"There is no department {code!r}.", [ErrorDetail(pointer, "no such department")]
        )
    return found[code]


def _snapshot(d: Department) -> dict[str, Any]:
    return {"code": d.code, "name": d.name, "parent": d.parent_code}


# --- changing the tree ----------------------------------------------------------------


def _check_code(code: str, pointer: str, problems: list[ErrorDetail]) -> None:
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        problems.append(ErrorDetail(pointer, "a code is 1..64 letters, digits, '_', '.' or '-'"))


def _check_name(name: str, problems: list[ErrorDetail]) -> None:
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        problems.append(ErrorDetail("/name", "a name needs 1..200 characters"))


# entity_key, action, before, after
_AuditRow = tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]


def _audit(
    conn: sa.Connection,
    *,
    actor_id: int | None,
    now: dt.datetime,
    entity: str,
    rows: Sequence[_AuditRow],
) -> None:
    """One audit row per (entity_key, action, before, after), in one statement."""
    conn.execute(
        sa.insert(admin_audit_table),
        [
            {
                "actor_id": actor_id,
                "at": now,
                "entity": entity,
                "entity_key": key,
                "action": action,
                "before": before,
                "after": after,
            }
            for key, action, before, after in rows
        ],
    )


def write_audit(
    conn: sa.Connection,
    *,
    actor_id: int | None,
    now: dt.datetime,
    entity: str,
    rows: Sequence[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]],
) -> None:
    """The same trail for administration changes made outside this module (e.g. accounts)."""
    _audit(conn, actor_id=actor_id, now=now, entity=entity, rows=rows)


def create_department(
    conn: sa.Connection,
    *,
    code: str,
    name: str,
    parent_code: str | None,
    actor_id: int | None,
    now: dt.datetime,
) -> int:
    """Add a department (a root when ``parent_code`` is None); returns its id."""
    problems: list[ErrorDetail] = []
    _check_code(code, "/code", problems)
    _check_name(name, problems)
    if problems:
        raise AdministrationInputError("The department cannot be created.", problems)
    _lock_organisation(conn)
    found = _departments_by_code(conn, [code] if parent_code is None else [code, parent_code])
    if code in found:
        raise OrganisationConflictError(
            f"Department {code!r} already exists.", [ErrorDetail("/code", "already taken")]
        )
    parent = None if parent_code is None else _get(found, parent_code, "/parent")
    d = _dept
    dept_id = int(
        conn.execute(
            sa.insert(d)
            .values(code=code, name=name, parent_id=parent.id if parent else None)
            .returning(d.c.id)
        ).scalar_one()
    )
    _insert_closure_of_new(conn, dept_id)
    after = {"code": code, "name": name, "parent": parent_code}
    _audit(
        conn, actor_id=actor_id, now=now, entity="department", rows=[(code, "create", None, after)]
    )
    bump_policy_version(conn)
    return dept_id


def _insert_closure_of_new(conn: sa.Connection, dept_id: int) -> None:
    # The department with itself, and with each ancestor of its parent one
    # level further down. Both halves select typed columns, so the UNION
    # needs no casts of bound parameters on PostgreSQL.
    c, d = _closure, _dept
    itself = sa.select(d.c.id, d.c.id, sa.literal_column("0")).where(d.c.id == dept_id)
    above = (
        sa.select(c.c.ancestor_id, d.c.id, c.c.depth + 1)
        .join(d, d.c.parent_id == c.c.descendant_id)
        .where(d.c.id == dept_id)
    )
    conn.execute(
        sa.insert(c).from_select(
            ["ancestor_id", "descendant_id", "depth"], sa.union_all(itself, above)
        )
    )


def rename_department(
    conn: sa.Connection, *, code: str, name: str, actor_id: int | None, now: dt.datetime
) -> None:
    problems: list[ErrorDetail] = []
    _check_name(name, problems)
    if problems:
        raise AdministrationInputError("The department cannot be renamed.", problems)
    _lock_organisation(conn)
    dept = _get(_departments_by_code(conn, [code]), code, "/code")
    if dept.name == name:
        return
    conn.execute(sa.update(_dept).where(_dept.c.id == dept.id).values(name=name))
    before = _snapshot(dept)
    _audit(
        conn,
        actor_id=actor_id,
        now=now,
        entity="department",
        rows=[(code, "rename", before, {**before, "name": name})],
    )
    bump_policy_version(conn)


def move_department(
    conn: sa.Connection,
    *,
    code: str,
    new_parent_code: str | None,
    actor_id: int | None,
    now: dt.datetime,
) -> None:
    """Put ``code`` and everything below it under ``new_parent_code`` (None: a root).

    A fixed number of statements, whatever the size of the subtree: only the
    closure pairs that tie the subtree to its ancestors are rewritten; pairs
    inside the subtree and everywhere else stay as they are.
    """
    _lock_organisation(conn)
    codes = [code] if new_parent_code is None else [code, new_parent_code]
    found = _departments_by_code(conn, codes)
    dept = _get(found, code, "/code")
    parent = None if new_parent_code is None else _get(found, new_parent_code, "/parent")
    if parent is not None:
        c = _closure
        inside = conn.execute(
            sa.select(c.c.depth).where(c.c.ancestor_id == dept.id, c.c.descendant_id == parent.id)
        ).first()
        if inside is not None:
            where = "itself" if parent.id == dept.id else "a department below it"
            raise OrganisationConflictError(
                f"Department {code!r} cannot move under {where} ({parent.code!r}).",
                [ErrorDetail("/parent", "is the department or below it")],
            )
    if dept.parent_id == (parent.id if parent else None):
        return
    conn.execute(
        sa.update(_dept)
        .where(_dept.c.id == dept.id)
        .values(parent_id=parent.id if parent else None)
    )
    _rewrite_closure_of_subtree(conn, dept.id, parent.id if parent else None)
    _audit(
        conn,
        actor_id=actor_id,
        now=now,
        entity="department",
        rows=[(code, "move", _snapshot(dept), {**_snapshot(dept), "parent": new_parent_code})],
    )
    bump_policy_version(conn)


def _rewrite_closure_of_subtree(conn: sa.Connection, root_id: int, parent_id: int | None) -> None:
    c = _closure
    # Aliases: a subquery on the table a DELETE targets would otherwise be
    # correlated to it and lose its FROM.
    sub = c.alias("sub")
    subtree = sa.select(sub.c.descendant_id).where(sub.c.ancestor_id == root_id)
    # Detach: pairs of (outside ancestor, subtree member).
    conn.execute(
        sa.delete(c).where(c.c.descendant_id.in_(subtree), c.c.ancestor_id.not_in(subtree))
    )
    if parent_id is None:
        return
    # Attach: every ancestor of the new parent (itself included) with every
    # member of the subtree, one level deeper than the two distances add up to.
    above = c.alias("above")
    below = c.alias("below")
    conn.execute(
        sa.insert(c).from_select(
            ["ancestor_id", "descendant_id", "depth"],
            sa.select(above.c.ancestor_id, below.c.descendant_id, above.c.depth + below.c.depth + 1)
            .select_from(sa.join(above, below, sa.true()))
            .where(above.c.descendant_id == parent_id, below.c.ancestor_id == root_id),
        )
    )


def delete_department(
    conn: sa.Connection, *, code: str, actor_id: int | None, now: dt.datetime
) -> None:
    """Remove a department that has no sub-departments, members or records."""
    _lock_organisation(conn)
    dept = _get(_departments_by_code(conn, [code]), code, "/code")
    d, m = _dept, _member
    children = sa.select(sa.func.count()).where(d.c.parent_id == dept.id).scalar_subquery()
    members = sa.select(sa.func.count()).where(m.c.department_id == dept.id).scalar_subquery()
    counts = conn.execute(sa.select(children.label("children"), members.label("members"))).one()
    problems = []
    if counts.children:
        problems.append(ErrorDetail("/code", f"has {counts.children} sub-department(s)"))
    if counts.members:
        problems.append(ErrorDetail("/code", f"has {counts.members} member(s)"))
    if problems:
        raise OrganisationConflictError(
            f"Department {code!r} cannot be deleted while it is in use.", problems
        )
    try:
        # A savepoint: a record filed under the department makes the foreign
        # key refuse the DELETE, and PostgreSQL would refuse every later
        # statement of a transaction in which one failed.
        with conn.begin_nested():
            # Its only closure pairs are with its ancestors (it has no
            # children); the cascade would remove them too, but saying so
            # keeps this correct on a connection without foreign keys.
            conn.execute(sa.delete(_closure).where(_closure.c.descendant_id == dept.id))
            conn.execute(sa.delete(d).where(d.c.id == dept.id))
    except sa.exc.IntegrityError:
        raise OrganisationConflictError(
            f"Department {code!r} cannot be deleted: records are filed under it.",
            [ErrorDetail("/code", "records are filed under it; move them first")],
        ) from None
    _audit(
        conn,
        actor_id=actor_id,
        now=now,
        entity="department",
        rows=[(code, "delete", _snapshot(dept), None)],
    )
    bump_policy_version(conn)


def rebuild_closure(conn: sa.Connection, *, actor_id: int | None, now: dt.datetime) -> int:
    """Recompute the whole closure table from ``parent_id``; returns its row count.

    For departments written without these functions (a bulk import, SQL by
    hand). A fixed number of statements whatever the size of the tree.
    """
    _lock_organisation(conn)
    c, d = _closure, _dept
    conn.execute(sa.delete(c))
    tree = sa.select(
        d.c.id.label("ancestor_id"),
        d.c.id.label("descendant_id"),
        sa.literal_column("0").label("depth"),
    ).cte("tree", recursive=True)
    child = d.alias("child")
    tree = tree.union_all(
        sa.select(tree.c.ancestor_id, child.c.id, tree.c.depth + 1).join(
            child, child.c.parent_id == tree.c.descendant_id
        )
    )
    conn.execute(
        sa.insert(c).from_select(
            ["ancestor_id", "descendant_id", "depth"],
            sa.select(tree.c.ancestor_id, tree.c.descendant_id, tree.c.depth),
        )
    )
    # Counted, not the INSERT's rowcount: sqlite3 reports -1 for a statement
    # that starts with WITH.
    rows = int(conn.execute(sa.select(sa.func.count()).select_from(c)).scalar_one())
    _audit(
        conn,
        actor_id=actor_id,
        now=now,
        entity="department",
        rows=[("*", "rebuild", None, {"closure_rows": rows})],
    )
    bump_policy_version(conn)
    return rows


# --- memberships ----------------------------------------------------------------------


def _membership_key(user_id: int, code: str) -> str:
    return f"{user_id}:{code}"


def _membership(user_id: int, code: str, is_primary: bool) -> dict[str, Any]:
    return {"user_id": user_id, "department": code, "is_primary": is_primary}


def _demote_primary(conn: sa.Connection, user_id: int) -> list[int]:
    m = _member
    rows = conn.execute(
        sa.update(m)
        .where(m.c.user_id == user_id, m.c.is_primary)
        .values(is_primary=False)
        .returning(m.c.department_id)
    )
    return [int(r.department_id) for r in rows]


def _demotions(conn: sa.Connection, user_id: int) -> list[_AuditRow]:
    """Clear the user's primary membership; the audit rows of what changed."""
    demoted = _codes(conn, _demote_primary(conn, user_id)).values()
    return [
        (
            _membership_key(user_id, code),
            "update",
            _membership(user_id, code, True),
            _membership(user_id, code, False),
        )
        for code in demoted
    ]


def _codes(conn: sa.Connection, dept_ids: Sequence[int]) -> dict[int, str]:
    if not dept_ids:
        return {}
    rows = conn.execute(sa.select(_dept.c.id, _dept.c.code).where(_dept.c.id.in_(dept_ids)))
    return {int(r.id): r.code for r in rows}


def add_member(
    conn: sa.Connection,
    *,
    user_id: int,
    dept_code: str,
    primary: bool = False,
    actor_id: int | None,
    now: dt.datetime,
) -> None:
    """Put a user in a department; ``primary`` makes it their primary one."""
    _lock_organisation(conn)
    dept = _get(_departments_by_code(conn, [dept_code]), dept_code, "/department")
    m, u = _member, user_table
    row = conn.execute(
        sa.select(u.c.id, m.c.user_id.label("member"))
        .outerjoin(m, sa.and_(m.c.user_id == u.c.id, m.c.department_id == dept.id))
        .where(u.c.id == user_id)
    ).one_or_none()
    if row is None:
        raise NotFoundError(
            f"There is no user {user_id}.", [ErrorDetail("/user_id", "no such user")]
        )
    if row.member is not None:
        raise OrganisationConflictError(
            f"User {user_id} is already a member of {dept_code!r}.",
            [ErrorDetail("/department", "already a member")],
        )
    audit: list[_AuditRow] = []
    if primary:
        audit.extend(_demotions(conn, user_id))
    conn.execute(sa.insert(m).values(user_id=user_id, department_id=dept.id, is_primary=primary))
    audit.append(
        (
            _membership_key(user_id, dept_code),
            "create",
            None,
            _membership(user_id, dept_code, primary),
        )
    )
    _audit(conn, actor_id=actor_id, now=now, entity="membership", rows=audit)
    bump_policy_version(conn)


def set_primary_department(
    conn: sa.Connection, *, user_id: int, dept_code: str, actor_id: int | None, now: dt.datetime
) -> None:
    """Make an existing membership the user's primary one."""
    _lock_organisation(conn)
    dept = _get(_departments_by_code(conn, [dept_code]), dept_code, "/department")
    m = _member
    current = conn.execute(
        sa.select(m.c.is_primary).where(m.c.user_id == user_id, m.c.department_id == dept.id)
    ).scalar_one_or_none()
    if current is None:
        raise NotFoundError(
            f"User {user_id} is not a member of {dept_code!r}.",
            [ErrorDetail("/department", "not a member")],
        )
    if current:
        return
    audit = _demotions(conn, user_id)
    conn.execute(
        sa.update(m)
        .where(m.c.user_id == user_id, m.c.department_id == dept.id)
        .values(is_primary=True)
    )
    audit.append(
        (
            _membership_key(user_id, dept_code),
            "update",
            _membership(user_id, dept_code, False),
            _membership(user_id, dept_code, True),
        )
    )
    _audit(conn, actor_id=actor_id, now=now, entity="membership", rows=audit)
    bump_policy_version(conn)


def remove_member(
    conn: sa.Connection, *, user_id: int, dept_code: str, actor_id: int | None, now: dt.datetime
) -> None:
    _lock_organisation(conn)
    dept = _get(_departments_by_code(conn, [dept_code]), dept_code, "/department")
    m = _member
    was_primary = conn.execute(
        sa.delete(m)
        .where(m.c.user_id == user_id, m.c.department_id == dept.id)
        .returning(m.c.is_primary)
    ).scalar_one_or_none()
    if was_primary is None:
        raise NotFoundError(
            f"User {user_id} is not a member of {dept_code!r}.",
            [ErrorDetail("/department", "not a member")],
        )
    before = _membership(user_id, dept_code, bool(was_primary))
    key = _membership_key(user_id, dept_code)
    _audit(
        conn, actor_id=actor_id, now=now, entity="membership", rows=[(key, "delete", before, None)]
    )
    bump_policy_version(conn)


# --- the role catalogue ---------------------------------------------------------------
# Only keys and labels: who has a role, which roles a role includes and what
# a role may do are Casbin policy lines (ff_casbin_rule), kept by
# permissions' policy store.


def _check_role(key: str, name: str, description: str | None, message: str) -> None:
    problems: list[ErrorDetail] = []
    if not isinstance(key, str) or not _ROLE_KEY.fullmatch(key):
        problems.append(
            ErrorDetail(
                "/key", "a role key is 1..64 of a-z, 0-9, '_' or '-', starting with a letter"
            )
        )
    _check_name(name, problems)
    if description is not None and not isinstance(description, str):
        problems.append(ErrorDetail("/description", "a description is text"))
    if problems:
        raise AdministrationInputError(message, problems)


def _role_snapshot(role: Role) -> dict[str, Any]:
    return {"key": role.key, "name": role.name, "description": role.description}


def _find_role(conn: sa.Connection, key: str) -> Role:
    r = role_table
    row = conn.execute(
        sa.select(r.c.key, r.c.name, r.c.description, r.c.created_at).where(r.c.key == key)
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"There is no role {key!r}.", [ErrorDetail("/key", "no such role")])
    return Role(row.key, row.name, row.description, row.created_at)


def list_roles(conn: sa.Connection) -> list[Role]:
    r = role_table
    rows = conn.execute(
        sa.select(r.c.key, r.c.name, r.c.description, r.c.created_at).order_by(r.c.key)
    )
    return [Role(row.key, row.name, row.description, row.created_at) for row in rows]


def create_role(
    conn: sa.Connection,
    *,
    key: str,
    name: str,
    description: str | None = None,
    actor_id: int | None,
    now: dt.datetime,
) -> None:
    _check_role(key, name, description, "The role cannot be created.")
    r = role_table
    if conn.execute(sa.select(r.c.key).where(r.c.key == key)).first() is not None:
        raise OrganisationConflictError(
            f"Role {key!r} already exists.", [ErrorDetail("/key", "already taken")]
        )
    conn.execute(sa.insert(r).values(key=key, name=name, description=description, created_at=now))
    after = {"key": key, "name": name, "description": description}
    _audit(conn, actor_id=actor_id, now=now, entity="role", rows=[(key, "create", None, after)])


def update_role(
    conn: sa.Connection,
    *,
    key: str,
    name: str,
    description: str | None,
    actor_id: int | None,
    now: dt.datetime,
) -> None:
    """Replace a role's name and description (its key is its identity)."""
    _check_role(key, name, description, "The role cannot be changed.")
    role = _find_role(conn, key)
    if (role.name, role.description) == (name, description):
        return
    r = role_table
    conn.execute(sa.update(r).where(r.c.key == key).values(name=name, description=description))
    after = {"key": key, "name": name, "description": description}
    _audit(
        conn,
        actor_id=actor_id,
        now=now,
        entity="role",
        rows=[(key, "update", _role_snapshot(role), after)],
    )


def delete_role(conn: sa.Connection, *, key: str, actor_id: int | None, now: dt.datetime) -> None:
    """Remove a role from the catalogue.

    Its Casbin lines (members, inherited roles, grants) are the policy
    store's to remove; the policy version is bumped so no cached access
    outlives the role.
    """
    role = _find_role(conn, key)
    conn.execute(sa.delete(role_table).where(role_table.c.key == key))
    _audit(
        conn,
        actor_id=actor_id,
        now=now,
        entity="role",
        rows=[(key, "delete", _role_snapshot(role), None)],
    )
    bump_policy_version(conn)
