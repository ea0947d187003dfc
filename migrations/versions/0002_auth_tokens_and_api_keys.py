"""auth tokens and api keys

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 13:27:14.988875
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ff_api_key",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"], ["ff_user.id"], name=op.f("fk_ff_api_key_created_by_ff_user")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["ff_user.id"], name=op.f("fk_ff_api_key_user_id_ff_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ff_api_key")),
        sa.UniqueConstraint("prefix", name=op.f("uq_ff_api_key_prefix")),
    )
    op.create_table(
        "ff_auth_token",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["ff_user.id"], name=op.f("fk_ff_auth_token_user_id_ff_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ff_auth_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_ff_auth_token_token_hash")),
    )
    # Plain ADD COLUMN (no batch rebuild): form tables reference ff_user.
    op.add_column("ff_user", sa.Column("password_hash", sa.String(length=255), nullable=True))
    op.add_column(
        "ff_user",
        sa.Column("is_superuser", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("ff_user", "is_superuser")
    op.drop_column("ff_user", "password_hash")

    op.drop_table("ff_auth_token")
    op.drop_table("ff_api_key")
