"""Publishing a form definition: plan, check, apply, record the version."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from engine.catalog import PublishedForm, get_published, published_keys
from engine.forms.definition import FormDefinition
from engine.publish.apply import apply_plan
from engine.publish.checks import find_blockers, find_name_clashes
from engine.publish.plan import Plan, make_plan
from engine.system import form_table, form_version_table


@dataclass(frozen=True)
class PublishResult:
    form_key: str
    version: int
    plan: Plan
    changed: bool


def plan_publish(conn: sa.Connection, definition: FormDefinition) -> Plan:
    """The plan for publishing ``definition``, with every refusal filled in.

    Read-only: safe to call for a preview. Raises
    :class:`~engine.errors.PlanRefusedError` if the plan cannot be applied.
    """
    return _plan(conn, definition, get_published(conn, definition.key))


def _unchanged(current: PublishedForm | None, definition: FormDefinition) -> bool:
    return current is not None and current.definition.document == definition.document


def _plan(conn: sa.Connection, definition: FormDefinition, current: PublishedForm | None) -> Plan:
    if current is not None and _unchanged(current, definition):
        # Its link targets were published when it was; forms are never unpublished.
        return make_plan(
            definition,
            current=current.definition,
            live=current.layout,
            published_forms=definition.link_targets(),
        )
    plan = make_plan(
        definition,
        current=current.definition if current else None,
        live=current.layout if current else None,
        published_forms=published_keys(conn),
    )
    if current is not None:
        plan.refusals.extend(find_blockers(conn, plan, current.layout))
    plan.refusals.extend(find_name_clashes(conn, plan))
    plan.refuse_if_needed()
    return plan


def publish(
    conn: sa.Connection,
    definition: FormDefinition,
    *,
    actor_id: int | None = None,
    now: dt.datetime | None = None,
) -> PublishResult:
    """Publish ``definition`` as the form's next version, in the caller's transaction.

    Publishing a document identical to the current version is a no-op.
    """
    now = now or dt.datetime.now(dt.UTC)
    current = get_published(conn, definition.key, lock=True)
    plan = _plan(conn, definition, current)
    if current is not None and _unchanged(current, definition):
        return PublishResult(definition.key, current.version, plan, changed=False)
    apply_plan(conn, plan)
    version = 1 if current is None else current.version + 1
    values = {
        "label": definition.label[:200],
        "current_version": version,
        "layout": plan.layout.as_dict(),
        "updated_at": now,
    }
    if current is None:
        conn.execute(
            sa.insert(form_table).values(
                key=definition.key, table_name=definition.table_name, **values
            )
        )
    else:
        conn.execute(
            sa.update(form_table).where(form_table.c.key == definition.key).values(**values)
        )
    conn.execute(
        sa.insert(form_version_table).values(
            form_key=definition.key,
            version=version,
            definition=dict(definition.document),
            plan=plan.as_dict(),
            published_at=now,
            published_by=actor_id,
        )
    )
    return PublishResult(definition.key, version, plan, changed=True)
