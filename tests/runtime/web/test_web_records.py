"""Record endpoints over HTTP: CRUD of every field type, lists, expand, batch, If-Match."""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
import sqlalchemy as sa
from web_support import ID_A, ID_X, SYSTEM_KEYS, Api, records_url

CountStatements = Callable[[sa.Engine | sa.Connection], AbstractContextManager[Any]]
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def full_payload(api: Api, company_id: int) -> dict[str, Any]:
    return {
        "title": "样本一",
        "code": "ABC",
        "notes": "long\ntext",
        "qty": 7,
        "rate": "12.3456",
        "amount": 1234.5,  # a JSON number: read exactly, returned as a string
        "active": True,
        "born": "1990-01-02",
        "seen_at": "2024-05-31T09:30:00+08:00",
        "level": "mid",
        "tags": ["red", "blue"],
        "mobile": "13812345678",
        "mail": "Someone@Example.COM",
        "id_no": ID_X.lower(),
        "photo": "files/a.png",
        "handler": api.clerk.id,
        "team": api.departments["retail"],
        "company": company_id,
        "docs": [{"kind": "passport", "pages": 3, "issuer": company_id}, {"kind": "licence"}],
    }


def without_system(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in SYSTEM_KEYS}


def test_every_field_type_round_trips(api: Api) -> None:
    company = api.create("company", {"name": "Acme", "city": "上海"})
    r = api.client.post(
        records_url("sample"), json=full_payload(api, company["id"]), headers=api.admin.headers
    )
    assert r.status_code == 201, r.text
    assert r.headers["content-type"] == "application/json"
    created = r.json()
    rid = created["id"]
    assert r.headers["etag"] == '"1"'
    assert r.headers["location"] == f"/api/v1/forms/sample/records/{rid}"
    docs = created["docs"]
    assert without_system(created) == {
        "title": "样本一",
        "code": "ABC",
        "notes": "long\ntext",
        "qty": 7,
        "rate": "12.3456",
        "amount": "1234.50",
        "active": True,
        "born": "1990-01-02",
        "seen_at": "2024-05-31T01:30:00Z",  # stored and returned in UTC
        "level": "mid",
        "stage": "new",  # the default
        "tags": ["red", "blue"],
        "mobile": "13812345678",
        "mail": "Someone@example.com",  # the domain is case-insensitive
        "id_no": ID_X,  # the check character upper-cased
        "photo": "files/a.png",
        "handler": api.clerk.id,
        "team": api.departments["retail"],
        "company": company["id"],
        "parent": None,
        "frozen": None,
        "score": None,
        "docs": [
            {"id": docs[0]["id"], "kind": "passport", "pages": 3, "issuer": company["id"]},
            {"id": docs[1]["id"], "kind": "licence", "pages": None, "issuer": None},
        ],
    }
    assert created["version"] == 1
    assert created["created_by"] == created["updated_by"] == created["owner_id"] == api.admin.id
    assert created["dept_id"] is None
    assert TIMESTAMP.match(created["created_at"]) and created["updated_at"] == created["created_at"]

    r = api.client.get(records_url("sample", rid), headers=api.admin.headers)
    assert r.status_code == 200
    assert r.headers["etag"] == '"1"'
    assert r.json() == created

    # PATCH: change a scalar, clear two others, keep the first row (by id,
    # changed), drop the second and add a new one.
    r = api.patch(
        "sample",
        rid,
        {
            "qty": 8,
            "notes": None,
            "tags": None,
            "docs": [{"id": docs[0]["id"], "kind": "licence", "pages": 4}, {"kind": "passport"}],
        },
        version=1,
    )
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == '"2"'
    patched = r.json()
    assert patched["version"] == 2
    assert (patched["qty"], patched["notes"], patched["tags"]) == (8, None, None)
    assert patched["docs"][0] == {
        "id": docs[0]["id"],
        "kind": "licence",
        "pages": 4,
        "issuer": None,
    }
    new_row = patched["docs"][1]
    # (SQLite may hand the dropped row's id to the new row: its ids are rowids.)
    assert new_row["id"] != docs[0]["id"]
    assert new_row == {"id": new_row["id"], "kind": "passport", "pages": None, "issuer": None}
    unchanged = {
        k: v
        for k, v in without_system(created).items()
        if k not in ("qty", "notes", "tags", "docs")
    }
    assert {k: patched[k] for k in unchanged} == unchanged
    assert api.get("sample", rid) == patched

    # DELETE: soft, gone from reads and lists, the row stays.
    headers = {**api.admin.headers, "If-Match": '"2"'}
    r = api.client.delete(records_url("sample", rid), headers=headers)
    assert (r.status_code, r.content) == (204, b"")
    r = api.client.get(records_url("sample", rid), headers=api.admin.headers)
    assert r.status_code == 404
    assert r.json()["detail"] == f"样本 {rid} does not exist."
    assert api.list("sample")["items"] == []
    assert api.rows("sample") == 1


