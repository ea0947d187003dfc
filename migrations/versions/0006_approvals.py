"""approvals

Delegations, added signers (加签) and copies (抄送) of process instances
(``engine.processes.approval_tables``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import engine.processes.approval_tables  # noqa: F401  (registers the tables)
from engine.forms.columns import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ff_work_item_delegation",
        sa.Column("work_item_id", sa.BigInteger(), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("delegate_id", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("delegated_at", UTCDateTime(), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["work_item_id"],
            ["ff_work_item.id"],
            name=op.f("fk_ff_work_item_delegation_work_item_id_ff_work_item"),
        ),
        sa.PrimaryKeyConstraint("work_item_id", name=op.f("pk_ff_work_item_delegation")),
    )
    op.create_table(
        "ff_work_item_signer",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("work_item_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.String(8), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("added_by", sa.BigInteger(), nullable=False),
        sa.Column("added_at", UTCDateTime(), nullable=False),
        sa.Column("signer_item_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["work_item_id"],
            ["ff_work_item.id"],
            name=op.f("fk_ff_work_item_signer_work_item_id_ff_work_item"),
        ),
        sa.ForeignKeyConstraint(
            ["signer_item_id"],
            ["ff_work_item.id"],
            name=op.f("fk_ff_work_item_signer_signer_item_id_ff_work_item"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ff_work_item_signer")),
    )
    op.create_index("ix_ff_work_item_signer_item", "ff_work_item_signer", ["work_item_id", "id"])
    op.create_index("ix_ff_work_item_signer_own", "ff_work_item_signer", ["signer_item_id"])
    op.create_table(
        "ff_process_cc",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("instance_id", sa.BigInteger(), nullable=False),
        sa.Column("work_item_id", sa.BigInteger(), nullable=True),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("sent_by", sa.BigInteger(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["ff_process_instance.id"],
            name=op.f("fk_ff_process_cc_instance_id_ff_process_instance"),
        ),
        sa.ForeignKeyConstraint(
            ["work_item_id"],
            ["ff_work_item.id"],
            name=op.f("fk_ff_process_cc_work_item_id_ff_work_item"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ff_process_cc")),
    )
    op.create_index("ix_ff_process_cc_user", "ff_process_cc", ["user_id", "id"])
    op.create_index("ix_ff_process_cc_instance", "ff_process_cc", ["instance_id", "user_id"])


def downgrade() -> None:
    op.drop_table("ff_process_cc")
    op.drop_table("ff_work_item_signer")
    op.drop_table("ff_work_item_delegation")
