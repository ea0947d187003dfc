"""A scoped and masked 50-row list for a branch head, next to the same list by a superuser.

On the customer data set (``--rows`` records, default 1,000,000; PostgreSQL
when a URL is given, and SQLite) the 20 departments become a tree — four
branches, each with four sub-branches — and a branch head gets the bank
role shape of examples/bank_crm: read customers of the branch and every
sub-branch (``dept_tree``, through the closure table), phone and ID number
masked, and the global private-banking restriction (``tier`` is not
``private``). Each request is what the REST handler does below HTTP: read the policy
version (the REST edge reads it with the credential), take the caller and
the compiled access from their per-version caches, open the gate, and
``GuardedRecords.page`` (one SELECT, masking). The superuser runs the very
same path with no scope and no masking. Timed alternately, each in its own
transaction; the pages are checked first (every row of the head's page in
the branch's subtree, not private, masked; the superuser's unmasked).

Cases: first page in id order; ``status=active`` sorted by ``-birthday``;
a keyset page deep in the head's rows. Target: head / superuser <= 1.3x.
Also printed: the per-request cost of access with a warm cache (gate +
compiled access + WHERE clause, target <= 0.2 ms), and the one query that
loads the caller.

    python -m bench.scoped_list [--rows N] [--database-url URL] [--reuse --keep]
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bench._common import (
    Database,
    add_backend_arguments,
    add_database_arguments,
    data_sets,
    prepare,
    summary_ms,
)
from engine.catalog import Schema, load_schema
from engine.records.query import Filter, ListQuery, Sort
from engine.system import department_table, user_department_table
from permissions.compile import AccessCompiler
from permissions.gate import Caller, CallerCache, Gate, load_caller
from permissions.org import policy_version, rebuild_closure
from permissions.policy import PolicyStore
from permissions.records import GuardedRecords
from runtime.auth.service import create_user

LIMIT = 50
HEAD = "bench_branch_head"
ROLE = "bench_branch_head"
TARGET_RATIO = 1.3
TARGET_ACCESS_MS = 0.2
NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def organise(engine: sa.Engine) -> tuple[int, int]:
    """The tree, the head and the role (idempotent): (head user id, branch department id)."""
    with engine.begin() as conn:
        d = department_table
        ids = {r.code: int(r.id) for r in conn.execute(sa.select(d.c.code, d.c.id))}
        codes = sorted(ids)  # b001..b020
        branches, subs = codes[:4], codes[4:]
        for i, code in enumerate(subs):
            parent = ids[branches[i % 4]]
            conn.execute(sa.update(d).where(d.c.id == ids[code]).values(parent_id=parent))
        rebuild_closure(conn, actor_id=None, now=NOW)
        head = conn.execute(sa.text("SELECT id FROM ff_user WHERE username = :u"), {"u": HEAD})
        head_id = head.scalar_one_or_none()
        if head_id is None:
            head_id = create_user(conn, username=HEAD, password=None, now=NOW)
            conn.execute(
                sa.insert(user_department_table).values(
                    user_id=head_id, department_id=ids[branches[0]], is_primary=True
                )
            )
        s = PolicyStore(conn, actor_id=None, now=NOW)
        definition = load_schema(conn).form("customer").definition
        s.set_action(ROLE, "customer", "read")
        s.set_scope(ROLE, "customer", "read", "dept_tree")
        s.set_field(ROLE, "customer", "*", "write")
        for capped in ("phone", "id_number"):
            s.set_field(ROLE, "customer", capped, "read", "deny")  # at most mask
        found = conn.execute(
            sa.text("SELECT count(*) FROM ff_casbin_rule WHERE ptype = 'restrict'")
        ).scalar_one()
        if not found:
            s.define_restriction(
                definition,
                "no_private_banking",
                {"not": {"field": "tier", "op": "eq", "value": "private"}},
            )
        s.assign_role(int(head_id), ROLE)
        return int(head_id), ids[branches[0]]


@dataclass
class Side:
    name: str
    user_id: int
    superuser: bool


CALLERS = CallerCache()


def request(
    conn: sa.Connection, compiler: AccessCompiler, schema: Schema, side: Side, query: ListQuery
) -> list[dict[str, Any]]:
    # The REST edge reads the policy version with the credential (one query
    # that both sides pay); callers and compiled access are then cached per
    # version, as runtime.web.deps.get_gate does.
    version = policy_version(conn)
    caller = CALLERS.get(conn, side.user_id, superuser=side.superuser, version=version)
    gate = Gate.open(conn, compiler, caller, schema)
    return GuardedRecords(conn, gate, "customer").page(query).page.items


def check(
    conn: sa.Connection, head_items: list[dict[str, Any]], admin_items: list[dict[str, Any]]
) -> None:
    tree = set(
        conn.execute(
            sa.text(
                "SELECT descendant_id FROM ff_department_closure WHERE ancestor_id IN "
                f"(SELECT department_id FROM ff_user_department u JOIN ff_user p "
                f"ON p.id = u.user_id WHERE p.username = '{HEAD}')"
            )
        ).scalars()
    )
    if len(head_items) != LIMIT or len(admin_items) != LIMIT:
        raise SystemExit("a page is short: the data set is too small for the benchmark")
    for item in head_items:
        if item["dept_id"] not in tree or item["tier"] == "private":
            raise SystemExit(f"record {item['id']} is out of the head's scope: a leak")
        if "*" not in (item["id_number"] or "*") or "*" not in (item["phone"] or "*"):
            raise SystemExit(f"record {item['id']} is not masked for the head")
    if any("*" in (i["phone"] or "") for i in admin_items):
        raise SystemExit("the superuser's page is masked")


def cases(
    conn: sa.Connection, compiler: AccessCompiler, schema: Schema, head: Side
) -> list[tuple[str, ListQuery]]:
    sorted_query = ListQuery(
        filters=[Filter("status", "eq", "active")], sort=[Sort("birthday", True)], limit=LIMIT
    )
    # A cursor ~80% deep: the cursor encodes the sort (none) and the last id only.
    total = conn.execute(sa.text("SELECT max(id) FROM form_customer")).scalar_one()
    gate = Gate.open(conn, compiler, load_caller(conn, head.user_id), schema)
    deep_start = ListQuery(limit=LIMIT, filters=[Filter("id", "gte", int(total * 0.8))])
    cursor = GuardedRecords(conn, gate, "customer").page(deep_start).page.next_cursor
    deep = ListQuery(limit=LIMIT, cursor=cursor)
    return [
        ("first page, id order", ListQuery(limit=LIMIT)),
        ("status=active, sort -birthday", sorted_query),
        ("keyset page ~80% deep", deep),
    ]


def time_pair(
    engine: sa.Engine,
    fn_a: Callable[[sa.Connection], object],
    fn_b: Callable[[sa.Connection], object],
    runs: int,
    budget: float,
) -> tuple[list[float], list[float]]:
    a: list[float] = []
    b: list[float] = []
    with engine.connect() as conn:
        for _ in range(max(3, runs // 10)):
            for fn in (fn_a, fn_b):
                with conn.begin():
                    fn(conn)
        deadline = time.perf_counter() + budget
        for i in range(runs):
            if time.perf_counter() > deadline and len(a) >= 5:
                break
            order = ((a, fn_a), (b, fn_b))
            for samples, fn in order if i % 2 else reversed(order):
                started = time.perf_counter()
                with conn.begin():
                    fn(conn)
                samples.append(time.perf_counter() - started)
    return a, b


def access_cost(
    engine: sa.Engine, compiler: AccessCompiler, schema: Schema, head: Side, calls: int
) -> tuple[float, float]:
    """(gate + compiled access + WHERE per request, loading the caller), in ms, warm."""
    table = schema.form("customer").table
    with engine.connect() as conn, conn.begin():
        caller: Caller = load_caller(conn, head.user_id)
        Gate.open(conn, compiler, caller, schema).scope("customer", "read")  # warm
        started = time.perf_counter()
        for _ in range(calls):
            gate = Gate.open(conn, compiler, caller, schema)
            gate.require("customer", "read")
            clause = gate.scope("customer", "read")
        per_access = (time.perf_counter() - started) / calls * 1000
        assert clause is not None and str(clause.compile()) and table is not None
        samples = []
        for _ in range(max(calls // 20, 50)):
            started = time.perf_counter()
            load_caller(conn, head.user_id)
            samples.append(time.perf_counter() - started)
    return per_access, statistics.median(samples) * 1000


def run(db: Database, rows: int, runs: int, budget: float) -> list[dict[str, Any]]:
    prepare(db, rows)
    engine = db.engine()
    try:
        head_id, _branch = organise(engine)
        with engine.connect() as conn:
            admin_id = conn.execute(
                sa.text("SELECT id FROM ff_user WHERE is_superuser ORDER BY id LIMIT 1")
            ).scalar_one()
            schema = load_schema(conn)
        compiler = AccessCompiler()
        head = Side("branch head", head_id, False)
        admin = Side("superuser", int(admin_id), True)
        with engine.connect() as conn, conn.begin():
            all_cases = cases(conn, compiler, schema, head)
        results = []
        for name, query in all_cases:
            with engine.connect() as conn, conn.begin():
                head_items = request(conn, compiler, schema, head, query)
                check(conn, head_items, request(conn, compiler, schema, admin, query))

            def as_head(conn: sa.Connection, q: ListQuery = query) -> object:
                return request(conn, compiler, schema, head, q)

            def as_admin(conn: sa.Connection, q: ListQuery = query) -> object:
                return request(conn, compiler, schema, admin, q)

            h, a = time_pair(engine, as_head, as_admin, runs, budget)
            h_med, h_p95 = summary_ms(h)
            a_med, a_p95 = summary_ms(a)
            results.append({"backend": db.backend, "case": name, "head": h_med, "admin": a_med})
            print(
                f"  {name:<32} branch head {h_med:7.2f} / {h_p95:7.2f} ms   "
                f"superuser {a_med:7.2f} / {a_p95:7.2f} ms   ratio {h_med / a_med:5.2f}x"
            )
        per_access, caller_ms = access_cost(engine, compiler, schema, head, 20_000)
        print(
            f"  access per request, warm (gate + compiled access + WHERE): {per_access:.4f} ms"
            f"  (target <= {TARGET_ACCESS_MS} ms: {'met' if per_access <= TARGET_ACCESS_MS else 'MISSED'})"  # noqa: E501
        )
        print(f"  loading the caller (departments + policy version, one query): {caller_ms:.3f} ms")
        return results
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_database_arguments(parser, reusable=True)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--budget", type=float, default=15.0, help="seconds at most per case")
    add_backend_arguments(parser)
    args = parser.parse_args(argv)
    print(f"median / p95, {LIMIT}-row pages; ratio = branch head / superuser")
    results = []
    for db in data_sets(args):
        results.extend(run(db, args.rows, args.runs, args.budget))
    worst = max((r["head"] / r["admin"] for r in results), default=float("nan"))
    print(
        f"worst ratio {worst:.2f}x (target <= {TARGET_RATIO}x): "
        f"{'met' if worst <= TARGET_RATIO else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