def test_get_with_fields_returns_only_those(api: Api) -> None:
    company = api.create("company", {"name": "Acme"})
    rid = api.create("sample", full_payload(api, company["id"]))["id"]
    r = api.client.get(f"{records_url('sample', rid)}?fields=title,docs", headers=api.admin.headers)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"id", "version", "title", "docs"}
    assert body["title"] == "样本一" and [d["kind"] for d in body["docs"]] == [
        "passport",
        "licence",
    ]
    r = api.client.get(f"{records_url('sample', rid)}?fields=title,nope", headers=api.admin.headers)
    assert r.status_code == 400
    assert r.json()["errors"] == [{"pointer": "/query/fields", "message": "unknown field 'nope'"}]


def test_sub_table_row_ids_must_belong_to_the_record(api: Api) -> None:
    first = api.create("sample", {"title": "one", "docs": [{"kind": "passport"}]})
    second = api.create("sample", {"title": "two", "docs": [{"kind": "licence"}]})
    foreign_row = first["docs"][0]["id"]
    r = api.patch("sample", second["id"], {"docs": [{"id": foreign_row, "kind": "licence"}]}, 1)
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {"pointer": "/docs/0/id", "message": "no such row in this record"}
    ]
    assert api.get("sample", first["id"])["docs"] == first["docs"]
    assert api.get("sample", second["id"]) == second


def test_links_must_exist(api: Api) -> None:
    r = api.client.post(
        records_url("sample"),
        json={
            "title": "ab",
            "company": 999,
            "handler": 998,
            "docs": [{"kind": "passport", "issuer": 997}],
        },
        headers=api.admin.headers,
    )
    assert r.status_code == 422
    assert sorted(r.json()["errors"], key=lambda e: e["pointer"]) == [
        {"pointer": "/company", "message": "company record 999 does not exist"},
        {"pointer": "/docs/0/issuer", "message": "company record 997 does not exist"},
        {"pointer": "/handler", "message": "user 998 does not exist"},
    ]
    assert api.rows("sample") == 0


# --- lists ----------------------------------------------------------------------


@pytest.fixture
def listed(api: Api) -> dict[str, int]:
    """Six samples with varied values; returns their ids by title."""
    acme = api.create("company", {"name": "Acme"})["id"]
    rows = [
        {
            "title": "alpha",
            "qty": 5,
            "amount": "100.50",
            "born": "1990-01-01",
            "tags": ["red"],
            "level": "low",
            "active": True,
            "company": acme,
            "mobile": "13800000001",
            "seen_at": "2024-01-01T00:00:00Z",
        },
        {
            "title": "bravo",
            "qty": 1,
            "amount": "99.99",
            "born": "1985-05-05",
            "tags": ["green"],
            "level": "mid",
            "active": False,
            "seen_at": "2024-02-01T00:00:00Z",
        },
        {
            "title": "charlie",
            "qty": 9,
            "amount": "2000",
            "born": "2000-12-31",
            "tags": ["red", "blue"],
            "level": "high",
            "active": True,
            "company": acme,
        },
        {"title": "delta", "qty": 5, "level": "low", "tags": []},
        {"title": "echo 王", "qty": 0, "amount": "0.01", "mobile": "13800000002"},
        {"title": "foxtrot", "qty": 9, "rate": "-1.5", "level": "mid"},
    ]
    return {row["title"]: api.create("sample", row)["id"] for row in rows}


