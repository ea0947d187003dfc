"""A 50-row page of a big table: Formflow's list_records next to hand-written SQLAlchemy Core.

On the customer data set (``--rows`` records; SQLite, and PostgreSQL when a
URL is given) four pages are timed, each by ``engine.records.query.
list_records`` and by a hand-written Core SELECT returning the same JSON
(checked equal before timing), alternately, ``--runs`` times each, every
run in its own transaction:

* first page, id order;
* a keyset next page deep in the table (cursor after id ~ 0.9 * rows);
* a filtered and sorted first page: ``status = active``, ``birthday >= 1980-01-01``,
  sorted by ``-birthday`` (an indexed field);
* the same filtered and sorted order, next page from a cursor ~75% deep.

    python -m bench.list_page [--rows N] [--runs N] [--database-url URL] [--explain]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bench import _handwritten as hand
from bench._common import (
    Database,
    add_backend_arguments,
    add_database_arguments,
    data_sets,
    prepare,
    summary_ms,
)
from engine.catalog import load_schema
from engine.records.query import Filter, ListQuery, Sort, list_records

LIMIT = 50
BORN_FROM = dt.date(1980, 1, 1)
DEEP_BIRTHDAY = "1985-01-01"

Page = tuple[list[dict[str, Any]], str | None]


@dataclass
class Case:
    name: str
    generated: Callable[[sa.Connection], Page]
    baseline: Callable[[sa.Connection], Page]


def cases(conn: sa.Connection, rows: int) -> list[Case]:
    tables = load_schema(conn).form("customer")
    table, children, definition = tables.table, dict(tables.children), tables.definition

    def generated(query: ListQuery) -> Callable[[sa.Connection], Page]:
        def run(c: sa.Connection) -> Page:
            page = list_records(c, table, children, definition, query)
            return page.items, page.next_cursor

        return run

    filters = [Filter("status", "eq", "active"), Filter("birthday", "gte", BORN_FROM.isoformat())]
    by_birthday = [Sort("birthday", descending=True)]

    # Deep cursors, as a client paging on would hold them: the next_cursor of
    # a page that starts deep in the same order (the cursor carries the order,
    # not the filters).
    deep_id_page = list_records(
        conn,
        table,
        children,
        definition,
        ListQuery(filters=[Filter("id", "gt", int(rows * 0.9))], limit=LIMIT),
    )
    deep_sorted_page = list_records(
        conn,
        table,
        children,
        definition,
        ListQuery(
            filters=[*filters, Filter("birthday", "lte", DEEP_BIRTHDAY)],
            sort=by_birthday,
            limit=LIMIT,
        ),
    )
    id_cursor, sorted_cursor = deep_id_page.next_cursor, deep_sorted_page.next_cursor
    assert id_cursor and sorted_cursor, "--rows is too small for deep pages"
    _, after_id = hand.decode_cursor(id_cursor)
    (b,), b_id = hand.decode_cursor(sorted_cursor)
    after_birthday = (dt.date.fromisoformat(b), b_id)

    return [
        Case(
            "first page, id order",
            generated(ListQuery(limit=LIMIT)),
            lambda c: hand.page_by_id(c, LIMIT),
        ),
        Case(
            f"deep page, id order (after id {after_id:,})",
            generated(ListQuery(limit=LIMIT, cursor=id_cursor)),
            lambda c: hand.page_by_id(c, LIMIT, after_id),
        ),
        Case(
            "filtered + sorted first page",
            generated(ListQuery(filters=filters, sort=by_birthday, limit=LIMIT)),
            lambda c: hand.page_active_by_birthday_desc(c, LIMIT, BORN_FROM),
        ),
        Case(
            f"filtered + sorted deep page (after {b})",
            generated(
                ListQuery(filters=filters, sort=by_birthday, limit=LIMIT, cursor=sorted_cursor)
            ),
            lambda c: hand.page_active_by_birthday_desc(c, LIMIT, BORN_FROM, after_birthday),
        ),
    ]


class StatementLog:
    """The last SQL statement a connection ran (for --explain)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.last: tuple[str, Any] | None = None
        sa.event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            self.last = (statement, params)


