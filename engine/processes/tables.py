"""System tables of processes: definitions, instances, the work-item projection, history.

Owned by ``migrations/`` (revision 0005) and registered on
:data:`engine.system.metadata` like the other system tables.

* ``ff_process`` / ``ff_process_version``: every published BPMN file is kept;
  an instance runs on the version it started with.
* ``ff_process_instance``: the SpiffWorkflow state *without* its spec (the
  spec is parsed once per version and cached), and ``row_version``, the
  optimistic lock every command checks.
* ``ff_work_item`` (+ ``ff_work_item_candidate``): one row per user task
  that is or was ready — what inboxes query, so listing tasks never
  deserialises an instance.
* ``ff_process_history``: every step, actor, outcome, comment and the data
  submitted.
"""

from __future__ import annotations

import sqlalchemy as sa

from engine.forms.columns import BigIntId, UTCDateTime
from engine.system import metadata

KEY_LENGTH = 64
# Instance and work-item statuses, as stored.
RUNNING, COMPLETED = "running", "completed"
OPEN, DONE, CANCELLED = "open", "done", "cancelled"

process_table = sa.Table(
    "ff_process",
    metadata,
    sa.Column("key", sa.String(KEY_LENGTH), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("current_version", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

process_version_table = sa.Table(
    "ff_process_version",
    metadata,
    sa.Column(
        "process_key", sa.String(KEY_LENGTH), sa.ForeignKey("ff_process.key"), primary_key=True
    ),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("bpmn", sa.Text, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("published_at", UTCDateTime, nullable=False),
    sa.Column("published_by", sa.BigInteger, nullable=True),
)

instance_table = sa.Table(
    "ff_process_instance",
    metadata,
    sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
    sa.Column("process_key", sa.String(KEY_LENGTH), nullable=False),
    sa.Column("process_version", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("state", sa.JSON, nullable=False),
    sa.Column("record_form", sa.String(41), nullable=True),
    sa.Column("record_id", sa.BigInteger, nullable=True),
    sa.Column("started_by", sa.BigInteger, nullable=True),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("ended_at", UTCDateTime, nullable=True),
    sa.Column("row_version", sa.Integer, nullable=False),
    sa.ForeignKeyConstraint(
        ["process_key", "process_version"],
        ["ff_process_version.process_key", "ff_process_version.version"],
    ),
    sa.Index("ix_ff_process_instance_started_by", "started_by", "id"),
    sa.Index("ix_ff_process_instance_record", "record_form", "record_id"),
)

work_item_table = sa.Table(
    "ff_work_item",
    metadata,
    sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
    sa.Column(
        "instance_id", sa.BigInteger, sa.ForeignKey("ff_process_instance.id"), nullable=False
    ),
    sa.Column("task_id", sa.String(36), nullable=False),  # SpiffWorkflow's task UUID
    sa.Column("element_id", sa.String(255), nullable=False),  # the BPMN element id
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("form_key", sa.String(41), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),  # open | done | cancelled
    sa.Column("assignee_id", sa.BigInteger, nullable=True),
    sa.Column("due_at", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("completed_at", UTCDateTime, nullable=True),
    sa.Column("completed_by", sa.BigInteger, nullable=True),
    sa.Column("outcome", sa.String(32), nullable=True),
    # When an overdue task was first escalated (migration 0007); NULL: never.
    sa.Column("escalated_at", UTCDateTime, nullable=True),
    sa.Index("ix_ff_work_item_assignee", "assignee_id", "status"),
    sa.Index("ix_ff_work_item_instance", "instance_id", "status"),
    sa.Index("ix_ff_work_item_completed_by", "completed_by", "id"),
)

# Who may claim an open work item: users, roles or departments (``kind``).
candidate_table = sa.Table(
    "ff_work_item_candidate",
    metadata,
    sa.Column("work_item_id", sa.BigInteger, sa.ForeignKey("ff_work_item.id"), primary_key=True),
    sa.Column("kind", sa.String(8), primary_key=True),  # user | role | dept
    sa.Column("ref", sa.String(64), primary_key=True),
    sa.Index("ix_ff_work_item_candidate_ref", "kind", "ref"),
)

history_table = sa.Table(
    "ff_process_history",
    metadata,
    sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
    sa.Column(
        "instance_id", sa.BigInteger, sa.ForeignKey("ff_process_instance.id"), nullable=False
    ),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor_id", sa.BigInteger, nullable=True),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("element_id", sa.String(255), nullable=True),
    sa.Column("work_item_id", sa.BigInteger, nullable=True),
    sa.Column("outcome", sa.String(32), nullable=True),
    sa.Column("comment", sa.Text, nullable=True),
    sa.Column("data", sa.JSON, nullable=True),
    sa.Index("ix_ff_process_history_instance", "instance_id", "id"),
)
