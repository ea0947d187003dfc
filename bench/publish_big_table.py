"""Publishing a new form version on a big table: adding a nullable field must not rewrite it.

For each database (SQLite in a temporary file; PostgreSQL when a URL is
given), the customer form is published and loaded with ``--rows`` records,
then:

1. ``--repeat`` new versions are published, each adding one nullable,
   unindexed field. The plan must be exactly one ``add_column`` step; the
   time is ``publish()`` plus the commit. No table rewrite is checked
   physically: on PostgreSQL the table's ``pg_relation_filenode`` (a rewrite
   gives the table a new file) and size; on SQLite the table's root page
   in ``sqlite_master`` (a rebuild creates a new b-tree) and the file size.
2. For reference, one version that adds an index on an existing, populated
   field (``email``): the plan must be exactly one ``add_index`` step.

    python -m bench.publish_big_table [--rows N] [--database-url URL] [--skip-sqlite]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bench._common import (
    Database,
    add_database_arguments,
    customer_document,
    database,
    fmt_bytes,
    prepare,
)
from engine.forms.definition import parse_definition
from engine.publish.service import plan_publish, publish

TABLE = "form_customer"


@dataclass
class Physical:
    """What a table rewrite would change."""

    identity: int  # PostgreSQL: relfilenode; SQLite: the table's root page
    size: int  # PostgreSQL: table + indexes + toast; SQLite: the database file

    def same_storage(self, other: Physical) -> bool:
        return self.identity == other.identity


def physical(db: Database, conn: sa.Connection) -> Physical:
    if db.backend == "postgresql":
        identity = conn.execute(
            sa.text("SELECT pg_relation_filenode(CAST(:t AS regclass))"), {"t": TABLE}
        ).scalar_one()
        size = conn.execute(
            sa.text("SELECT pg_total_relation_size(CAST(:t AS regclass))"), {"t": TABLE}
        ).scalar_one()
        return Physical(int(identity), int(size))
    # Checkpoint first (before this transaction reads anything), so that the
    # file holds every page and its size is comparable.
    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    identity = conn.execute(
        sa.text("SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = :t"),
        {"t": TABLE},
    ).scalar_one()
    assert db.path is not None
    return Physical(int(identity), db.path.stat().st_size)


@dataclass
class Step:
    label: str
    plan: list[str]
    kinds: list[str]
    seconds: float
    before: Physical
    after: Physical


def publish_version(db: Database, engine: sa.Engine, document: dict[str, Any], label: str) -> Step:
    definition = parse_definition(document, source=label)
    with engine.connect() as conn:
        before = physical(db, conn)
    with engine.begin() as conn:
        plan = plan_publish(conn, definition)  # the preview an author sees
    started = time.perf_counter()
    with engine.begin() as conn:
        publish(conn, definition)
    seconds = time.perf_counter() - started
    with engine.connect() as conn:
        after = physical(db, conn)
    return Step(label, plan.describe(), [s.kind for s in plan.steps], seconds, before, after)


def new_field(i: int) -> dict[str, Any]:
    return {
        "title": f"微信号{i}",
        "x-labels": {"en": f"WeChat ID {i}"},
        "type": "string",
        "maxLength": 64,
    }


def run(db: Database, rows: int, repeat: int) -> dict[str, Any]:
    dataset = prepare(db, rows)
    engine = db.engine()
    try:
        with engine.connect() as conn:
            version = conn.exec_driver_sql(
                "SELECT version()" if db.backend == "postgresql" else "SELECT sqlite_version()"
            ).scalar_one()
        name = str(version).split(" on ")[0] if db.backend == "postgresql" else f"SQLite {version}"
        print(f"  {name}")
        extra: dict[str, dict[str, Any]] = {}
        adds: list[Step] = []
        for i in range(1, repeat + 1):
            extra[f"wechat_id_{i}"] = new_field(i)
            step = publish_version(
                db, engine, customer_document(extra=extra), f"add nullable field wechat_id_{i}"
            )
            adds.append(step)
            report(step, db.backend, expected=["add_column"])
        index = publish_version(
            db, engine, customer_document(extra=extra, index=["email"]), "add index on email"
        )
        report(index, db.backend, expected=["add_index"])
    finally:
        engine.dispose()
    times = [s.seconds for s in adds]
    return {
        "backend": db.backend,
        "rows": rows,
        "load": dataset.load_seconds,
        "add_median": statistics.median(times),
        "add_max": max(times),
        "rewrites": sum(not s.before.same_storage(s.after) for s in adds),
        "growth": max(s.after.size - s.before.size for s in adds),
        "index": index.seconds,
        "index_growth": index.after.size - index.before.size,
        "ok": all(s.kinds == ["add_column"] for s in adds) and index.kinds == ["add_index"],
    }


def report(step: Step, backend: str, *, expected: list[str]) -> None:
    storage = "file node" if backend == "postgresql" else "root page"
    same = step.before.same_storage(step.after)
    print(f"  publish: {step.label}")
    for line in step.plan:
        print(f"    plan: {line}")
    if step.kinds != expected:
        print(f"    !! expected a plan of {expected}, got {step.kinds}")
    print(f"    time: {step.seconds * 1000:,.1f} ms (publish + commit)")
    print(
        f"    table {storage} {step.before.identity} -> {step.after.identity} "
        f"({'unchanged: no rewrite' if same else 'CHANGED: the table was rewritten'}); "
        f"size {fmt_bytes(step.before.size)} -> {fmt_bytes(step.after.size)} "
        f"({step.after.size - step.before.size:+,} bytes)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_database_arguments(parser, reusable=False)
    parser.add_argument("--repeat", type=int, default=5, help="add-field publishes to time")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args(argv)
    backends = []
    if not args.skip_sqlite:
        backends.append("sqlite")
    if not args.skip_postgres:
        if args.database_url:
            backends.append("postgresql")
        else:
            print("(no --database-url or $FORMFLOW_BENCH_DATABASE_URL: PostgreSQL skipped)")
    results = []
    for backend in backends:
        print(f"== {backend}: {args.rows:,} rows")
        with database(
            backend, url=args.database_url, schema="bench_publish", sqlite_path=args.sqlite_path
        ) as db:
            results.append(run(db, args.rows, args.repeat))
    print()
    print(
        f"{'database':<11} {'rows':>10} {'add field (median/max)':>24} {'rewrites':>9} "
        f"{'growth':>10} {'add index':>10}"
    )
    for r in results:
        print(
            f"{r['backend']:<11} {r['rows']:>10,} "
            f"{r['add_median'] * 1000:>11,.1f} / {r['add_max'] * 1000:>6,.1f} ms "
            f"{r['rewrites']:>9} {r['growth']:>+10,} {r['index']:>9.2f}s"
        )
    bad = [r["backend"] for r in results if not r["ok"] or r["rewrites"]]
    if bad:
        print(f"!! unexpected plan or a table rewrite on: {', '.join(bad)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
