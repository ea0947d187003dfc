"""Every error is an RFC 9457 problem document with pointers to what was wrong."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
from fastapi.testclient import TestClient
from web_support import Api, MakeApp, records_url

PROBLEM_KEYS = {"type", "title", "status", "detail"}


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    """The body of ``r``, checked to be a problem document with ``status``."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert PROBLEM_KEYS <= set(body) <= PROBLEM_KEYS | {"errors", "current_version"}
    assert body["status"] == status
    assert all(isinstance(body[k], str) and body[k] for k in ("type", "title", "detail"))
    for error in body.get("errors", []):
        assert set(error) == {"pointer", "message"}
        assert error["pointer"] == "" or error["pointer"].startswith("/")
    return body


def test_400_limit_above_the_maximum(api: Api) -> None:
    r = api.client.get(f"{records_url('sample')}?limit=501", headers=api.admin.headers)
    assert problem(r, 400) == {
        "type": "urn:formflow:problem:invalid-query",
        "title": "Invalid query",
        "status": 400,
        "detail": "The list query is not valid.",
        "errors": [{"pointer": "/query/limit", "message": "limit must be 1..500"}],
    }
    assert api.list("sample", "limit=500")["limit"] == 500


def test_400_list_query_problems_are_reported_together(api: Api) -> None:
    r = api.client.get(
        f"{records_url('sample')}?limit=0&page=x&count=maybe&qty__near=3&sort=a&sort=b",
        headers=api.admin.headers,
    )
    assert problem(r, 400)["errors"] == [
        {
            "pointer": "/query/qty__near",
            "message": "unknown operator 'near'; use one of "
            "['contains', 'eq', 'gt', 'gte', 'in', 'isnull', 'lt', 'lte', 'ne']",
        },
        {"pointer": "/query/sort", "message": "sort may be given once"},
        {"pointer": "/query/limit", "message": "limit must be 1..500"},
        {"pointer": "/query/page", "message": "page must be a whole number"},
        {"pointer": "/query/count", "message": "count is true or false"},
    ]


def test_400_bad_filters(api: Api) -> None:
    cases = {
        # Pointers name the query parameter, or the item of a comma-separated one.
        "nope=1": ("/query/nope", "unknown field 'nope'"),
        "qty=abc": ("/query/qty", "qty needs a whole number, not 'abc'"),
        "title=x&born__lt=31/05/2024": ("/query/born__lt", "born must be a date like 2024-05-31"),
        "level__gt=low": ("/query/level__gt", "level supports eq, in, isnull, ne, not 'gt'"),
        "fields=title,nope": ("/query/fields/1", "unknown field 'nope'"),
        "sort=title,-nope": ("/query/sort/1", "unknown field 'nope'"),
        "count=true&qty__in=1,x": ("/query/qty__in", "qty needs a whole number, not 'x'"),
        "page=202&limit=50": ("/query/page", "pages beyond 10000 records: use the cursor"),
    }
    for query, (pointer, message) in cases.items():
        r = api.client.get(f"{records_url('sample')}?{query}", headers=api.admin.headers)
        assert problem(r, 400)["errors"] == [{"pointer": pointer, "message": message}], query
    r = api.client.get(f"{records_url('sample')}?cursor=garbage", headers=api.admin.headers)
    assert problem(r, 400)["detail"] == "The cursor is not valid; start again from the first page."
    r = api.client.get(f"{records_url('sample')}?cursor=x&page=1", headers=api.admin.headers)
    assert problem(r, 400)["errors"] == [
        {"pointer": "/query/page", "message": "use either page or cursor, not both"}
    ]


def test_400_body_that_is_not_json(api: Api) -> None:
    headers = {**api.admin.headers, "Content-Type": "application/json"}
    r = api.client.post(records_url("sample"), content=b'{"title": ', headers=headers)
    body = problem(r, 400)
    assert body["type"] == "urn:formflow:problem:bad-request"
    assert body["detail"].startswith("The body is not valid JSON: Expecting value: line 1")
    r = api.client.post(records_url("sample"), content=b'{"qty": NaN}', headers=headers)
    assert (
        problem(r, 400)["detail"] == "The body is not valid JSON: NaN is not a number JSON allows"
    )
    r = api.client.post(records_url("sample"), content=b"", headers=headers)
    assert problem(r, 400)["detail"] == "A JSON body is required."
    assert api.rows("sample") == 0