def titles(page: dict[str, Any]) -> list[str]:
    return [item["title"] for item in page["items"]]


FILTERS = {
    "qty=5": ["alpha", "delta"],
    "qty__gte=5&qty__lt=9": ["alpha", "delta"],
    "qty__ne=5": ["bravo", "charlie", "echo 王", "foxtrot"],
    "qty__in=0,1": ["bravo", "echo 王"],
    "title__contains=RAV": ["bravo"],
    "title__contains=王": ["echo 王"],
    "title__contains=%25": [],  # a literal "%": LIKE wildcards are escaped
    "level__in=low,high": ["alpha", "charlie", "delta"],
    "level__isnull=true": ["echo 王"],
    "tags__contains=red": ["alpha", "charlie"],
    "tags__isnull=true": ["echo 王", "foxtrot"],
    "amount__gt=99.99": ["alpha", "charlie"],
    "amount__lte=100.5": ["alpha", "bravo", "echo 王"],
    "rate__lt=0": ["foxtrot"],
    "born__lt=1990-01-02": ["alpha", "bravo"],
    "seen_at__gte=2024-01-01T08:00:01%2B08:00": ["bravo"],
    "mobile__isnull=false": ["alpha", "echo 王"],
    "company__isnull=false&qty__gt=5": ["charlie"],
    "level=mid&qty=9": ["foxtrot"],
}


def test_filters(api: Api, listed: dict[str, int]) -> None:
    found = {query: titles(api.list("sample", query)) for query in FILTERS}
    assert found == FILTERS


def test_boolean_filters(api: Api, listed: dict[str, int]) -> None:
    assert titles(api.list("sample", "active=true")) == ["alpha", "charlie"]
    assert titles(api.list("sample", "active=false")) == ["bravo"]


def test_filter_by_link_and_system_field(api: Api, listed: dict[str, int]) -> None:
    acme = api.list("company")["items"][0]["id"]
    assert titles(api.list("sample", f"company={acme}")) == ["alpha", "charlie"]
    other = api.create("sample", {"title": "by clerk"}, who=api.clerk)
    page = api.list("sample", f"created_by={api.clerk.id}")
    assert [i["id"] for i in page["items"]] == [other["id"]]


def test_count_and_fields(api: Api, listed: dict[str, int]) -> None:
    page = api.list("sample", "qty__gte=5&count=true&limit=2&fields=title,qty,docs")
    assert page["total"] == 4
    assert page["limit"] == 2
    assert [set(i) for i in page["items"]] == [{*SYSTEM_KEYS, "title", "qty", "docs"}] * 2
    assert [(i["title"], i["qty"], i["docs"]) for i in page["items"]] == [
        ("alpha", 5, []),
        ("charlie", 9, []),
    ]
    assert "total" not in api.list("sample", "qty__gte=5")


def test_cursor_walks_every_record_once_in_sort_order(api: Api, listed: dict[str, int]) -> None:
    seen: list[str] = []
    query = "sort=-qty,title&limit=4"
    cursors = []
    while True:
        page = api.list("sample", query)
        assert len(page["items"]) <= 4
        seen += titles(page)
        if page["next_cursor"] is None:
            break
        cursors.append(page["next_cursor"])
        query = f"sort=-qty,title&limit=4&cursor={page['next_cursor']}"
    assert seen == ["charlie", "foxtrot", "alpha", "delta", "bravo", "echo 王"]
    assert len(cursors) == 1
    # A new record sorting before the cursor does not shift the next page.
    api.create("sample", {"title": "golf", "qty": 10})
    page = api.list("sample", f"sort=-qty,title&limit=4&cursor={cursors[0]}")
    assert titles(page) == ["bravo", "echo 王"]
    # The cursor belongs to its sort order.
    r = api.client.get(
        f"{records_url('sample')}?sort=title&limit=4&cursor={cursors[0]}", headers=api.admin.headers
    )
    assert r.status_code == 400
    assert r.json()["detail"] == "The cursor belongs to a different sort order; start again."


