"""The permission matrix: every generated endpoint × every bank role × records in and
out of scope × every action, through the REST API, against roles.json read directly.

The bank CRM app with its sample data is loaded once per database; each demo role is
played by a staff member of the sample bank (plus the administrator). For every form
the test asks, as each of them:

* list (every page, with ``count``) — exactly the records in scope, each with exactly
  the visible fields, masked ones masked;
* get and history of records inside and outside the read scope — 200 or the same 404
  as a missing record (403 when the form may not be read at all);
* update and delete of those records with a stale ``If-Match`` — 412 inside the scope
  (the scope check passed, nothing is written), 404 outside, 403 without the action;
  and a real change to a field below level write — 403 naming the field;
* create and batch create — 201/200 filed under the caller, or 403;
* expand of every link field, filters and sorts on masked fields.

No answer may differ from the oracle: no leak anywhere.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from permission_oracle import Oracle, Person

from engine.apps import import_app
from engine.catalog import Schema, load_schema
from engine.system import department_closure_table, user_department_table, user_table
from permissions.apps import import_roles
from permissions.masking import mask, mask_kind
from runtime.auth.service import create_user, issue_session
from runtime.sample_data import load_sample_data
from runtime.settings import Settings
from runtime.web.app import create_app

APP = Path(__file__).resolve().parents[2] / "examples" / "bank_crm"
TODAY = dt.date(2026, 3, 16)
PLAYERS = {
    "admin": None,  # superuser
    "hq_zhao": "hq_admin",
    "branch_li": "branch_head",
    "rm_wang": "relationship_manager",
    "risk_qian": "risk_officer",
    "wm_he": "wealth_team",
    "cc_gao": "call_center_agent",
    "col_lin": "outsourced_collector",
}
SYSTEM = ("id", "version", "created_at", "created_by", "updated_at", "updated_by")
SYSTEM += ("owner_id", "dept_id")
SAMPLES_PER_SIDE = 3  # records inside and outside each scope, per player and form


@dataclass
class Player:
    username: str
    person: Person
    headers: dict[str, str]
    primary_dept: int | None


@dataclass
class Bank:
    client: TestClient
    engine: sa.Engine
    schema: Schema
    oracle: Oracle
    players: dict[str, Player]

    def rows(self, form: str) -> list[dict[str, Any]]:
        """Every live record of ``form`` as stored (what the oracle judges)."""
        t = self.schema.form(form).table
        with self.engine.connect() as conn:
            result = conn.execute(sa.select(t).where(t.c.deleted_at.is_(None)).order_by(t.c.id))
            return [dict(r._mapping) for r in result]

    def as_admin(self, method: str, url: str, **kw: Any) -> Any:
        r = self.client.request(method, url, headers=self.players["admin"].headers, **kw)
        assert r.status_code < 300, r.text
        return r.json()


@pytest.fixture
def bank(engine: sa.Engine, database_url: str) -> Iterator[Bank]:
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        import_app(conn, APP)
        import_roles(conn, APP)
        load_sample_data(conn, customers=60, today=TODAY)
        create_user(conn, username="admin", password=None, is_superuser=True, now=now)
        # Hand a few records of every form to the collector, who otherwise owns none,
        # and make some of the West Lake relationship manager's customers private.
        schema = load_schema(conn)
        ids = {r.username: r.id for r in conn.execute(sa.select(user_table))}
        for form in schema.forms:
            t = schema.form(form).table
            first = sa.select(t.c.id).order_by(t.c.id.desc()).limit(2).scalar_subquery()
            conn.execute(sa.update(t).where(t.c.id.in_(first)).values(owner_id=ids["col_lin"]))
        c = schema.form("customer").table
        wang = sa.select(c.c.id).where(c.c.owner_id == ids["rm_wang"]).limit(2).scalar_subquery()
        conn.execute(sa.update(c).where(c.c.id.in_(wang)).values(tier="private"))
        players = {}
        for username, role in PLAYERS.items():
            uid = ids[username]
            token, _ = issue_session(conn, uid, now=now, ttl=dt.timedelta(hours=2))
            m, cl = user_department_table, department_closure_table
            depts = frozenset(
                conn.execute(sa.select(m.c.department_id).where(m.c.user_id == uid)).scalars()
            )
            tree = frozenset(
                conn.execute(
                    sa.select(cl.c.descendant_id).where(cl.c.ancestor_id.in_(depts))
                ).scalars()
            )
            primary = conn.execute(
                sa.select(m.c.department_id).where(m.c.user_id == uid, m.c.is_primary)
            ).scalar_one_or_none()
            person = Person(
                uid, frozenset([role] if role else []), depts, tree, superuser=role is None
            )
            headers = {"Authorization": f"Bearer {token}"}
            players[username] = Player(username, person, headers, primary)
    app = create_app(Settings(database_url=database_url), engine=engine, schema_ttl=0)
    with TestClient(app) as client:
        yield Bank(client, engine, schema, Oracle(), players)


def url(form: str, record_id: int | None = None, suffix: str = "") -> str:
    base = f"/api/v1/forms/{form}/records"
    return (base if record_id is None else f"{base}/{record_id}") + suffix


def expected_record(bank: Bank, p: Player, form: str, whole: dict[str, Any]) -> dict[str, Any]:
    """The record as ``p`` must see it, from the administrator's whole view."""
    definition = bank.schema.form(form).definition
    out = {}
    for key, value in whole.items():
        f = definition.field(key)
        if f is None:
            out[key] = value
            continue
        level = bank.oracle.level(p.person, form, key)
        if level == "hidden":
            continue
        out[key] = mask(value, mask_kind(f)) if level == "mask" and value is not None else value
    return out


