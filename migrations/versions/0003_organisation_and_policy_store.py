"""organisation and policy store

Departments get a closure table and memberships; roles get a catalogue; the
Casbin policy lines, the policy version and the administration audit trail
get their tables. Departments that already exist get their closure rows.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 14:48:40.566283
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Every department with itself (depth 0) and with each of its ancestors.
# Portable: SQLite and PostgreSQL both take WITH RECURSIVE before INSERT. The
# depth bound stops a cycle in parent_id (which nothing should have made)
# from recursing forever: the primary key then refuses the duplicate pairs.
BACKFILL_CLOSURE = """
WITH RECURSIVE tree (ancestor_id, descendant_id, depth) AS (
    SELECT id, id, 0 FROM ff_department
    UNION ALL
    SELECT tree.ancestor_id, child.id, tree.depth + 1
    FROM tree JOIN ff_department child ON child.parent_id = tree.descendant_id
    WHERE tree.depth < 1000
)
INSERT INTO ff_department_closure (ancestor_id, descendant_id, depth)
SELECT ancestor_id, descendant_id, depth FROM tree
"""


def upgrade() -> None:
    op.create_table(
        "ff_admin_audit",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entity", sa.String(length=32), nullable=False),
        sa.Column("entity_key", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ff_admin_audit")),
    )
    op.create_index(
        "ix_ff_admin_audit_entity", "ff_admin_audit", ["entity", "entity_key", "id"], unique=False
    )

    op.create_table(
        "ff_casbin_rule",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("ptype", sa.String(length=8), nullable=False),
        sa.Column("v0", sa.String(length=255), nullable=True),
        sa.Column("v1", sa.String(length=255), nullable=True),
        sa.Column("v2", sa.String(length=255), nullable=True),
        sa.Column("v3", sa.String(length=255), nullable=True),
        sa.Column("v4", sa.String(length=255), nullable=True),
        sa.Column("v5", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ff_casbin_rule")),
    )
    op.create_index("ix_ff_casbin_rule_ptype_v0", "ff_casbin_rule", ["ptype", "v0"], unique=False)

    policy_state = op.create_table(
        "ff_policy_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_ff_policy_state_singleton")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ff_policy_state")),
    )
    op.bulk_insert(policy_state, [{"id": 1, "version": 0}])

    op.create_table(
        "ff_role",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_ff_role")),
    )

    op.create_table(
        "ff_department_closure",
        sa.Column("ancestor_id", sa.BigInteger(), nullable=False),
        sa.Column("descendant_id", sa.BigInteger(), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ancestor_id"],
            ["ff_department.id"],
            name=op.f("fk_ff_department_closure_ancestor_id_ff_department"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["descendant_id"],
            ["ff_department.id"],
            name=op.f("fk_ff_department_closure_descendant_id_ff_department"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "ancestor_id", "descendant_id", name=op.f("pk_ff_department_closure")
        ),
    )
    op.create_index(
        "ix_ff_department_closure_descendant",
        "ff_department_closure",
        ["descendant_id", "ancestor_id"],
        unique=False,
    )
    op.execute(BACKFILL_CLOSURE)

    op.create_table(
        "ff_user_department",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("department_id", sa.BigInteger(), nullable=False),
        sa.Column("is_primary", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["ff_department.id"],
            name=op.f("fk_ff_user_department_department_id_ff_department"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["ff_user.id"], name=op.f("fk_ff_user_department_user_id_ff_user")
        ),
        sa.PrimaryKeyConstraint("user_id", "department_id", name=op.f("pk_ff_user_department")),
    )
    op.create_index(
        "ix_ff_user_department_department",
        "ff_user_department",
        ["department_id"],
        unique=False,
    )
    op.create_index(
        "ix_ff_user_department_primary",
        "ff_user_department",
        ["user_id"],
        unique=True,
        sqlite_where=sa.text("is_primary"),
        postgresql_where=sa.text("is_primary"),
    )


def downgrade() -> None:
    op.drop_index("ix_ff_user_department_primary", table_name="ff_user_department")
    op.drop_index("ix_ff_user_department_department", table_name="ff_user_department")
    op.drop_table("ff_user_department")
    op.drop_index("ix_ff_department_closure_descendant", table_name="ff_department_closure")
    op.drop_table("ff_department_closure")
    op.drop_table("ff_role")
    op.drop_table("ff_policy_state")
    op.drop_index("ix_ff_casbin_rule_ptype_v0", table_name="ff_casbin_rule")
    op.drop_table("ff_casbin_rule")
    op.drop_index("ix_ff_admin_audit_entity", table_name="ff_admin_audit")
    op.drop_table("ff_admin_audit")
