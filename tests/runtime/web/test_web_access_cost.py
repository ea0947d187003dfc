"""Permissions cost a warm request no round trip of their own."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa
from web_support import Api, records_url

from permissions.org import create_department

NOW = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
Counter = Callable[[sa.Engine | sa.Connection], AbstractContextManager[Any]]


def test_a_warm_request_reads_access_with_its_credentials(
    api: Api, count_statements: Counter
) -> None:
    rid = api.create("sample", {"title": "xy"}, who=api.clerk)["id"]
    url = records_url("sample", rid)
    assert api.client.get(url, headers=api.clerk.headers).status_code == 200  # warm the caches
    with count_statements(api.engine) as log:
        assert api.client.get(url, headers=api.clerk.headers).status_code == 200
    # The credential (with the policy version), the catalogue fingerprint (this
    # app re-checks it on every request), the record and its sub-table rows:
    # nothing else.
    assert log.count == 4, log.statements
    assert "ff_policy_state" in log.statements[0]
    # An organisation change bumps the version: the next request reloads once.
    with api.engine.begin() as conn:
        create_department(conn, code="NEW", name="新部门", parent_code=None, actor_id=None, now=NOW)
    with count_statements(api.engine) as log:
        assert api.client.get(url, headers=api.clerk.headers).status_code == 200
    assert log.count > 4
    with count_statements(api.engine) as log:
        assert api.client.get(url, headers=api.clerk.headers).status_code == 200
    assert log.count == 4, log.statements