def pick(rows: list[dict[str, Any]], keep: Any) -> list[dict[str, Any]]:
    return [r for r in rows if keep(r)][:SAMPLES_PER_SIDE]


def test_permission_matrix(bank: Bank, subtests: Any) -> None:
    checked = itertools.count()
    for username, form in itertools.product(bank.players, sorted(bank.schema.forms)):
        with subtests.test(user=username, form=form):
            check_reads(bank, bank.players[username], form, checked)
            check_writes(bank, bank.players[username], form, checked)
    for username, form in itertools.product(bank.players, sorted(bank.schema.forms)):
        with subtests.test(user=username, form=form, action="create"):
            check_create(bank, bank.players[username], form, checked)
    # Every player × form × action was asked, on many records each.
    assert next(checked) > 2_000


def check_reads(bank: Bank, p: Player, form: str, checked: Iterator[int]) -> None:
    o, client = bank.oracle, bank.client
    rows = bank.rows(form)
    may_read = o.allowed(p.person, form, "read")
    listed = client.get(url(form) + "?count=true&limit=200", headers=p.headers)
    next(checked)
    if not may_read:
        assert listed.status_code == 403, listed.text
        for r in rows[:2]:
            for suffix in ("", "/history"):
                got = client.get(url(form, r["id"], suffix), headers=p.headers)
                assert got.status_code == 403, (suffix, got.text)
                next(checked)
        return
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    cursor = listed.json()["next_cursor"]
    while cursor:
        more = client.get(url(form) + f"?limit=200&cursor={cursor}", headers=p.headers).json()
        items += more["items"]
        cursor = more["next_cursor"]
    expected_ids = [r["id"] for r in rows if o.in_scope(p.person, form, "read", r)]
    assert [i["id"] for i in items] == expected_ids
    assert listed.json()["total"] == len(expected_ids)
    whole = {
        i["id"]: i
        for i in bank.as_admin("GET", url(form) + "?limit=200")["items"]
        if i["id"] in set(expected_ids[:50])
    }
    for item in items[:50]:
        assert item == expected_record(bank, p, form, whole[item["id"]])
        next(checked)
    inside = pick(rows, lambda r: o.in_scope(p.person, form, "read", r))
    outside = pick(rows, lambda r: not o.in_scope(p.person, form, "read", r))
    missing = client.get(url(form, 9_000_000), headers=p.headers)
    assert missing.status_code == 404
    for r in inside:
        got = client.get(url(form, r["id"]), headers=p.headers)
        assert got.status_code == 200, got.text
        whole_one = bank.as_admin("GET", url(form, r["id"]))
        assert got.json() == expected_record(bank, p, form, whole_one)
        history = client.get(url(form, r["id"], "/history"), headers=p.headers)
        assert history.status_code == 200, history.text
        for entry in history.json()["items"]:
            for key, change in entry["changes"].items():
                level = o.level(p.person, form, key)
                assert level != "hidden", key
                if level == "mask" and change["after"] is not None:
                    assert change["after"] != whole_one[key] or whole_one[key] is None, key
        next(checked)
    for r in outside:
        for suffix in ("", "/history"):
            got = client.get(url(form, r["id"], suffix), headers=p.headers)
            assert got.status_code == 404, (suffix, got.text)
            assert got.json()["detail"] == missing.json()["detail"].replace("9000000", str(r["id"]))
            next(checked)
    check_query_refusals(bank, p, form, checked)
    check_expand(bank, p, form, items[:20], checked)


def check_query_refusals(bank: Bank, p: Player, form: str, checked: Iterator[int]) -> None:
    definition = bank.schema.form(form).definition
    for f in definition.column_fields:
        level = bank.oracle.level(p.person, form, f.key)
        if level not in ("hidden", "mask") or "isnull" not in f.type.filter_ops:
            continue
        got = bank.client.get(url(form) + f"?{f.key}__isnull=false", headers=p.headers)
        assert got.status_code == (400 if level == "hidden" else 403), got.text
        assert got.json()["errors"][0]["pointer"] == f"/query/{f.key}__isnull"
        next(checked)


