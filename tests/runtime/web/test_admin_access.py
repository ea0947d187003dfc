"""/api/v1/admin: every operation is for superusers only, and every one is documented."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from web_support import Api

from engine.jobs import job_table
from engine.system import admin_audit_table, casbin_rule_table, department_table, user_table

A = "/api/v1/admin"
# (method, path as documented, the path called, a well-formed body): a valid
# request, so that only the caller's lack of rights can refuse it.
OPERATIONS: list[tuple[str, str, str, Any]] = [
    ("GET", "/users", "/users", None),
    ("POST", "/users", "/users", {"username": "newbie"}),
    ("GET", "/users/{user_id}", "/users/1", None),
    ("PATCH", "/users/{user_id}", "/users/1", {"is_active": False}),
    ("GET", "/departments", "/departments", None),
    ("POST", "/departments", "/departments", {"code": "hq", "name": "HQ"}),
    ("GET", "/departments/{code}", "/departments/retail", None),
    ("PATCH", "/departments/{code}", "/departments/retail", {"name": "Retail 2"}),
    ("DELETE", "/departments/{code}", "/departments/retail", None),
    ("GET", "/roles", "/roles", None),
    ("POST", "/roles", "/roles", {"key": "teller", "name": "Teller"}),
    ("GET", "/roles/{key}", "/roles/teller", None),
    ("PATCH", "/roles/{key}", "/roles/teller", {"name": "Cashier"}),
    ("DELETE", "/roles/{key}", "/roles/teller", None),
    ("PUT", "/roles/{key}/parents/{parent}", "/roles/teller/parents/clerk", None),
    ("DELETE", "/roles/{key}/parents/{parent}", "/roles/teller/parents/clerk", None),
    ("GET", "/users/{user_id}/roles", "/users/1/roles", None),
    ("PUT", "/users/{user_id}/roles/{role}", "/users/1/roles/teller", None),
    ("DELETE", "/users/{user_id}/roles/{role}", "/users/1/roles/teller", None),
    ("GET", "/users/{user_id}/departments", "/users/1/departments", None),
    ("POST", "/users/{user_id}/departments", "/users/1/departments", {"department": "retail"}),
    (
        "PUT",
        "/users/{user_id}/primary-department",
        "/users/1/primary-department",
        {"department": "retail"},
    ),
    ("DELETE", "/users/{user_id}/departments/{code}", "/users/1/departments/retail", None),
    ("GET", "/roles/{key}/grants", "/roles/teller/grants", None),
    ("POST", "/roles/{key}/grants", "/roles/teller/grants", {"form": "sample"}),
    ("POST", "/roles/{key}/grants:remove", "/roles/teller/grants:remove", {"form": "sample"}),
    ("GET", "/scopes", "/scopes", None),
    ("PUT", "/scopes/{form}/{name}", "/scopes/sample/mine", {"condition": {"all": []}}),
    ("DELETE", "/scopes/{form}/{name}", "/scopes/sample/mine", None),
    ("GET", "/restrictions", "/restrictions", None),
    ("PUT", "/restrictions/{form}/{name}", "/restrictions/sample/x", {"condition": {"all": []}}),
    ("DELETE", "/restrictions/{form}/{name}", "/restrictions/sample/x", None),
    ("GET", "/audit", "/audit", None),
    ("GET", "/jobs", "/jobs?status=incident", None),
    ("GET", "/jobs:stats", "/jobs:stats", None),
    ("GET", "/jobs/{job_id}", "/jobs/1", None),
    ("POST", "/jobs/{job_id}:retry", "/jobs/1:retry", {"max_attempts": 3}),
    ("POST", "/jobs/{job_id}:cancel", "/jobs/1:cancel", None),
]


def _state(api: Api) -> tuple[int, ...]:
    with api.engine.connect() as conn:
        return tuple(
            int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
            for t in (admin_audit_table, casbin_rule_table, department_table, user_table, job_table)
        )


def test_the_list_covers_every_documented_admin_operation(api: Api) -> None:
    paths = api.client.get("/openapi.json", headers=api.admin.headers).json()["paths"]
    documented = {
        (method.upper(), path.removeprefix(A))
        for path, item in paths.items()
        if path.startswith(f"{A}/")
        for method in item
    }
    assert documented == {(method, path) for method, path, _, _ in OPERATIONS}
    for path, item in paths.items():
        if path.startswith(f"{A}/"):
            for method, operation in item.items():
                assert {"401", "403"} <= operation["responses"].keys(), (method, path)
                assert operation["tags"] == ["admin"]


@pytest.mark.parametrize(
    ("method", "called", "body"),
    [(m, c, b) for m, _, c, b in OPERATIONS],
    ids=[f"{m} {p}" for m, p, _, _ in OPERATIONS],
)
def test_only_administrators_may_call(api: Api, method: str, called: str, body: Any) -> None:
    before = _state(api)
    kwargs: dict[str, Any] = {} if body is None else {"json": body}
    r = api.client.request(method, f"{A}{called}", headers=api.clerk.headers, **kwargs)
    assert r.status_code == 403, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"] == "Only administrators may use the administration API."
    assert api.client.request(method, f"{A}{called}", **kwargs).status_code == 401
    assert _state(api) == before
