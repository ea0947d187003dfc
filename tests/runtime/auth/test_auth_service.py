"""Users, session tokens and API keys (runtime.auth.service) on a real database."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
import sqlalchemy as sa

from engine.errors import AuthenticationError, ConflictError, NotFoundError, RecordValidationError
from engine.system import api_key_table, auth_token_table, user_table
from runtime.auth import service
from runtime.auth.passwords import verify_password

CountStatements = Callable[[sa.Engine | sa.Connection], AbstractContextManager[Any]]
NOW = dt.datetime(2024, 6, 1, 8, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def exact(message: str) -> str:
    return f"^{re.escape(message)}$"


def user(conn: sa.Connection, name: str = "alice", **kwargs: Any) -> int:
    return service.create_user(conn, username=name, password=None, now=NOW, **kwargs)


def test_create_user_reports_every_problem(connection: sa.Connection) -> None:
    with pytest.raises(RecordValidationError) as caught:
        service.create_user(connection, username="a b", password="short", now=NOW)
    assert [e.as_dict() for e in caught.value.errors] == [
        {"pointer": "/username", "message": "a username needs 1..150 characters, no spaces"},
        {"pointer": "/password", "message": "a password needs at least 8 characters"},
    ]
    user_id = user(connection, display_name="Alice Wang", is_superuser=True)
    row = connection.execute(sa.select(user_table).where(user_table.c.id == user_id)).one()
    assert (row.username, row.display_name, row.is_superuser, row.is_active) == (
        "alice",
        "Alice Wang",
        True,
        True,
    )
    assert row.password_hash is None
    with pytest.raises(ConflictError) as conflict:
        user(connection)
    assert conflict.value.message == "User 'alice' already exists."
    assert [e.as_dict() for e in conflict.value.errors] == [
        {"pointer": "/username", "message": "already taken"}
    ]


def test_passwords_are_hashed_and_checked(connection: sa.Connection) -> None:
    user_id = service.create_user(connection, username="bob", password="secret pass", now=NOW)
    stored = connection.execute(
        sa.select(user_table.c.password_hash).where(user_table.c.id == user_id)
    ).scalar_one()
    assert stored.startswith("$argon2id$") and "secret pass" not in stored
    with pytest.raises(AuthenticationError, match=exact("Invalid username or password.")):
        service.login(connection, username="bob", password="secret pasS", now=NOW, ttl=HOUR)
    with pytest.raises(AuthenticationError, match=exact("Invalid username or password.")):
        service.login(connection, username="nobody", password="secret pass", now=NOW, ttl=HOUR)
    token, expires, logged_in = service.login(
        connection, username="bob", password="secret pass", now=NOW, ttl=HOUR
    )
    assert re.fullmatch(r"ffs_[A-Za-z0-9_-]{43}", token)
    assert (expires, logged_in) == (NOW + HOUR, user_id)

    with pytest.raises(RecordValidationError):
        service.set_password(connection, user_id, "2short")
    service.set_password(connection, user_id, "a new secret")
    stored = connection.execute(
        sa.select(user_table.c.password_hash).where(user_table.c.id == user_id)
    ).scalar_one()
    assert verify_password(stored, "a new secret")


def test_users_without_a_password_cannot_log_in(connection: sa.Connection) -> None:
    user(connection, "robot")
    with pytest.raises(AuthenticationError):
        service.login(connection, username="robot", password="anything at all", now=NOW, ttl=HOUR)


def test_session_tokens(connection: sa.Connection) -> None:
    user_id = user(connection, display_name="Alice")
    token, expires = service.issue_session(connection, user_id, now=NOW, ttl=HOUR)
    assert expires == NOW + HOUR
    stored = connection.execute(sa.select(auth_token_table.c.token_hash)).scalar_one()
    assert token not in stored and len(stored) == 64  # only a digest is kept

    principal = service.authenticate(connection, token, now=NOW + HOUR - dt.timedelta(seconds=1))
    assert principal == service.Principal(
        user_id=user_id,
        username="alice",
        display_name="Alice",
        is_superuser=False,
        via="token",
        credential_id=principal.credential_id,
        policy_version=0,  # read by the same query: a fresh database's version
    )
    expired = "The session has expired or was revoked; log in again."
    with pytest.raises(AuthenticationError, match=exact(expired)):
        service.authenticate(connection, token, now=NOW + HOUR)
    for bad in ("ffs_" + "x" * 300, "Bearer " + token, token[4:]):
        with pytest.raises(AuthenticationError, match=exact("The credential is not valid.")):
            service.authenticate(connection, bad, now=NOW)

    service.logout(connection, token, now=NOW)
    with pytest.raises(AuthenticationError, match=exact(expired)):
        service.authenticate(connection, token, now=NOW)


def test_inactive_users_are_refused_whatever_they_hold(connection: sa.Connection) -> None:
    user_id = user(connection)
    token, _ = service.issue_session(connection, user_id, now=NOW, ttl=HOUR)
    _, key = service.create_api_key(connection, user_id=user_id, name="k", created_by=None, now=NOW)
    connection.execute(sa.update(user_table).values(is_active=False))
    with pytest.raises(AuthenticationError):
        service.authenticate(connection, token, now=NOW)
    with pytest.raises(AuthenticationError):
        service.authenticate(connection, key, now=NOW)


def test_api_keys(connection: sa.Connection, count_statements: CountStatements) -> None:
    alice, bob = user(connection, "alice"), user(connection, "bob")
    key_id, key = service.create_api_key(
        connection, user_id=alice, name="erp", created_by=bob, now=NOW
    )
    assert re.fullmatch(r"ffk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", key)
    row = connection.execute(sa.select(api_key_table)).one()
    assert (row.id, row.user_id, row.name, row.created_by, row.prefix) == (
        key_id,
        alice,
        "erp",
        bob,
        key.split("_")[1],
    )
    assert key.split("_", 2)[2] not in row.secret_hash

    principal = service.authenticate(connection, key, now=NOW)
    assert (principal.user_id, principal.via, principal.credential_id) == (alice, "api_key", key_id)

    def last_used() -> dt.datetime | None:
        value = connection.execute(sa.select(api_key_table.c.last_used_at)).scalar_one()
        return None if value is None else value.astimezone(dt.UTC)

    assert last_used() == NOW
    # Within a minute a use is a read only: one statement, nothing written.
    with count_statements(connection) as log:
        service.authenticate(connection, key, now=NOW + dt.timedelta(seconds=59))
    assert log.count == 1
    assert last_used() == NOW
    service.authenticate(connection, key, now=NOW + dt.timedelta(minutes=2))
    assert last_used() == NOW + dt.timedelta(minutes=2)

    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    with pytest.raises(
        AuthenticationError, match=exact("The API key is not valid or was revoked.")
    ):
        service.authenticate(connection, forged, now=NOW)
    for bad in ("ffk_", "ffk_abc", "ffk__secret"):
        with pytest.raises(AuthenticationError, match=exact("The API key is not valid.")):
            service.authenticate(connection, bad, now=NOW)

    # Only the owner (or, with owner_id=None, an administrator) revokes a key.
    with pytest.raises(NotFoundError):
        service.revoke_api_key(connection, key_id, owner_id=bob, now=NOW)
    service.authenticate(connection, key, now=NOW)
    service.revoke_api_key(connection, key_id, owner_id=alice, now=NOW)
    with pytest.raises(
        AuthenticationError, match=exact("The API key is not valid or was revoked.")
    ):
        service.authenticate(connection, key, now=NOW)
    with pytest.raises(
        NotFoundError, match=exact(f"API key {key_id} does not exist or is already revoked.")
    ):
        service.revoke_api_key(connection, key_id, owner_id=None, now=NOW)

    bobs, _ = service.create_api_key(connection, user_id=bob, name="b", created_by=bob, now=NOW)
    assert [k["id"] for k in service.list_api_keys(connection, user_id=bob)] == [bobs]
    everyone = service.list_api_keys(connection, user_id=None)
    assert [(k["id"], k["revoked_at"] is not None) for k in everyone] == [
        (key_id, True),
        (bobs, False),
    ]
    assert set(everyone[0]) == {
        "id",
        "user_id",
        "name",
        "prefix",
        "created_at",
        "revoked_at",
        "last_used_at",
    }
    with pytest.raises(RecordValidationError):
        service.create_api_key(connection, user_id=bob, name="", created_by=bob, now=NOW)


def test_find_user_id(connection: sa.Connection) -> None:
    user_id = user(connection, "carol")
    assert service.find_user_id(connection, "carol") == user_id
    with pytest.raises(NotFoundError, match=exact("There is no user 'dave'.")):
        service.find_user_id(connection, "dave")


def test_a_busy_database_does_not_fail_an_api_key_read(engine: sa.Engine, backend: str) -> None:
    """Refreshing last_used_at is best effort: it never fails the request.

    On SQLite a transaction that has read cannot start writing once another
    connection has committed since (SQLITE_BUSY_SNAPSHOT); the refresh is
    skipped and the transaction goes on. PostgreSQL simply refreshes.
    """
    with engine.begin() as conn:
        alice = user(conn)
        _, key = service.create_api_key(conn, user_id=alice, name="k", created_by=None, now=NOW)
    with engine.connect() as reader, reader.begin():
        reader.execute(sa.select(user_table.c.id)).all()  # the read snapshot starts here
        with engine.begin() as writer:
            user(writer, "bob")
        principal = service.authenticate(reader, key, now=NOW)
        assert principal.user_id == alice
        # The transaction is still usable.
        names = reader.execute(sa.select(user_table.c.username).order_by(user_table.c.id))
        assert [n for (n,) in names] == (["alice"] if backend == "sqlite" else ["alice", "bob"])
    with engine.connect() as conn:
        refreshed = conn.execute(sa.select(api_key_table.c.last_used_at)).scalar_one()
    assert (refreshed is not None) == (backend == "postgresql")
