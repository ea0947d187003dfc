"""Forms, accounts and a small HTTP helper shared by the web tests.

Kept out of ``conftest.py``: the suite has several conftest modules, so
``from conftest import ...`` would import whichever was loaded first.

The fixtures (``conftest.py``) run the real app on this test's own database.

``api`` publishes two purpose-built forms that between them use every field
type (``sample`` with a sub-table whose rows link to ``company``, and a link
to itself), adds two departments, an administrator and a clerk, and gives
each a session token. Tokens are issued directly rather than by logging in:
argon2 costs ~0.2 s a password, which only the login tests pay.

The app reads the catalogue on every request (``schema_ttl=0``), so a form
published during a test is served at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from engine.forms.checks import make_cn_id
from engine.forms.definition import parse_definition
from engine.forms.fieldtypes import FIELD_TYPES
from engine.publish.service import publish
from permissions.policy import ACTIONS, PolicyStore
from runtime.auth.service import create_user, issue_session

T0 = dt.datetime(2024, 6, 1, 8, 0, tzinfo=dt.UTC)
ID_A = make_cn_id("110101", dt.date(1985, 6, 15), 1)
ID_X = make_cn_id("110101", dt.date(1990, 1, 2), 7)  # ends in X

COMPANY: dict[str, Any] = {
    "key": "company",
    "schema": {
        "title": "公司",
        "properties": {
            "name": {"type": "string", "title": "名称", "x-index": True},
            "city": {"type": "string", "maxLength": 50},
        },
        "required": ["name"],
    },
}

# Every field type; the sub-table's rows link to company, "parent" links to
# the form itself, so a list can expand two different relations.
SAMPLE: dict[str, Any] = {
    "key": "sample",
    "schema": {
        "title": "样本",
        "properties": {
            "title": {
                "type": "string",
                "title": "标题",
                "minLength": 2,
                "maxLength": 20,
                "x-index": True,
            },
            "code": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "notes": {"x-type": "long_text", "maxLength": 500},
            "qty": {
                "type": "integer",
                "title": "数量",
                "minimum": 0,
                "maximum": 100,
                "x-index": True,
            },
            "rate": {
                "x-type": "decimal",
                "x-precision": 8,
                "x-scale": 4,
                "minimum": -10,
                "maximum": 1000,
                "x-index": True,
            },
            "amount": {"x-type": "money", "title": "金额", "x-index": True},
            "active": {"type": "boolean"},
            "born": {"type": "string", "format": "date", "x-index": True},
            "seen_at": {"type": "string", "format": "date-time", "x-index": True},
            "level": {"type": "string", "title": "级别", "enum": ["low", "mid", "high"]},
            "stage": {"type": "string", "enum": ["new", "done"], "default": "new"},
            "tags": {"x-type": "multi_select", "items": {"enum": ["red", "green", "blue"]}},
            "mobile": {"x-type": "phone", "title": "手机"},
            "mail": {"x-type": "email", "x-unique": True},
            "id_no": {"x-type": "cn_id_number", "title": "身份证号", "x-unique": True},
            "photo": {"x-type": "attachment"},
            "handler": {"x-type": "user"},
            "team": {"x-type": "department"},
            "company": {"x-type": "link", "x-link": "company", "title": "公司"},
            "parent": {"x-type": "link", "x-link": "sample"},
            "frozen": {"type": "string", "readOnly": True},
            "score": {
                "x-type": "computed",
                "x-expression": "qty * 2",
                "x-result-type": "integer",
                "title": "得分",
            },
            "docs": {
                "x-type": "subtable",
                "title": "材料",
                "items": {
                    "properties": {
                        "kind": {
                            "type": "string",
                            "title": "类型",
                            "enum": ["passport", "licence"],
                        },
                        "pages": {"type": "integer", "minimum": 1},
                        "issuer": {"x-type": "link", "x-link": "company"},
                    },
                    "required": ["kind"],
                },
            },
        },
        "required": ["title"],
    },
}

_used = {g.type.name for f in parse_definition(SAMPLE).fields for g in (f, *f.children)}
assert _used == set(FIELD_TYPES), set(FIELD_TYPES) - _used

SYSTEM_KEYS = ("id", "version", "created_at", "created_by", "updated_at", "updated_by")
SYSTEM_KEYS += ("owner_id", "dept_id")


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def records_url(form: str, record_id: int | None = None) -> str:
    base = f"/api/v1/forms/{form}/records"
    return base if record_id is None else f"{base}/{record_id}"


@dataclass
class Api:
    """The app, a client, and the people who call it."""

    app: FastAPI
    client: TestClient
    engine: sa.Engine
    admin: Account
    clerk: Account
    departments: dict[str, int]

    def create(self, form: str, data: dict[str, Any], *, who: Account | None = None) -> Any:
        r = self.client.post(records_url(form), json=data, headers=(who or self.admin).headers)
        assert r.status_code == 201, r.text
        return r.json()

    def get(self, form: str, record_id: int) -> Any:
        r = self.client.get(records_url(form, record_id), headers=self.admin.headers)
        assert r.status_code == 200, r.text
        return r.json()

    def list(self, form: str, query: str = "") -> Any:
        r = self.client.get(f"{records_url(form)}?{query}", headers=self.admin.headers)
        assert r.status_code == 200, r.text
        return r.json()

    def patch(self, form: str, record_id: int, data: Any, version: int) -> Any:
        headers = {**self.admin.headers, "If-Match": f'"{version}"'}
        return self.client.patch(records_url(form, record_id), json=data, headers=headers)

    def rows(self, form: str) -> int:
        """Rows in the form's table, soft-deleted ones included."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM form_{form}")).scalar_one())


def publish_documents(engine: sa.Engine, *documents: dict[str, Any]) -> None:
    with engine.begin() as conn:
        for document in documents:
            publish(conn, parse_definition(document), now=T0)


def add_user(engine: sa.Engine, username: str, *, superuser: bool = False) -> Account:
    """A user without a password, with a fresh session token."""
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        user_id = create_user(
            conn, username=username, password=None, is_superuser=superuser, now=now
        )
        token, _ = issue_session(conn, user_id, now=now, ttl=dt.timedelta(hours=1))
    return Account(user_id, username, token)


def grant_everything(engine: sa.Engine, user_id: int, role: str = "staff") -> None:
    """``role`` may do everything to every record and field of every form; the user holds it."""
    with engine.begin() as conn:
        store = PolicyStore(conn, actor_id=None, now=dt.datetime.now(dt.UTC))
        store.set_field(role, "*", "*", "write")
        for action in ACTIONS:
            store.set_action(role, "*", action)
            store.set_scope(role, "*", action, "all")
        store.assign_role(user_id, role)


MakeApp = Callable[..., FastAPI]
