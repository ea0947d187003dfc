"""Test forms that use every field type, and helpers shared by the records tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from engine.catalog import Schema, load_schema
from engine.forms.checks import make_cn_id
from engine.forms.definition import parse_definition
from engine.forms.fieldtypes import FIELD_TYPES
from engine.publish.service import publish
from engine.records.query import Filter, ListQuery, Page, Sort, count_records, list_records
from engine.records.service import Actor, RecordStore
from engine.system import audit_table, department_table, user_table

# A valid ID number ending in the check character X, and two ending in digits.
ID_WITH_X = make_cn_id("110101", dt.date(1990, 1, 2), 7)
ID_A = make_cn_id("110101", dt.date(1985, 6, 15), 1)
ID_B = make_cn_id("310104", dt.date(2000, 2, 29), 7)
assert ID_WITH_X == "11010119900102007X"
assert (ID_A, ID_B) == ("110101198506150019", "310104200002290073")

T0 = dt.datetime(2024, 6, 1, 8, 0, tzinfo=dt.UTC)

COMPANY: dict[str, Any] = {
    "key": "company",
    "schema": {
        "title": "公司",
        "properties": {"name": {"type": "string", "title": "名称", "x-index": True}},
    },
}

# One field of every type (the sub-table's rows carry a link, too).
SPECIMEN: dict[str, Any] = {
    "key": "specimen",
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
            "notes": {"x-type": "long_text", "maxLength": 50},
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
            "level": {"type": "string", "enum": ["low", "mid", "high"]},
            "stage": {"type": "string", "enum": ["new", "done"], "default": "new"},
            "tags": {"x-type": "multi_select", "items": {"enum": ["red", "green", "blue"]}},
            "mobile": {"x-type": "phone", "title": "手机"},
            "mail": {"x-type": "email", "x-unique": True},
            "id_no": {"x-type": "cn_id_number", "title": "身份证号", "x-unique": True},
            "photo": {"x-type": "attachment"},
            "handler": {"x-type": "user"},
            "team": {"x-type": "department"},
            "company": {"x-type": "link", "x-link": "company"},
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


def field_types_used(document: Mapping[str, Any]) -> set[str]:
    definition = parse_definition(document)
    return {g.type.name for f in definition.fields for g in (f, *f.children)}


assert field_types_used(SPECIMEN) == set(FIELD_TYPES), set(FIELD_TYPES) - field_types_used(SPECIMEN)


class Clock:
    """A clock that advances one second per reading, from T0."""

    def __init__(self, start: dt.datetime = T0) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        current = self.now
        self.now += dt.timedelta(seconds=1)
        return current


def publish_forms(conn: sa.Connection) -> None:
    """Publish the test forms and add two users and two departments (ids 1 and 2)."""
    for document in (COMPANY, SPECIMEN):
        publish(conn, parse_definition(document), now=T0)
    conn.execute(
        sa.insert(user_table),
        [
            {"username": u, "display_name": u.upper(), "is_active": True, "created_at": T0}
            for u in ("alice", "bob")
        ],
    )
    conn.execute(
        sa.insert(department_table),
        [{"code": c, "name": c.title()} for c in ("retail", "corporate")],
    )


@dataclass
class Forms:
    """The published test forms on one connection."""

    conn: sa.Connection
    schema: Schema
    clock: Clock = field(default_factory=Clock)

    def store(self, key: str = "specimen", *, user_id: int | None = 1) -> RecordStore:
        return RecordStore(
            self.conn, self.schema.form(key), actor=Actor(user_id=user_id), clock=self.clock
        )

    def company(self, name: str) -> int:
        record = self.store("company").create({"name": name})
        return int(record["id"])

    def list(
        self,
        *,
        filters: list[Filter] | None = None,
        sort: list[Sort] | None = None,
        limit: int = 50,
        cursor: str | None = None,
        offset: int | None = None,
        fields: list[str] | None = None,
        key: str = "specimen",
    ) -> Page:
        t = self.schema.form(key)
        query = ListQuery(
            filters=filters or (),
            sort=sort or (),
            limit=limit,
            cursor=cursor,
            offset=offset,
            fields=fields,
        )
        return list_records(self.conn, t.table, dict(t.children), t.definition, query)

    def count(self, filters: list[Filter], key: str = "specimen") -> int:
        t = self.schema.form(key)
        return count_records(self.conn, t.table, t.definition, filters)

    def rows(self, key: str = "specimen") -> int:
        """Rows in the form's table, soft-deleted ones included."""
        table = self.schema.form(key).table
        return int(self.conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())

    def child_rows(self, key: str = "specimen", sub: str = "docs") -> list[dict[str, Any]]:
        child = self.schema.form(key).children[sub]
        result = self.conn.execute(sa.select(child).order_by(child.c.id))
        return [dict(r._mapping) for r in result]

    def audit_count(self) -> int:
        query = sa.select(sa.func.count()).select_from(audit_table)
        return int(self.conn.execute(query).scalar_one())


def open_forms(conn: sa.Connection) -> Forms:
    return Forms(conn=conn, schema=load_schema(conn))