def explain(db: Database, conn: sa.Connection, statement: str, params: Any) -> list[str]:
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if db.backend == "postgresql" else "EXPLAIN QUERY PLAN "
    rows = conn.exec_driver_sql(prefix + statement, params).all()
    if db.backend == "postgresql":
        return [r[0] for r in rows]
    return [str(r[-1]) for r in rows]


def run(
    db: Database, rows: int, runs: int, budget: float, show_plans: bool
) -> list[dict[str, Any]]:
    prepare(db, rows)
    engine = db.engine()
    log = StatementLog(engine)
    results = []
    try:
        with engine.connect() as conn:
            with conn.begin():
                all_cases = cases(conn, rows)
            for case in all_cases:
                # Same result, byte for byte, or the comparison means nothing.
                with conn.begin():
                    gen = case.generated(conn)
                    gen_sql = log.last
                    base = case.baseline(conn)
                    base_sql = log.last
                if hand.dumps(gen) != hand.dumps(base):
                    raise SystemExit(f"{case.name}: the baseline returns a different page")
                if show_plans:
                    with conn.begin():
                        for who, logged in (("formflow", gen_sql), ("hand-written", base_sql)):
                            assert logged is not None
                            print(f"  -- {case.name}: {who}")
                            for line in explain(db, conn, *logged):
                                print(f"     {line}")
                samples: dict[str, list[float]] = {"gen": [], "base": []}
                # Warm up (caches, compiled statements): a tenth of the runs, at
                # most a tenth of the budget. Then time, within the budget: a
                # slow case gets fewer runs (at least 5).
                started_case = time.perf_counter()
                warmup = 0
                while warmup < max(2, runs // 10) and (
                    warmup < 2 or time.perf_counter() - started_case < budget / 10
                ):
                    for fn in (case.generated, case.baseline):
                        with conn.begin():
                            fn(conn)
                    warmup += 1
                deadline = time.perf_counter() + budget
                for i in range(runs):
                    if time.perf_counter() > deadline and len(samples["gen"]) >= 5:
                        break
                    order = (("gen", case.generated), ("base", case.baseline))
                    for key, fn in order if i % 2 else reversed(order):
                        started = time.perf_counter()
                        with conn.begin():
                            fn(conn)
                        samples[key].append(time.perf_counter() - started)
                g_med, g_p95 = summary_ms(samples["gen"])
                b_med, b_p95 = summary_ms(samples["base"])
                results.append(
                    {
                        "backend": db.backend,
                        "case": case.name,
                        "gen": (g_med, g_p95),
                        "base": (b_med, b_p95),
                        "ratio": g_med / b_med,
                    }
                )
                n = len(samples["gen"])
                print(
                    f"  {case.name:<48} formflow {g_med:8.2f} / {g_p95:8.2f} ms   "
                    f"hand-written {b_med:8.2f} / {b_p95:8.2f} ms   "
                    f"ratio {g_med / b_med:6.2f}x" + ("" if n == runs else f"  ({n} runs)")
                )
    finally:
        engine.dispose()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_database_arguments(parser, reusable=True)
    parser.add_argument("--runs", type=int, default=200, help="timed runs per case and side")
    parser.add_argument(
        "--budget", type=float, default=20.0, help="seconds at most per case (fewer runs)"
    )
    parser.add_argument("--explain", action="store_true", help="print each statement's plan")
    add_backend_arguments(parser)
    args = parser.parse_args(argv)
    print(f"median / p95 of {args.runs} runs, {LIMIT}-row pages; ratio = formflow / hand-written")
    results = []
    for db in data_sets(args):
        results.extend(run(db, args.rows, args.runs, args.budget, args.explain))
    print()
    print(f"{'database':<11} {'case':<48} {'formflow ms':>12} {'hand ms':>9} {'ratio':>7}")
    for r in results:
        print(
            f"{r['backend']:<11} {r['case']:<48} {r['gen'][0]:>12.2f} {r['base'][0]:>9.2f} "
            f"{r['ratio']:>6.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
