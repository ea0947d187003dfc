"""jobs and outbox

``ff_job``: timers, escalations, notifications and connector calls,
enqueued in the transaction of the change that causes them and run by the
jobs worker (``engine.jobs``).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# The table's definition lives in engine.jobs, outside engine/system.py;
# importing it here registers it on the metadata that env.py compares
# against, in every process that loads the migrations.
import engine.jobs.table  # noqa: F401

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ff_job",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("locked_by", sa.String(length=200), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'done', 'incident', 'cancelled')",
            name=op.f("ck_ff_job_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ff_job")),
    )
    op.create_index("ix_ff_job_status_run_at", "ff_job", ["status", "run_at"], unique=False)
    op.create_index(
        "ix_ff_job_dedupe_key",
        "ff_job",
        ["dedupe_key"],
        unique=True,
        sqlite_where=sa.text("dedupe_key IS NOT NULL"),
        postgresql_where=sa.text("dedupe_key IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_ff_job_dedupe_key", table_name="ff_job")
    op.drop_index("ix_ff_job_status_run_at", table_name="ff_job")
    op.drop_table("ff_job")