def test_401_without_credentials(api: Api) -> None:
    r = api.client.get(records_url("sample"))
    assert problem(r, 401) == {
        "type": "urn:formflow:problem:unauthenticated",
        "title": "Unauthorized",
        "status": 401,
        "detail": "Authentication required: log in at POST /api/v1/auth/login or send an API key.",
    }
    assert r.headers["www-authenticate"] == "Bearer"


def test_401_comes_before_any_problem_with_the_body(api: Api) -> None:
    for body in (b"not json", b'{"title": "ab"}'):
        r = api.client.post(
            records_url("sample"), content=body, headers={"Content-Type": "text/plain"}
        )
        assert problem(r, 401)["type"] == "urn:formflow:problem:unauthenticated"
    r = api.client.patch(records_url("sample", 1), json={"qty": "x"})
    assert problem(r, 401)["type"] == "urn:formflow:problem:unauthenticated"
    r = api.client.post(f"{records_url('sample')}:batch", content=b"[")
    assert problem(r, 401)["type"] == "urn:formflow:problem:unauthenticated"


def test_404_unknown_form_and_record(api: Api) -> None:
    for url in (records_url("nope"), records_url("nope", 1)):
        r = api.client.get(url, headers=api.admin.headers)
        assert problem(r, 404) == {
            "type": "urn:formflow:problem:not-found",
            "title": "Not found",
            "status": 404,
            "detail": "There is no published form 'nope'.",
        }
    r = api.client.post(records_url("nope"), json={"a": 1}, headers=api.admin.headers)
    assert problem(r, 404)["detail"] == "There is no published form 'nope'."
    r = api.client.get(records_url("sample", 42), headers=api.admin.headers)
    assert problem(r, 404)["detail"] == "样本 42 does not exist."
    r = api.client.get("/api/v1/nothing-here", headers=api.admin.headers)
    assert problem(r, 404) == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "Not Found",
    }


def test_405_is_a_problem_too(api: Api) -> None:
    r = api.client.put(records_url("sample", 1), json={}, headers=api.admin.headers)
    assert problem(r, 405)["title"] == "Method Not Allowed"


def test_409_unique_value_taken(api: Api) -> None:
    api.create("sample", {"title": "one", "mail": "a@example.com"})
    r = api.client.post(
        records_url("sample"),
        json={"title": "two", "mail": "a@EXAMPLE.com"},
        headers=api.admin.headers,
    )
    assert problem(r, 409) == {
        "type": "urn:formflow:problem:conflict",
        "title": "Conflict",
        "status": 409,
        "detail": "样本: a unique value is already taken.",
        "errors": [
            {"pointer": "/mail", "message": "mail a@example.com is already used by record 1"}
        ],
    }


def test_412_stale_version(api: Api) -> None:
    rid = api.create("sample", {"title": "one"})["id"]
    assert api.patch("sample", rid, {"qty": 1}, version=1).status_code == 200
    body = problem(api.patch("sample", rid, {"qty": 2}, version=1), 412)
    assert body["type"] == "urn:formflow:problem:stale-version"
    assert body["current_version"] == 2


def test_413_body_too_large(make_app: MakeApp, api: Api) -> None:
    app = make_app(max_body_bytes=1000)
    big = {"title": "ab", "notes": "x" * 1000}
    expected = {
        "type": "urn:formflow:problem:payload-too-large",
        "title": "Payload too large",
        "status": 413,
        "detail": "The request body exceeds 1000 bytes.",
    }
    with TestClient(app) as client:
        # Declared by Content-Length: refused before the app reads a byte.
        r = client.post(records_url("sample"), json=big, headers=api.admin.headers)
        assert problem(r, 413) == expected

        # Streamed without a length: refused once the limit is passed.
        def chunks() -> Iterator[bytes]:
            yield b'{"title": "ab", "notes": "'
            for _ in range(20):
                yield b"x" * 100
            yield b'"}'

        headers = {**api.admin.headers, "Content-Type": "application/json"}
        r = client.post(records_url("sample"), content=chunks(), headers=headers)
        assert "content-length" not in r.request.headers
        assert problem(r, 413) == expected
        # Just under the limit is fine.
        r = client.post(records_url("sample"), json={"title": "ab"}, headers=api.admin.headers)
        assert r.status_code == 201
    assert api.rows("sample") == 1