def test_pages(api: Api, listed: dict[str, int]) -> None:
    assert titles(api.list("sample", "sort=title&limit=2&page=2")) == ["charlie", "delta"]
    assert api.list("sample", "sort=title&limit=2&page=2")["next_cursor"] is None
    assert titles(api.list("sample", "sort=title&limit=2&page=4")) == []


def test_sort_needs_an_indexed_field(api: Api, listed: dict[str, int]) -> None:
    r = api.client.get(f"{records_url('sample')}?sort=notes", headers=api.admin.headers)
    assert r.status_code == 400
    (error,) = r.json()["errors"]
    assert error["pointer"] == "/query/sort/0"
    assert error["message"].startswith("sort on one of: id, created_at, updated_at, title, qty")


# --- expand -----------------------------------------------------------------------


def test_expand_embeds_linked_records_with_one_query_per_relation(
    api: Api, count_statements: CountStatements
) -> None:
    acme = api.create("company", {"name": "Acme"})
    globex = api.create("company", {"name": "Globex"})
    root = api.create("sample", {"title": "root", "company": acme["id"]})
    for i in range(6):
        company = (acme, globex, None)[i % 3]
        api.create(
            "sample",
            {"title": f"child {i}", "company": company and company["id"], "parent": root["id"]},
        )

    def statements(query: str) -> tuple[int, dict[str, Any]]:
        with count_statements(api.engine) as log:
            page = api.list("sample", query)
        return log.count, page

    plain, _ = statements("sort=title")
    one, page = statements("sort=title&expand=company")
    two, both = statements("sort=title&expand=company,parent")
    assert (one - plain, two - plain) == (1, 2)

    by_title = {item["title"]: item for item in page["items"]}
    assert by_title["child 0"]["expand"] == {"company": acme}
    assert by_title["child 1"]["expand"] == {"company": globex}
    assert by_title["child 2"]["expand"] == {"company": None}
    expanded = {item["title"]: item["expand"] for item in both["items"]}
    assert expanded["child 4"]["company"]["name"] == "Globex"
    assert expanded["child 4"]["parent"]["id"] == root["id"]
    assert expanded["child 4"]["parent"]["title"] == "root"
    assert expanded["root"] == {"company": acme, "parent": None}
    # Without any link value, expanding costs nothing.
    none, _ = statements("title=nobody&expand=company")
    assert none == statements("title=nobody")[0]


def test_expand_only_link_fields(api: Api) -> None:
    r = api.client.get(f"{records_url('sample')}?expand=company,title", headers=api.admin.headers)
    assert r.status_code == 400
    assert r.json()["errors"] == [
        {"pointer": "/query/expand/1", "message": "'title' is not a link field"}
    ]


# --- batch ------------------------------------------------------------------------

BATCH = f"{records_url('sample')}:batch"


def test_batch_creates_and_updates_together(api: Api) -> None:
    existing = api.create("sample", {"title": "old", "qty": 1})
    operations = [
        {"op": "create", "data": {"title": "new one", "docs": [{"kind": "passport"}]}},
        {"op": "update", "id": existing["id"], "version": 1, "data": {"qty": 2}},
        {"op": "create", "data": {"title": "new two"}},
    ]
    r = api.client.post(BATCH, json={"operations": operations}, headers=api.admin.headers)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [(x["op"], x["version"]) for x in results] == [
        ("create", 1),
        ("update", 2),
        ("create", 1),
    ]
    assert results[1]["id"] == existing["id"]
    assert results[0]["record"] == api.get("sample", results[0]["id"])
    assert api.get("sample", existing["id"])["qty"] == 2
    assert sorted(titles(api.list("sample"))) == ["new one", "new two", "old"]


