"""The baseline: what a developer would write by hand for the customer table.

A hand-declared SQLAlchemy Core table, hand-written queries and a
hand-written row-to-JSON function producing exactly what Formflow's
generated code returns (the benchmarks check the bytes are equal before
timing). The column types reuse Formflow's storage codecs (UTC instants,
exact decimals as scaled integers on SQLite) because that is how the data
is stored: any program reading this table needs them.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import sqlalchemy as sa

from engine.forms.columns import ExactDecimal, UTCDateTime

metadata = sa.MetaData()

customer = sa.Table(
    "form_customer",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("created_at", UTCDateTime),
    sa.Column("created_by", sa.BigInteger),
    sa.Column("updated_at", UTCDateTime),
    sa.Column("updated_by", sa.BigInteger),
    sa.Column("owner_id", sa.BigInteger),
    sa.Column("dept_id", sa.BigInteger),
    sa.Column("version", sa.Integer),
    sa.Column("deleted_at", UTCDateTime),
    sa.Column("customer_no", sa.String(32)),
    sa.Column("customer_type", sa.String(64)),
    sa.Column("name", sa.String(100)),
    sa.Column("id_number", sa.String(18)),
    sa.Column("phone", sa.String(20)),
    sa.Column("email", sa.String(254)),
    sa.Column("birthday", sa.Date),
    sa.Column("annual_income", ExactDecimal(18, 2)),
    sa.Column("branch", sa.BigInteger),
    sa.Column("owner_rm", sa.BigInteger),
    sa.Column("source_channel", sa.String(64)),
    sa.Column("consent_marketing", sa.Boolean),
    sa.Column("tier", sa.String(64)),
    sa.Column("tags", sa.JSON),
    sa.Column("aum", ExactDecimal(18, 2)),
    sa.Column("status", sa.String(64)),
)

c = customer.c
# What a record returns: every column but deleted_at.
COLUMNS = [col for col in customer.columns if col.name != "deleted_at"]


def _instant(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def customer_json(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "version": r.version,
        "created_at": _instant(r.created_at),
        "created_by": r.created_by,
        "updated_at": _instant(r.updated_at),
        "updated_by": r.updated_by,
        "owner_id": r.owner_id,
        "dept_id": r.dept_id,
        "customer_no": r.customer_no,
        "customer_type": r.customer_type,
        "name": r.name,
        "id_number": r.id_number,
        "phone": r.phone,
        "email": r.email,
        "birthday": None if r.birthday is None else r.birthday.isoformat(),
        "annual_income": None if r.annual_income is None else str(r.annual_income),
        "branch": r.branch,
        "owner_rm": r.owner_rm,
        "source_channel": r.source_channel,
        "consent_marketing": r.consent_marketing,
        "tier": r.tier,
        "tags": r.tags,
        "aum": None if r.aum is None else str(r.aum),
        "status": r.status,
    }


def encode_cursor(sort: str, values: list[Any], last_id: int) -> str:
    raw = json.dumps({"s": sort, "v": values, "id": last_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[list[Any], int]:
    data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    return data["v"], int(data["id"])


def dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str).encode()


# -- queries ---------------------------------------------------------------------


def get_customer(conn: sa.Connection, record_id: int) -> dict[str, Any] | None:
    row = conn.execute(
        sa.select(*COLUMNS).where(c.id == record_id, c.deleted_at.is_(None))
    ).one_or_none()
    return None if row is None else customer_json(row)


def page_by_id(
    conn: sa.Connection, limit: int, after_id: int | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """A page in id order, after ``after_id``."""
    query = sa.select(*COLUMNS).where(c.deleted_at.is_(None))
    if after_id is not None:
        query = query.where(c.id > after_id)
    rows = conn.execute(query.order_by(c.id).limit(limit + 1)).all()
    items = [customer_json(r) for r in rows[:limit]]
    cursor = encode_cursor("", [], rows[limit - 1].id) if len(rows) > limit else None
    return items, cursor


def page_active_by_birthday_desc(
    conn: sa.Connection,
    limit: int,
    born_from: dt.date,
    after: tuple[dt.date, int] | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Active customers born on or after ``born_from``, youngest first.

    The keyset condition carries the redundant ``birthday <= :b`` so that an
    index on birthday can seek straight to the cursor.
    """
    query = sa.select(*COLUMNS).where(
        c.deleted_at.is_(None), c.status == "active", c.birthday >= born_from
    )
    if after is not None:
        b, last_id = after
        query = query.where(
            c.birthday <= b, sa.or_(c.birthday < b, sa.and_(c.birthday == b, c.id < last_id))
        )
    rows = conn.execute(query.order_by(c.birthday.desc(), c.id.desc()).limit(limit + 1)).all()
    items = [customer_json(r) for r in rows[:limit]]
    cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        cursor = encode_cursor("-birthday", [last.birthday.isoformat()], last.id)
    return items, cursor
