"""system tables

Revision ID: 0001
Revises:
Create Date: 2026-11-25 13:20:07.201519
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "ff_audit",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("form_key", sa.String(length=41), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("record_version", sa.Integer(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ff_audit")),
    )
    with op.batch_alter_table("ff_audit", schema=None) as batch_op:
        batch_op.create_index("ix_ff_audit_record", ["form_key", "record_id", "id"], unique=False)

    op.create_table(
        "ff_department",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("parent_id", sa.BigInteger(), nullable=True),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["ff_department.id"],
            name=op.f("fk_ff_department_parent_id_ff_department"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ff_department")),
        sa.UniqueConstraint("code", name=op.f("uq_ff_department_code")),
    )
    op.create_table(
        "ff_form",
        sa.Column("key", sa.String(length=41), nullable=False),
        sa.Column("table_name", sa.String(length=63), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("layout", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_ff_form")),
        sa.UniqueConstraint("table_name", name=op.f("uq_ff_form_table_name")),
    )
    op.create_table(
        "ff_user",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("username", sa.String(length=150), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ff_user")),
        sa.UniqueConstraint("username", name=op.f("uq_ff_user_username")),
    )
    op.create_table(
        "ff_form_version",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("form_key", sa.String(length=41), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["form_key"], ["ff_form.key"], name=op.f("fk_ff_form_version_form_key_ff_form")
        ),
        sa.ForeignKeyConstraint(
            ["published_by"], ["ff_user.id"], name=op.f("fk_ff_form_version_published_by_ff_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ff_form_version")),
        sa.UniqueConstraint(
            "form_key", "version", name=op.f("uq_ff_form_version_form_key_version")
        ),
    )


def downgrade() -> None:

    op.drop_table("ff_form_version")
    op.drop_table("ff_user")
    op.drop_table("ff_form")
    op.drop_table("ff_department")
    with op.batch_alter_table("ff_audit", schema=None) as batch_op:
        batch_op.drop_index("ix_ff_audit_record")

    op.drop_table("ff_audit")