def test_batch_is_all_or_nothing(api: Api) -> None:
    existing = api.create("sample", {"title": "old", "qty": 1, "mail": "old@example.com"})
    operations: list[dict[str, Any]] = [
        {"op": "create", "data": {"title": f"ok {i}", "mail": f"u{i}@example.com"}}
        for i in range(3)
    ]
    operations += [
        {"op": "create", "data": {"name": "x", "title": "y"}},  # 3: unknown field, too short
        {"op": "update", "id": existing["id"], "version": 1, "data": {"qty": 5}},  # 4: fine
        {"op": "update", "id": existing["id"], "version": 1, "data": {"qty": 6}},  # 5: stale now
        {"op": "create", "data": {"title": "dup", "mail": "old@example.com"}},  # 6: unique
        {"op": "delete", "id": existing["id"]},  # 7: not a batch operation
        {"op": "update", "data": {"qty": 1}},  # 8: no id
        {"op": "create", "data": {"title": "zz", "docs": [{"pages": 0}]}},  # 9
        {"op": "update", "id": 2**64, "version": 1, "data": {}},  # 10: beyond 64 bits
        {"op": "update", "id": True, "version": 1, "data": {}},  # 11: not an integer
    ]
    r = api.client.post(BATCH, json={"operations": operations}, headers=api.admin.headers)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["detail"] == "The batch was rejected: 10 problem(s); nothing was saved."
    assert body["errors"] == [
        {"pointer": "/operations/3/data/name", "message": "unknown field 'name'"},
        {"pointer": "/operations/3/data/title", "message": "标题 must be at least 2 characters"},
        {
            "pointer": "/operations/5",
            "message": f"样本 {existing['id']} was changed by someone else (you read version 1, "
            "it is now 2); reload it and apply your change again.",
        },
        {
            "pointer": "/operations/6/data/mail",
            "message": f"mail old@example.com is already used by record {existing['id']}",
        },
        {"pointer": "/operations/7", "message": "op is 'create' or 'update'"},
        {
            "pointer": "/operations/8",
            "message": "an update needs the integer 'id' and the 'version' you read",
        },
        {"pointer": "/operations/9/data/docs/0/kind", "message": "类型 is required"},
        {"pointer": "/operations/9/data/docs/0/pages", "message": "pages must be at least 1"},
        {
            "pointer": "/operations/10",
            "message": "an update needs the integer 'id' and the 'version' you read",
        },
        {
            "pointer": "/operations/11",
            "message": "an update needs the integer 'id' and the 'version' you read",
        },
    ]
    # Nothing was saved: not the three good creates, not the good update.
    assert titles(api.list("sample")) == ["old"]
    assert api.get("sample", existing["id"])["version"] == 1
    assert api.rows("sample") == 1


@pytest.mark.parametrize(
    "body",
    [{}, {"operations": []}, {"operations": {}}, [], {"operations": [{"op": "create"}] * 1001}],
)
def test_batch_shape(api: Api, body: Any) -> None:
    r = api.client.post(BATCH, json=body, headers=api.admin.headers)
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {"pointer": "/operations", "message": "a list of 1..1000 operations"}
    ]


# --- optimistic locking -------------------------------------------------------


def test_two_clients_updating_the_same_record(api: Api) -> None:
    rid = api.create("sample", {"title": "shared", "qty": 1, "level": "low"})["id"]
    # Both read version 1.
    seen_by_admin = api.client.get(records_url("sample", rid), headers=api.admin.headers)
    seen_by_clerk = api.client.get(records_url("sample", rid), headers=api.clerk.headers)
    assert seen_by_admin.headers["etag"] == seen_by_clerk.headers["etag"] == '"1"'

    first = api.client.patch(
        records_url("sample", rid),
        json={"qty": 2},
        headers={**api.admin.headers, "If-Match": seen_by_admin.headers["etag"]},
    )
    assert first.status_code == 200 and first.headers["etag"] == '"2"'
    second = api.client.patch(
        records_url("sample", rid),
        json={"level": "high"},
        headers={**api.clerk.headers, "If-Match": seen_by_clerk.headers["etag"]},
    )
    assert second.status_code == 412
    assert second.headers["content-type"] == "application/problem+json"
    assert second.json() == {
        "type": "urn:formflow:problem:stale-version",
        "title": "Stale version",
        "status": 412,
        "detail": f"样本 {rid} was changed by someone else (you read version 1, it is now 2); "
        "reload it and apply your change again.",
        "current_version": 2,
    }
    current = api.get("sample", rid)
    assert (current["version"], current["qty"], current["level"]) == (2, 2, "low")
    # The clerk re-reads and applies the change: nothing is lost.
    retry = api.client.patch(
        records_url("sample", rid),
        json={"level": "high"},
        headers={**api.clerk.headers, "If-Match": 'W/"2"'},
    )
    assert retry.status_code == 200
    final = api.get("sample", rid)
    assert (final["version"], final["qty"], final["level"], final["updated_by"]) == (
        3,
        2,
        "high",
        api.clerk.id,
    )