def test_415_not_json(api: Api) -> None:
    r = api.client.post(
        records_url("sample"),
        content=b"title=ab",
        headers={**api.admin.headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert problem(r, 415) == {
        "type": "urn:formflow:problem:unsupported-media-type",
        "title": "Unsupported media type",
        "status": 415,
        "detail": "Send the body as application/json.",
    }
    # A +json media type is JSON.
    r = api.client.post(
        records_url("sample"),
        content=b'{"title": "ab"}',
        headers={
            **api.admin.headers,
            "Content-Type": "application/merge-patch+json; charset=utf-8",
        },
    )
    assert r.status_code == 201


def test_422_invalid_values_point_at_the_fields(api: Api) -> None:
    r = api.client.post(
        records_url("sample"),
        json={
            "title": "x",
            "qty": 101,
            "rate": "1.23456",
            "amount": "abc",
            "born": "2024-02-30",
            "seen_at": "2024-05-31T09:30:00",
            "level": "extreme",
            "tags": ["red", "red"],
            "mobile": "12345",
            "id_no": "110101199001020071",
            "docs": [{"kind": "passport", "pages": "two"}, "row"],
        },
        headers=api.admin.headers,
    )
    body = problem(r, 422)
    assert body["type"] == "urn:formflow:problem:validation"
    assert body["title"] == "Invalid record"
    assert body["errors"] == [
        {"pointer": "/amount", "message": "金额 must be an amount like 1234.56"},
        {"pointer": "/born", "message": "born must be a date like 2024-05-31"},
        {"pointer": "/docs/0/pages", "message": "pages must be a whole number"},
        {"pointer": "/docs/1", "message": "材料 must be an object"},
        {
            "pointer": "/id_no",
            "message": "身份证号 has a wrong check digit; please re-check the number",
        },
        {"pointer": "/level", "message": "级别 must be one of: low, mid, high"},
        {
            "pointer": "/mobile",
            "message": "手机 must be a mainland China mobile number (11 digits, starting with 1)",
        },
        {"pointer": "/qty", "message": "数量 must be at most 100"},
        {"pointer": "/rate", "message": "rate must have at most 4 decimal places"},
        {
            "pointer": "/seen_at",
            "message": "seen_at must include a time zone offset, e.g. +08:00 or Z",
        },
        {"pointer": "/tags", "message": "tags must not contain the same option twice"},
        {"pointer": "/title", "message": "标题 must be at least 2 characters"},
    ]
    assert body["detail"] == f"The 样本 record has {len(body['errors'])} problem(s)."
    assert api.rows("sample") == 0


def test_422_unknown_read_only_and_system_fields(api: Api) -> None:
    payload = {
        "title": "ok",
        "nickname": "x",
        "frozen": "x",
        "score": 3,
        "id": 5,
        "version": 9,
        "created_at": "2024-01-01T00:00:00Z",
        "owner_id": 1,
        "deleted_at": None,
        "docs": [{"kind": "passport", "colour": "red"}],
    }
    r = api.client.post(records_url("sample"), json=payload, headers=api.admin.headers)
    assert problem(r, 422)["errors"] == [
        {"pointer": "/created_at", "message": "created_at is a system field and cannot be written"},
        {"pointer": "/deleted_at", "message": "deleted_at is a system field and cannot be written"},
        {"pointer": "/docs/0/colour", "message": "unknown field 'colour'"},
        {"pointer": "/frozen", "message": "frozen is read-only"},
        {"pointer": "/id", "message": "id is a system field and cannot be written"},
        {"pointer": "/nickname", "message": "unknown field 'nickname'"},
        {"pointer": "/owner_id", "message": "owner_id is a system field and cannot be written"},
        {"pointer": "/score", "message": "得分 (score) is read-only"},
        {"pointer": "/version", "message": "version is a system field and cannot be written"},
    ]
    rid = api.create("sample", {"title": "ok"})["id"]
    r = api.patch("sample", rid, {"version": 7, "score": 1}, version=1)
    assert problem(r, 422)["errors"] == [
        {"pointer": "/score", "message": "得分 (score) is read-only"},
        {"pointer": "/version", "message": "version is a system field and cannot be written"},
    ]
    assert api.get("sample", rid)["version"] == 1
    assert api.rows("sample") == 1


def test_422_required_and_shape(api: Api) -> None:
    r = api.client.post(records_url("sample"), json={"qty": 1}, headers=api.admin.headers)
    assert problem(r, 422)["errors"] == [{"pointer": "/title", "message": "标题 is required"}]
    r = api.client.post(records_url("sample"), json=[{"title": "ab"}], headers=api.admin.headers)
    assert problem(r, 422)["errors"] == [{"pointer": "", "message": "must be a JSON object"}]
    rid = api.create("sample", {"title": "ab"})["id"]
    r = api.patch("sample", rid, {"title": None, "docs": None}, version=1)
    assert problem(r, 422)["errors"] == [
        {"pointer": "/docs", "message": "材料 must be a list (use [] to empty it)"},
        {"pointer": "/title", "message": "标题 is required"},
    ]


def test_422_request_validation_uses_the_same_shape(api: Api) -> None:
    r = api.client.get(records_url("sample", "abc"), headers=api.admin.headers)  # type: ignore[arg-type]
    assert problem(r, 422) == {
        "type": "urn:formflow:problem:validation",
        "title": "Invalid request",
        "status": 422,
        "detail": "The request is not valid.",
        "errors": [
            {
                "pointer": "/path/record_id",
                "message": "Input should be a valid integer, unable to parse string as an integer",
            }
        ],
    }
    # Ids are 64-bit: a larger one is refused before it reaches the database.
    for method, url in (
        ("GET", records_url("sample", 2**63)),
        ("PATCH", records_url("sample", 2**64)),
        ("DELETE", records_url("sample", 0)),
        ("DELETE", f"/api/v1/auth/api-keys/{2**63}"),
    ):
        headers = {**api.admin.headers, "If-Match": '"1"'}
        r = api.client.request(method, url, json={}, headers=headers)
        (error,) = problem(r, 422)["errors"]
        assert error["pointer"] in ("/path/record_id", "/path/key_id"), (method, url)
    r = api.client.post("/api/v1/auth/login", json={"username": ""})
    assert problem(r, 422)["errors"] == [
        {"pointer": "/body/username", "message": "String should have at least 1 character"},
        {"pointer": "/body/password", "message": "Field required"},
    ]


def test_428_if_match_required(api: Api) -> None:
    rid = api.create("sample", {"title": "ab"})["id"]
    r = api.client.patch(records_url("sample", rid), json={"qty": 1}, headers=api.admin.headers)
    assert problem(r, 428)["type"] == "urn:formflow:problem:precondition-required"
    assert api.get("sample", rid)["qty"] is None


def test_400_text_with_a_nul_character_anywhere(api: Api) -> None:
    """PostgreSQL cannot store NUL; the rule holds for every body model and the query."""
    expected = {
        "type": "urn:formflow:problem:bad-request",
        "title": "Bad request",
        "status": 400,
        "detail": "Text may not contain the NUL character (\\u0000).",
    }
    headers = api.admin.headers
    # A record body (escaped, as JSON encoders write it) ...
    r = api.client.post(records_url("sample"), json={"title": "a\x00b"}, headers=headers)
    assert problem(r, 400) == expected
    # ... a pydantic-modelled body, which would otherwise reach a query ...
    r = api.client.post(
        "/api/v1/auth/api-keys", json={"name": "k", "user": "\x00x"}, headers=headers
    )
    assert problem(r, 400) == expected
    # ... and a filter value in the query string.
    r = api.client.get(records_url("sample") + "?title=a%00b", headers=headers)
    assert problem(r, 400) == expected
    # An escaped backslash followed by "u0000" is ordinary text.
    r = api.client.post(records_url("sample"), json={"title": "a\\u0000"}, headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["title"] == "a\\u0000"
    assert api.rows("sample") == 1
