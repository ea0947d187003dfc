"""Users, login tokens and API keys. Plain functions over a Connection.

Secrets are never stored: passwords as argon2 hashes, tokens and API key
secrets as SHA-256 digests (they are 256-bit random, so a slow hash would add
latency to every request and no security).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

from engine.errors import (
    AuthenticationError,
    ConflictError,
    ErrorDetail,
    NotFoundError,
    RecordValidationError,
)
from engine.system import api_key_table, auth_token_table, policy_state_table, user_table
from runtime.auth.passwords import hash_password, password_problem, verify_password

SESSION_PREFIX = "ffs_"
API_KEY_PREFIX = "ffk_"
logger = logging.getLogger("formflow.auth")

# last_used_at is refreshed at most this often, so API reads stay reads.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    user_id: int
    username: str
    display_name: str
    is_superuser: bool
    via: Literal["token", "api_key"]
    credential_id: int
    # ff_policy_state.version, read by the same query: compiled access and the
    # caller's departments are cached per version, so a warm request needs no
    # other round trip for permissions.
    policy_version: int | None = None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_user(
    conn: sa.Connection,
    *,
    username: str,
    password: str | None,
    display_name: str | None = None,
    is_superuser: bool = False,
    now: dt.datetime,
) -> int:
    problems = []
    if not username or len(username) > 150 or not username.isprintable() or " " in username:
        problems.append(ErrorDetail("/username", "a username needs 1..150 characters, no spaces"))
    if password is not None and (why := password_problem(password)):
        problems.append(ErrorDetail("/password", why))
    if problems:
        raise RecordValidationError("The user cannot be created.", problems)
    exists = conn.execute(
        sa.select(user_table.c.id).where(user_table.c.username == username)
    ).scalar_one_or_none()
    if exists is not None:
        raise ConflictError(
            f"User {username!r} already exists.", [ErrorDetail("/username", "already taken")]
        )
    return int(
        conn.execute(
            sa.insert(user_table)
            .values(
                username=username,
                display_name=display_name or username,
                password_hash=hash_password(password) if password is not None else None,
                is_superuser=is_superuser,
                is_active=True,
                created_at=now,
            )
            .returning(user_table.c.id)
        ).scalar_one()
    )


def set_password(conn: sa.Connection, user_id: int, password: str) -> None:
    if why := password_problem(password):
        raise RecordValidationError("The password cannot be used.", [ErrorDetail("/password", why)])
    conn.execute(
        sa.update(user_table)
        .where(user_table.c.id == user_id)
        .values(password_hash=hash_password(password))
    )


def login(
    conn: sa.Connection, *, username: str, password: str, now: dt.datetime, ttl: dt.timedelta
) -> tuple[str, dt.datetime, int]:
    """Check a password and issue a session token: (token, expires_at, user_id)."""
    row = conn.execute(
        sa.select(user_table.c.id, user_table.c.password_hash, user_table.c.is_active).where(
            user_table.c.username == username
        )
    ).one_or_none()
    ok = verify_password(row.password_hash if row else None, password)
    if row is None or not ok or not row.is_active:
        raise AuthenticationError("Invalid username or password.")
    token, expires = issue_session(conn, int(row.id), now=now, ttl=ttl)
    return token, expires, int(row.id)


def issue_session(
    conn: sa.Connection, user_id: int, *, now: dt.datetime, ttl: dt.timedelta
) -> tuple[str, dt.datetime]:
    """Issue a session token for a user already identified: (token, expires_at)."""
    token = SESSION_PREFIX + secrets.token_urlsafe(32)
    expires = now + ttl
    conn.execute(
        sa.insert(auth_token_table).values(
            user_id=user_id, token_hash=_digest(token), created_at=now, expires_at=expires
        )
    )
    return token, expires


def logout(conn: sa.Connection, token: str, *, now: dt.datetime) -> None:
    conn.execute(
        sa.update(auth_token_table)
        .where(
            auth_token_table.c.token_hash == _digest(token), auth_token_table.c.revoked_at.is_(None)
        )
        .values(revoked_at=now)
    )


def authenticate(conn: sa.Connection, credential: str, *, now: dt.datetime) -> Principal:
    """Resolve a bearer credential (session token or API key) to a principal: one query."""
    if credential.startswith(API_KEY_PREFIX):
        return _authenticate_api_key(conn, credential, now=now)
    if not credential.startswith(SESSION_PREFIX) or len(credential) > 200:
        raise AuthenticationError("The credential is not valid.")
    t, u = auth_token_table, user_table
    row = conn.execute(
        sa.select(t.c.id, t.c.expires_at, t.c.revoked_at, *_user_columns())
        .join(u, u.c.id == t.c.user_id)
        .where(t.c.token_hash == _digest(credential))
    ).one_or_none()
    if row is None or row.revoked_at is not None or row.expires_at <= now or not row.is_active:
        raise AuthenticationError("The session has expired or was revoked; log in again.")
    return _principal(row, "token", row.id)


def _user_columns() -> list[sa.ColumnElement[Any]]:
    u, p = user_table, policy_state_table
    version = sa.select(p.c.version).where(p.c.id == 1).scalar_subquery()
    return [
        u.c.id.label("uid"),
        u.c.username,
        u.c.display_name,
        u.c.is_superuser,
        u.c.is_active,
        version.label("policy_version"),
    ]


def _principal(row: Any, via: Literal["token", "api_key"], credential_id: int) -> Principal:
    return Principal(
        user_id=row.uid,
        username=row.username,
        display_name=row.display_name,
        is_superuser=bool(row.is_superuser),
        via=via,
        credential_id=credential_id,
        policy_version=row.policy_version,
    )


def _authenticate_api_key(conn: sa.Connection, credential: str, *, now: dt.datetime) -> Principal:
    _, _, rest = credential.partition(API_KEY_PREFIX)
    prefix, _, secret = rest.partition("_")
    if not prefix or not secret or len(credential) > 200:
        raise AuthenticationError("The API key is not valid.")
    k, u = api_key_table, user_table
    row = conn.execute(
        sa.select(k.c.id, k.c.secret_hash, k.c.revoked_at, k.c.last_used_at, *_user_columns())
        .join(u, u.c.id == k.c.user_id)
        .where(k.c.prefix == prefix)
    ).one_or_none()
    if (
        row is None
        or not hmac.compare_digest(row.secret_hash, _digest(secret))
        or row.revoked_at is not None
        or not row.is_active
    ):
        raise AuthenticationError("The API key is not valid or was revoked.")
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        _touch_api_key(conn, row.id, now)
    return _principal(row, "api_key", row.id)


def _touch_api_key(conn: sa.Connection, key_id: int, now: dt.datetime) -> None:
    """Record that a key was used, if the database lets us without waiting our turn.

    Best effort, in a savepoint: on SQLite a read transaction cannot start
    writing once another connection has committed since it began
    (SQLITE_BUSY_SNAPSHOT), and a request must not fail, nor its own writes
    be lost, for the sake of a timestamp that another request refreshes anyway.
    """
    k = api_key_table
    try:
        with conn.begin_nested():
            conn.execute(sa.update(k).where(k.c.id == key_id).values(last_used_at=now))
    except sa.exc.OperationalError:
        logger.info("last_used_at of API key %s not refreshed: the database was busy", key_id)


def create_api_key(
    conn: sa.Connection, *, user_id: int, name: str, created_by: int | None, now: dt.datetime
) -> tuple[int, str]:
    """Create a key for ``user_id``; the plaintext is returned once and never stored."""
    if not name or len(name) > 100:
        raise RecordValidationError(
            "The API key needs a name.", [ErrorDetail("/name", "a name of 1..100 characters")]
        )
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key_id = conn.execute(
        sa.insert(api_key_table)
        .values(
            user_id=user_id,
            name=name,
            prefix=prefix,
            secret_hash=_digest(secret),
            created_at=now,
            created_by=created_by,
        )
        .returning(api_key_table.c.id)
    ).scalar_one()
    return int(key_id), f"{API_KEY_PREFIX}{prefix}_{secret}"


def list_api_keys(conn: sa.Connection, *, user_id: int | None) -> list[dict[str, Any]]:
    k = api_key_table
    query = sa.select(
        k.c.id, k.c.user_id, k.c.name, k.c.prefix, k.c.created_at, k.c.revoked_at, k.c.last_used_at
    ).order_by(k.c.id)
    if user_id is not None:
        query = query.where(k.c.user_id == user_id)
    return [dict(r._mapping) for r in conn.execute(query)]


def revoke_api_key(
    conn: sa.Connection, key_id: int, *, owner_id: int | None, now: dt.datetime
) -> None:
    """Revoke a key; ``owner_id`` restricts to the caller's own keys (None: any key)."""
    k = api_key_table
    query = sa.update(k).where(k.c.id == key_id, k.c.revoked_at.is_(None)).values(revoked_at=now)
    if owner_id is not None:
        query = query.where(k.c.user_id == owner_id)
    if conn.execute(query).rowcount != 1:
        raise NotFoundError(f"API key {key_id} does not exist or is already revoked.")


def find_user_id(conn: sa.Connection, username: str) -> int:
    user_id = conn.execute(
        sa.select(user_table.c.id).where(user_table.c.username == username)
    ).scalar_one_or_none()
    if user_id is None:
        raise NotFoundError(f"There is no user {username!r}.")
    return int(user_id)
