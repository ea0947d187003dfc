"""processes

Process definitions (every published BPMN version kept), instances (state
without the spec), the work-item projection with its candidates, and the
history of every step (``engine.processes``).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 16:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# The tables live in engine.processes; importing them registers them on the
# metadata env.py compares against.
import engine.processes.tables  # noqa: F401
from engine.forms.columns import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ff_process",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_ff_process")),
    )
    op.create_table(
        "ff_process_version",
        sa.Column("process_key", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("bpmn", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("published_at", UTCDateTime(), nullable=False),
        sa.Column("published_by", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["process_key"],
            ["ff_process.key"],
            name=op.f("fk_ff_process_version_process_key_ff_process"),
        ),
        sa.PrimaryKeyConstraint("process_key", "version", name=op.f("pk_ff_process_version")),
    )
    op.create_table(
        "ff_process_instance",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("process_key", sa.String(64), nullable=False),
        sa.Column("process_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("record_form", sa.String(41), nullable=True),
        sa.Column("record_id", sa.BigInteger(), nullable=True),
        sa.Column("started_by", sa.BigInteger(), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("row_version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["process_key", "process_version"],
            ["ff_process_version.process_key", "ff_process_version.version"],
            name=op.f("fk_ff_process_instance_process_key_ff_process_version"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ff_process_instance")),
    )
    op.create_index(
        "ix_ff_process_instance_started_by", "ff_process_instance", ["started_by", "id"]
    )
    op.create_index(
        "ix_ff_process_instance_record", "ff_process_instance", ["record_form", "record_id"]
    )
    op.create_table(
        "ff_work_item",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("instance_id", sa.BigInteger(), nullable=False),
        sa.Column("task_id", sa.String(36), nullable=False),
        sa.Column("element_id", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("form_key", sa.String(41), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("assignee_id", sa.BigInteger(), nullable=True),
        sa.Column("due_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("completed_at", UTCDateTime(), nullable=True),
        sa.Column("completed_by", sa.BigInteger(), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["ff_process_instance.id"],
            name=op.f("fk_ff_work_item_instance_id_ff_process_instance"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ff_work_item")),
    )
    op.create_index("ix_ff_work_item_assignee", "ff_work_item", ["assignee_id", "status"])
    op.create_index("ix_ff_work_item_instance", "ff_work_item", ["instance_id", "status"])
    op.create_index("ix_ff_work_item_completed_by", "ff_work_item", ["completed_by", "id"])
    op.create_table(
        "ff_work_item_candidate",
        sa.Column("work_item_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("ref", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["work_item_id"],
            ["ff_work_item.id"],
            name=op.f("fk_ff_work_item_candidate_work_item_id_ff_work_item"),
        ),
        sa.PrimaryKeyConstraint(
            "work_item_id", "kind", "ref", name=op.f("pk_ff_work_item_candidate")
        ),
    )
    op.create_index("ix_ff_work_item_candidate_ref", "ff_work_item_candidate", ["kind", "ref"])
    op.create_table(
        "ff_process_history",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("instance_id", sa.BigInteger(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("element_id", sa.String(255), nullable=True),
        sa.Column("work_item_id", sa.BigInteger(), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["ff_process_instance.id"],
            name=op.f("fk_ff_process_history_instance_id_ff_process_instance"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ff_process_history")),
    )
    op.create_index("ix_ff_process_history_instance", "ff_process_history", ["instance_id", "id"])


def downgrade() -> None:
    op.drop_table("ff_process_history")
    op.drop_table("ff_work_item_candidate")
    op.drop_table("ff_work_item")
    op.drop_table("ff_process_instance")
    op.drop_table("ff_process_version")
    op.drop_table("ff_process")
