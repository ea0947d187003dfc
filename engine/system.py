"""System tables (``ff_*``): the catalogue of forms, their versions, audit.

Alembic (``migrations/``) owns these tables; dynamic form tables are created
by :mod:`engine.publish` instead. Users and departments are kept minimal
here and grow with the authentication and permissions layers.
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
