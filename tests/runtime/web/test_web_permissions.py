"""GET /api/v1/permissions/explain: the compiled access, as an administrator reads it."""

from __future__ import annotations

import datetime as dt

from web_support import Api

from permissions.org import create_role
from permissions.policy import PolicyStore

EXPLAIN = "/api/v1/permissions/explain"
NOW = dt.datetime(2024, 6, 1, 8, 0, tzinfo=dt.UTC)


def grant_clerk_own_titles(api: Api) -> None:
    with api.engine.begin() as conn:
        create_role(conn, key="clerk", name="职员", actor_id=None, now=NOW)
        store = PolicyStore(conn, actor_id=api.admin.id, now=NOW)
        store.unassign_role(api.clerk.id, "staff")  # the fixture's grant-everything role
        store.set_action("clerk", "sample", "read")
        store.set_field("clerk", "sample", "title", "read")
        store.set_scope("clerk", "sample", "read", "own")
        store.assign_role(api.clerk.id, "clerk")


def test_explain_names_the_lines_the_field_level_and_the_scope(api: Api) -> None:
    mine = api.create("sample", {"title": "mine"}, who=api.clerk)["id"]
    grant_clerk_own_titles(api)
    theirs = api.create("sample", {"title": "theirs"})["id"]

    def ask(record: int, field: str = "title", action: str = "read") -> dict[str, object]:
        r = api.client.get(
            EXPLAIN,
            params={
                "user": api.clerk.username,
                "form": "sample",
                "action": action,
                "record": record,
                "field": field,
            },
            headers=api.admin.headers,
        )
        assert r.status_code == 200, r.text
        body: dict[str, object] = r.json()
        return body

    body = ask(mine)
    assert body["allowed"] is True
    assert body["reason"] == "allowed by p, role:clerk, form:sample, read, allow"
    assert body["fields"] == {
        "title": {"level": "read", "lines": ["p, role:clerk, field:sample.title, read, allow"]}
    }
    assert body["record"] == {"id": mine, "exists": True, "in_scope": True}
    assert ask(theirs)["record"] == {"id": theirs, "exists": True, "in_scope": False}
    assert ask(mine, field="qty")["fields"] == {"qty": {"level": "hidden", "lines": []}}
    denied = ask(mine, action="export")
    assert denied["allowed"] is False
    assert denied["reason"] == "no line grants export on form sample (default deny)"


def test_explain_is_for_administrators_and_checks_its_input(api: Api) -> None:
    params = {"user": api.clerk.username, "form": "sample"}
    r = api.client.get(EXPLAIN, params=params, headers=api.clerk.headers)
    assert (r.status_code, r.json()["detail"]) == (403, "Only administrators may read the policy.")
    r = api.client.get(EXPLAIN, params={**params, "field": "nope"}, headers=api.admin.headers)
    assert (r.status_code, r.json()["errors"]) == (
        400,
        [{"pointer": "/query/field", "message": "form 'sample' has no field 'nope'"}],
    )
    r = api.client.get(EXPLAIN, params={**params, "user": "ghost"}, headers=api.admin.headers)
    assert r.status_code == 404
    r = api.client.get(EXPLAIN, params={**params, "form": "ghost"}, headers=api.admin.headers)
    assert r.status_code == 404
