"""work item escalated_at

When an overdue task was first escalated (``engine.processes.escalation``):
the inbox shows it as escalated without reading the history.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from engine.forms.columns import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: adding it rewrites no rows on either database.
    op.add_column("ff_work_item", sa.Column("escalated_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ff_work_item") as batch:
        batch.drop_column("escalated_at")