def test_writes_need_if_match(api: Api) -> None:
    rid = api.create("sample", {"title": "shared", "qty": 1})["id"]
    url = records_url("sample", rid)
    for r in (
        api.client.patch(url, json={"qty": 2}, headers=api.admin.headers),
        api.client.delete(url, headers=api.admin.headers),
    ):
        assert r.status_code == 428
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json() == {
            "type": "urn:formflow:problem:precondition-required",
            "title": "Precondition required",
            "status": 428,
            "detail": "Send If-Match with the ETag you read, so that no one else's change is "
            "overwritten.",
        }
    r = api.client.patch(url, json={"qty": 2}, headers={**api.admin.headers, "If-Match": "*"})
    assert r.status_code == 400
    assert r.json()["detail"] == "If-Match must be the record's ETag, like \"3\"; got '*'."
    r = api.client.delete(url, headers={**api.admin.headers, "If-Match": '"7"'})
    assert r.status_code == 412
    assert r.json()["current_version"] == 1
    assert api.get("sample", rid)["qty"] == 1 and api.get("sample", rid)["version"] == 1


def test_write_to_a_deleted_record_is_404(api: Api) -> None:
    rid = api.create("sample", {"title": "gone"})["id"]
    url = records_url("sample", rid)
    assert (
        api.client.delete(url, headers={**api.admin.headers, "If-Match": '"1"'}).status_code == 204
    )
    r = api.patch("sample", rid, {"qty": 1}, version=2)
    assert r.status_code == 404
    assert r.json()["detail"] == f"样本 {rid} does not exist."


def test_patch_without_changes_keeps_the_version(api: Api) -> None:
    created = api.create("sample", {"title": "same", "qty": 3, "docs": [{"kind": "passport"}]})
    docs = created["docs"]
    r = api.patch("sample", created["id"], {"qty": 3, "docs": docs}, version=1)
    assert r.status_code == 200
    assert r.headers["etag"] == '"1"'
    assert r.json() == created


def test_unique_values_conflict(api: Api) -> None:
    first = api.create("sample", {"title": "one", "id_no": ID_A})
    r = api.client.post(
        records_url("sample"), json={"title": "two", "id_no": ID_A}, headers=api.admin.headers
    )
    assert r.status_code == 409
    assert r.json()["errors"] == [
        {"pointer": "/id_no", "message": f"身份证号 {ID_A} is already used by record {first['id']}"}
    ]
    assert api.rows("sample") == 1


def test_a_batch_of_creates_costs_the_same_statements_for_2_or_200_records(
    api: Api, count_statements: CountStatements
) -> None:
    def statements(n: int) -> int:
        operations = [{"op": "create", "data": {"title": f"n{n} #{i}"}} for i in range(n)]
        with count_statements(api.engine) as log:
            r = api.client.post(BATCH, json={"operations": operations}, headers=api.admin.headers)
        assert r.status_code == 200, r.text
        assert [x["record"]["title"] for x in r.json()["results"]] == [
            f"n{n} #{i}" for i in range(n)
        ]
        return log.count

    statements(1)  # warm the schema cache
    assert statements(2) == statements(200)