def check_expand(
    bank: Bank, p: Player, form: str, items: list[dict[str, Any]], checked: Iterator[int]
) -> None:
    definition = bank.schema.form(form).definition
    for f in definition.column_fields:
        if f.link_target is None:
            continue
        got = bank.client.get(url(form) + f"?limit=20&expand={f.key}", headers=p.headers)
        next(checked)
        if bank.oracle.level(p.person, form, f.key) == "hidden":
            assert got.status_code == 400, got.text
            continue
        if not bank.oracle.allowed(p.person, f.link_target, "read"):
            assert got.status_code == 403, got.text
            continue
        assert got.status_code == 200, got.text
        target_rows = {r["id"]: r for r in bank.rows(f.link_target)}
        for item in got.json()["items"]:
            linked, embedded = item.get(f.key), item["expand"][f.key]
            if linked is None:
                assert embedded is None
                continue
            visible = bank.oracle.in_scope(p.person, f.link_target, "read", target_rows[linked])
            if not visible:
                assert embedded is None, (f.key, linked)
            else:
                whole = bank.as_admin("GET", url(f.link_target, linked))
                assert embedded == expected_record(bank, p, f.link_target, whole)


def check_writes(bank: Bank, p: Player, form: str, checked: Iterator[int]) -> None:
    o, client = bank.oracle, bank.client
    rows = bank.rows(form)
    stale = {**p.headers, "If-Match": '"999999"'}
    for action, method in (("update", "PATCH"), ("delete", "DELETE")):
        allowed = o.allowed(p.person, form, action)
        inside = pick(rows, lambda r, a=action: o.in_scope(p.person, form, a, r))
        outside = pick(rows, lambda r, a=action: not o.in_scope(p.person, form, a, r))
        for r, within in [(r, True) for r in inside] + [(r, False) for r in outside]:
            body = {"json": {}} if method == "PATCH" else {}
            got = client.request(method, url(form, r["id"]), headers=stale, **body)
            want = 403 if not allowed else 412 if within else 404
            assert got.status_code == want, (action, r["id"], got.text)
            next(checked)
    # A real change of a field the player may see but not write: refused, naming it.
    if not o.allowed(p.person, form, "update"):
        return
    definition = bank.schema.form(form).definition
    inside = pick(rows, lambda r: o.in_scope(p.person, form, "update", r))
    for f in definition.column_fields:
        level = o.level(p.person, form, f.key)
        if level not in ("mask", "read") or not f.writable or not inside:
            continue
        r = inside[0]
        change = {f.key: "13900000000" if f.type.name == "phone" else None}
        if r[f.key] is None:
            continue
        got = client.patch(
            url(form, r["id"]),
            json=change,
            headers={**p.headers, "If-Match": f'"{r["version"]}"'},
        )
        assert got.status_code == 403, got.text
        assert got.json()["errors"][0]["pointer"] == f"/{f.key}"
        next(checked)


def create_payload(bank: Bank, p: Player, form: str, n: int) -> dict[str, Any] | None:
    """A valid record for ``form`` with only what ``p`` may write, or None if there is none."""
    definition = bank.schema.form(form).definition
    template = bank.as_admin("GET", url(form) + "?limit=1")["items"][0]
    payload: dict[str, Any] = {}
    for f in definition.fields:
        if not f.writable or bank.oracle.level(p.person, form, f.key) != "write":
            if f.required:
                return None
            continue
        value = template.get(f.key)
        if f.link_target is not None:
            readable = [
                r["id"]
                for r in bank.rows(f.link_target)
                if bank.oracle.in_scope(p.person, f.link_target, "read", r)
            ]
            value = readable[0] if readable else None
        elif f.unique:
            value = f"MX-{n:06d}" if f.required else None
        if value is None and f.required:
            return None
        if value is not None:
            payload[f.key] = value
    return payload


def check_create(bank: Bank, p: Player, form: str, checked: Iterator[int]) -> None:
    serial = next(checked)
    payload = create_payload(bank, p, form, serial)
    allowed = bank.oracle.allowed(p.person, form, "create")
    got = bank.client.post(url(form), json=payload or {}, headers=p.headers)
    if not allowed:
        assert got.status_code == 403, got.text
        batch = bank.client.post(
            url(form).replace("/records", "/records:batch"),
            json={"operations": [{"op": "create", "data": payload or {}}]},
            headers=p.headers,
        )
        assert batch.status_code == 403, batch.text
        return
    if payload is None:
        assert got.status_code == 422, got.text
        return
    assert got.status_code == 201, got.text
    record = got.json()
    assert (record["owner_id"], record["dept_id"]) == (p.person.user_id, p.primary_dept)
    whole = bank.as_admin("GET", url(form, record["id"]))
    if bank.oracle.allowed(p.person, form, "read"):
        assert record == expected_record(bank, p, form, whole)
    # Someone else's field value (the collector's ID number cap) cannot be sent.
    capped = [
        f
        for f in bank.schema.form(form).definition.column_fields
        if f.writable and bank.oracle.level(p.person, form, f.key) in ("mask", "read")
    ]
    for f in capped[:1]:
        refused = bank.client.post(
            url(form), json={**payload, f.key: whole.get(f.key) or "x"}, headers=p.headers
        )
        assert refused.status_code in (403, 422), refused.text
        if refused.status_code == 403:
            assert refused.json()["errors"][0]["pointer"] == f"/{f.key}"
