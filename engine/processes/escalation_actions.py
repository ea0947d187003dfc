"""Carrying out an ``escalation`` step of an overdue task (see :mod:`engine.processes.escalation`).

Runs in the ``process.escalate`` job's transaction, with the instance row
locked by the caller. Every step writes an ``escalate`` history entry by
the system (no actor) saying what it did (``data.action``) and marks the
work item escalated (``escalated_at``), which the inbox shows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from SpiffWorkflow.util.task import TaskState

from engine.processes.approval_tables import delegation_table
from engine.processes.approvals import Approvals
from engine.processes.assignment import scope_department, scoped_holders
from engine.processes.bpmn import ParsedBpmn, property_names
from engine.processes.errors import ProcessStateError
from engine.processes.escalation import escalation_steps
from engine.processes.instances import task_by_id
from engine.processes.state import load
from engine.processes.system_actor import SYSTEM
from engine.processes.tables import candidate_table, work_item_table
from engine.processes.timers import escalate

# How far up the department tree a head is looked for past the assignee.
MAX_LEVELS = 16
Refs = list[tuple[str, str]]


def mark_escalated(conn: sa.Connection, item_id: int, now: dt.datetime) -> None:
    w = work_item_table
    conn.execute(
        sa.update(w).where(w.c.id == item_id, w.c.escalated_at.is_(None)).values(escalated_at=now)
    )


def run_step(p: Approvals, instance: Any, item: Any, parsed: ParsedBpmn, index: int) -> None:
    """Step ``index`` of the task's ``escalation``; nothing if the property changed shape."""
    element = parsed.elements.get(item.element_id)
    steps = escalation_steps(element.properties) if element is not None else None
    if not steps or index >= len(steps):  # pragma: no cover - versions never change
        return
    action = steps[index].action
    if action == "return":
        _return(p, instance, item, parsed)
        return
    conn = p.conn
    data = workflow_data(instance.state)
    record: dict[str, Any] = {"action": action}
    if action == "notify":
        record["assignee"] = item.assignee_id
    elif action == "candidates":
        record["roles"] = escalate(conn, item, parsed, data, instance.started_by)
    elif action == "head":
        refs = heads(conn, item, parsed, instance.started_by)
        _add_candidates(conn, item.id, refs)
        record["to"] = _labels(refs)
    elif action == "reassign":
        if _delegated(conn, item.id):
            record["refused"] = "the task is delegated; it stays with the delegate"
        else:
            refs = heads(conn, item, parsed, instance.started_by)
            record |= {"from": item.assignee_id, "to": _labels(refs)}
            _reassign(p, item, refs)
    mark_escalated(conn, item.id, p.ctx.clock())
    p._history(instance.id, None, "escalate", item.element_id, item.id, data=record)


def heads(conn: sa.Connection, item: Any, parsed: ParsedBpmn, initiator: int | None) -> Refs:
    """The head(s) above the task's people: the nearest ``escalateTo`` holders, not the assignee.

    The departments are the assignee's primary one; unclaimed, the candidate
    users' and departments'; failing those, the initiator's. With no holder
    on the way up, the ``escalateTo`` roles themselves (as ``candidateScope`` does).
    """
    element = parsed.elements[item.element_id]
    roles = property_names(element.properties.get("escalateTo", ""))
    found: set[int] = set()
    for dept in _departments(conn, item, initiator):
        found |= _nearest_holders(conn, roles, dept, item.assignee_id)
    if found:
        return [("user", str(u)) for u in sorted(found)]
    return [("role", r) for r in roles]


def _nearest_holders(
    conn: sa.Connection, roles: list[str], dept: int, exclude: int | None
) -> set[int]:
    for levels in range(MAX_LEVELS):
        holders = scoped_holders(conn, roles, dept, levels)
        if not holders:
            return set()
        others = set(holders) - {exclude}
        if others:
            return others
    return set()  # pragma: no cover - a tree this deep


def _departments(conn: sa.Connection, item: Any, initiator: int | None) -> list[int]:
    people = [item.assignee_id] if item.assignee_id is not None else []
    depts: list[int] = []
    if not people:
        c = candidate_table
        rows = conn.execute(sa.select(c.c.kind, c.c.ref).where(c.c.work_item_id == item.id))
        for kind, ref in rows:
            if kind == "user":
                people.append(int(ref))
            elif kind == "dept":
                depts.append(int(ref))
    if not people and not depts and initiator is not None:
        people.append(initiator)
    for user in people:
        # A user's primary department: what candidateScope "initiator" starts from.
        dept, _ = scope_department(conn, "initiator", item.element_id, {}, user)
        if dept is not None:
            depts.append(dept)
    return sorted(set(depts))


def _add_candidates(conn: sa.Connection, item_id: int, refs: Refs) -> None:
    c = candidate_table
    have = {
        (r.kind, r.ref)
        for r in conn.execute(sa.select(c.c.kind, c.c.ref).where(c.c.work_item_id == item_id))
    }
    new = [r for r in refs if r not in have]
    if new:
        conn.execute(sa.insert(c), [{"work_item_id": item_id, "kind": k, "ref": r} for k, r in new])


def _reassign(p: Approvals, item: Any, refs: Refs) -> None:
    """The task is theirs now: one person has it, several may claim it."""
    c = candidate_table
    p.conn.execute(sa.delete(c).where(c.c.work_item_id == item.id))
    _add_candidates(p.conn, item.id, refs)
    single = refs[0][1] if len(refs) == 1 and refs[0][0] == "user" else None
    p._assign(item, int(single) if single is not None else None)


def _delegated(conn: sa.Connection, item_id: int) -> bool:
    d = delegation_table
    state = conn.execute(sa.select(d.c.state).where(d.c.work_item_id == item_id)).scalar()
    return state == "pending"


def _return(p: Approvals, instance: Any, item: Any, parsed: ParsedBpmn) -> None:
    """Back to the step before the task, as a return (退回) by the system would."""
    workflow = load(instance.state, parsed, p.ctx.script_engine)
    previous = previous_step(task_by_id(workflow, item.task_id))
    record: dict[str, Any] = {"action": "return", "to": previous}
    if previous is None:
        record["refused"] = "there is no earlier step to return to"
    else:
        try:
            with p.conn.begin_nested():
                p.return_to(
                    item.id,
                    actor=SYSTEM,
                    to_element=previous,
                    comment="Overdue: returned automatically (escalation).",
                )
        except ProcessStateError as exc:  # delegated, a signer's, another branch
            record["refused"] = exc.message
    p._history(instance.id, None, "escalate", item.element_id, item.id, data=record)


def previous_step(task: Any) -> str | None:
    """The user task done last on the way to ``task``: what a return goes back to."""
    node = task.parent if task is not None else None
    while node is not None:
        if node.task_spec.manual and node.has_state(TaskState.COMPLETED):
            return str(node.task_spec.bpmn_id)
        node = node.parent
    return None


def _labels(refs: Refs) -> list[str]:
    return [f"{kind}:{ref}" for kind, ref in refs]


def workflow_data(state: Any) -> dict[str, Any]:
    """The instance's process-level data (``record`` etc.) without rebuilding it."""
    data = state.get("data", {}) if isinstance(state, dict) else {}
    return data if isinstance(data, dict) else {}
