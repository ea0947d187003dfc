"""System tables (``ff_*``): the catalogue of forms, their versions, audit.

Alembic (``migrations/``) owns these tables; dynamic form tables are created
by :mod:`engine.publish` instead. The organisation (departments, their
closure table, memberships, roles) and the Casbin policy store are written by
:mod:`permissions`; they live here because records reference departments and
the migrations own every ``ff_*`` table.
"""

from __future__ import annotations

import sqlalchemy as sa

from engine.forms.columns import BigIntId, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

user_table = sa.Table(
    "ff_user",
    metadata,
    sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(150), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # argon2 hash; NULL for service accounts that authenticate by API key only.
    sa.Column("password_hash", sa.String(255), nullable=True),
    sa.Column("is_superuser", sa.Boolean, nullable=False, server_default=sa.false()),
)

# Bearer tokens for people (also carried in the session cookie). Only a
# SHA-256 of the token is stored: tokens are 256-bit random, so a slow hash
# adds nothing but latency.
auth_token_table = sa.Table(
    "ff_auth_token",
    metadata,
    sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("ff_user.id"), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
)

# API keys for integrators: shown once, stored as prefix + SHA-256 of the secret.
api_key_table = sa.Table(
    "ff_api_key",
    metadata,
    sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("ff_user.id"), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False, unique=True),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.BigInteger, sa.ForeignKey("ff_user.id"), nullable=True),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.Column("last_used_at", UTCDateTime, nullable=True),
)

department_table = sa.Table(
    "ff_department",
    metadata,
    sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
    sa.Column("parent_id", sa.BigInteger, sa.ForeignKey("ff_department.id"), nullable=True),
    sa.Column("code", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
)

# The department tree as a closure table: one row per (ancestor, descendant)
# pair, the department itself included at depth 0. "My department and below"
# is then one indexed condition, ``dept_id IN (SELECT descendant_id ... WHERE
# ancestor_id IN (...))``, at any depth, instead of a recursive query per
# request; a re-organisation rewrites only the rows of the moved subtree.
# ``ff_department.parent_id`` stays the source of truth for the shape; this
# table is derived from it (see permissions.org.rebuild_closure).
department_closure_table = sa.Table(
    "ff_department_closure",
    metadata,
    sa.Column(
        "ancestor_id",
        sa.BigInteger,
        sa.ForeignKey("ff_department.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "descendant_id",
        sa.BigInteger,
        sa.ForeignKey("ff_department.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("depth", sa.Integer, nullable=False),
    # The primary key serves "below"; this serves "above" (a department's
    # ancestors) and the subtree rewrite of a move.
    sa.Index("ix_ff_department_closure_descendant", "descendant_id", "ancestor_id"),
)

# Users belong to any number of departments; the primary one is where their
# new records are filed by default.
user_department_table = sa.Table(
    "ff_user_department",
    metadata,
    sa.Column("user_id", sa.BigInteger, sa.ForeignKey("ff_user.id"), primary_key=True),
    sa.Column("department_id", sa.BigInteger, sa.ForeignKey("ff_department.id"), primary_key=True),
    sa.Column("is_primary", sa.Boolean, nullable=False, server_default=sa.false()),
    # Members of a department (and the "still has members" check of a delete).
    sa.Index("ix_ff_user_department_department", "department_id"),
    # At most one primary department per user, whatever the callers do.
    sa.Index(
        "ix_ff_user_department_primary",
        "user_id",
        unique=True,
        sqlite_where=sa.text("is_primary"),
        postgresql_where=sa.text("is_primary"),
    ),
)

# The role catalogue: keys and labels an administrator picks from. The role
# hierarchy, role membership and grants are Casbin policy (ff_casbin_rule).
role_table = sa.Table(
    "ff_role",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# Casbin's policy lines in the shape its adapters use (ptype plus at most six
# values), so a line here is a line of a policy file.
casbin_rule_table = sa.Table(
    "ff_casbin_rule",
    metadata,
    sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
    sa.Column("ptype", sa.String(8), nullable=False),
    sa.Column("v0", sa.String(255), nullable=True),
    sa.Column("v1", sa.String(255), nullable=True),
    sa.Column("v2", sa.String(255), nullable=True),
    sa.Column("v3", sa.String(255), nullable=True),
    sa.Column("v4", sa.String(255), nullable=True),
    sa.Column("v5", sa.String(255), nullable=True),
    # Lines of one kind for one subject: a user's roles, a role's grants.
    sa.Index("ix_ff_casbin_rule_ptype_v0", "ptype", "v0"),
)

# One row: a counter bumped in the same transaction as every change that can
# alter someone's access (policy lines, departments, memberships). Processes
# cache compiled access per version and re-read one integer to know it is
# stale. Org changes also lock this row first, which serialises them: two
# concurrent moves could otherwise each pass the cycle check and together
# make a cycle.
policy_state_table = sa.Table(
    "ff_policy_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.CheckConstraint("id = 1", name="singleton"),
)

# Who changed the organisation, roles or policy, when, and the values before
# and after, written in the same transaction as the change. Records have
# their own trail (ff_audit); entity_key is the entity's stable key (a
# department code, a role key, "user_id:department_code" for a membership).
admin_audit_table = sa.Table(
    "ff_admin_audit",
    metadata,
    sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
    sa.Column("actor_id", sa.BigInteger, nullable=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("entity", sa.String(32), nullable=False),
    sa.Column("entity_key", sa.String(200), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("before", sa.JSON, nullable=True),
    sa.Column("after", sa.JSON, nullable=True),
    sa.Index("ix_ff_admin_audit_entity", "entity", "entity_key", "id"),
)

form_table = sa.Table(
    "ff_form",
    metadata,
    sa.Column("key", sa.String(41), primary_key=True),
    sa.Column("table_name", sa.String(63), nullable=False, unique=True),
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("current_version", sa.Integer, nullable=False),
    # The live shape of the form's tables as Formflow built them:
    # {"columns": {name: {...spec, "retired": bool}}, "children": {...}}.
    sa.Column("layout", sa.JSON, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

form_version_table = sa.Table(
    "ff_form_version",
    metadata,
    sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
    sa.Column("form_key", sa.String(41), sa.ForeignKey("ff_form.key"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("definition", sa.JSON, nullable=False),
    sa.Column("plan", sa.JSON, nullable=False),
    sa.Column("published_at", UTCDateTime, nullable=False),
    sa.Column("published_by", sa.BigInteger, sa.ForeignKey("ff_user.id"), nullable=True),
    sa.UniqueConstraint("form_key", "version"),
)

audit_table = sa.Table(
    "ff_audit",
    metadata,
    sa.Column("id", BigIntId, primary_key=True, autoincrement=True),
    sa.Column("form_key", sa.String(41), nullable=False),
    sa.Column("record_id", sa.BigInteger, nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("actor_id", sa.BigInteger, nullable=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("record_version", sa.Integer, nullable=False),
    # {field: {"before": ..., "after": ...}} in JSON representation.
    sa.Column("changes", sa.JSON, nullable=False),
    sa.Index("ix_ff_audit_record", "form_key", "record_id", "id"),
)
