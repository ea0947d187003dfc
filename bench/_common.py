"""What the benchmarks share: the customer form, the databases, the data set, statistics.

The data set is one published form, ``customer`` (16 fields taken from the
bank CRM's customer form, with its unique and plain indexes), holding
``--rows`` records generated *inside the database* by one
``INSERT ... SELECT`` (PostgreSQL: ``generate_series``; SQLite: a recursive
CTE), with the secondary indexes dropped during the load and rebuilt after,
then ``ANALYZE``. Ids are 1..rows; every 100th record (id % 100 == 50) is
soft-deleted and every 50th has no birthday.

PostgreSQL runs get their own schema (``search_path`` is set through the
URL), so a benchmark never touches anything else in the database it is
pointed at; SQLite runs use a file in a temporary folder (or ``--sqlite-path``).
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import hashlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import migrations
from engine.catalog import load_schema
from engine.db import create_engine
from engine.forms.definition import parse_definition
from engine.publish.service import publish
from runtime.auth.service import create_user, login

REPO = Path(__file__).resolve().parent.parent
CUSTOMER_JSON = REPO / "examples" / "bank_crm" / "forms" / "customer.json"
URL_VARIABLE = "FORMFLOW_BENCH_DATABASE_URL"

# The 16 fields of the benchmark's customer form, in order.
BENCH_FIELDS = (
    "customer_no",  # unique
    "customer_type",
    "name",  # index
    "id_number",  # unique
    "phone",  # index
    "email",
    "birthday",  # index
    "annual_income",
    "branch",
    "owner_rm",
    "source_channel",
    "consent_marketing",
    "tier",
    "tags",
    "aum",
    "status",
)

N_DEPARTMENTS = 20
N_MANAGERS = 50
ADMIN = ("bench_admin", "bench-admin-pass-1")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- the form -----------------------------------------------------------------


def customer_document(
    *, extra: dict[str, dict[str, Any]] | None = None, index: Sequence[str] = ()
) -> dict[str, Any]:
    """The benchmark's customer form: ``extra`` fields appended, ``index`` fields indexed."""
    source = json.loads(CUSTOMER_JSON.read_text("utf-8"))
    doc = copy.deepcopy(source)
    props = source["schema"]["properties"]
    doc["schema"]["properties"] = {k: copy.deepcopy(props[k]) for k in BENCH_FIELDS}
    for key, prop in (extra or {}).items():
        doc["schema"]["properties"][key] = prop
    for key in index:
        doc["schema"]["properties"][key]["x-index"] = True
    keys = list(doc["schema"]["properties"])
    doc["schema"]["required"] = [k for k in source["schema"]["required"] if k in keys]
    ui = {k: v for k, v in source["ui_schema"].items() if k in keys}
    ui["ui:order"] = keys
    doc["ui_schema"] = ui
    return doc


def document_digest(doc: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


# -- databases ------------------------------------------------------------------


@dataclass
class Database:
    """One benchmark database: ``url`` is what the code under test connects to."""

    backend: str  # "sqlite" | "postgresql"
    url: str
    path: Path | None = None  # the SQLite file
    schema: str | None = None  # the PostgreSQL schema

    def engine(self) -> sa.Engine:
        return create_engine(self.url)

    def size_bytes(self, table: str) -> int:
        """The table's size on disk (SQLite: the whole file, after a checkpoint)."""
        engine = self.engine()
        try:
            with engine.connect() as conn:
                if self.backend == "postgresql":
                    return int(
                        conn.execute(
                            sa.text("SELECT pg_total_relation_size(CAST(:t AS regclass))"),
                            {"t": table},
                        ).scalar_one()
                    )
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            engine.dispose()
        assert self.path is not None
        return self.path.stat().st_size


def add_database_arguments(parser: argparse.ArgumentParser, *, reusable: bool) -> None:
    parser.add_argument(
        "--database-url",
        default=os.environ.get(URL_VARIABLE),
        help=f"PostgreSQL URL (default: ${URL_VARIABLE}); the benchmark works in its own schema",
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="records in the table")
    parser.add_argument(
        "--sqlite-path",
        type=Path,
        default=None,
        help="SQLite file to use and keep (default: a temporary file, removed afterwards)",
    )
    if reusable:
        parser.add_argument(
            "--reuse",
            action="store_true",
            help="use the data set an earlier --keep run left (same --rows), instead of loading",
        )
        parser.add_argument(
            "--keep",
            action="store_true",
            help="leave the PostgreSQL schema in place for a later --reuse",
        )


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")


def data_sets(args: argparse.Namespace, *, schema: str = "bench_data") -> Iterator[Database]:
    """The databases a data-set benchmark runs on, one after another: SQLite, then
    PostgreSQL when a URL is given (``add_database_arguments`` and
    ``add_backend_arguments`` options)."""
    backends = [] if args.skip_sqlite else ["sqlite"]
    if not args.skip_postgres:
        if args.database_url:
            backends.append("postgresql")
        else:
            print(f"(no --database-url or ${URL_VARIABLE}: PostgreSQL skipped)")
    for backend in backends:
        print(f"== {backend}: {args.rows:,} rows")
        with database(
            backend,
            url=args.database_url,
            schema=schema,
            sqlite_path=args.sqlite_path,
            reuse=args.reuse,
            keep=args.keep,
        ) as db:
            yield db


def render(url: sa.URL) -> str:
    return url.render_as_string(hide_password=False)


def postgres_url(raw: str | None) -> str:
    if not raw:
        raise SystemExit(f"PostgreSQL needs --database-url or ${URL_VARIABLE}")
    url = sa.make_url(raw)
    if url.get_backend_name() != "postgresql":
        raise SystemExit(f"--database-url must be a PostgreSQL URL, not {url.drivername}")
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return render(url)


def _admin_execute(url: str, sql: str) -> None:
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(sql)
    finally:
        admin.dispose()


@contextmanager
def database(
    backend: str,
    *,
    url: str | None,
    schema: str,
    sqlite_path: Path | None,
    reuse: bool = False,
    keep: bool = False,
) -> Iterator[Database]:
    """A database to load the data set into: emptied first unless ``reuse``.

    PostgreSQL: the schema ``schema`` of ``url`` (dropped on exit unless
    ``keep``). SQLite: ``sqlite_path`` (kept), or a temporary file.
    """
    if backend == "postgresql":
        base = postgres_url(url)
        scoped = render(sa.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"}))
        if not reuse:
            _admin_execute(base, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        _admin_execute(base, f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        try:
            yield Database("postgresql", scoped, schema=schema)
        finally:
            if not keep:
                _admin_execute(base, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        return
    with tempfile.TemporaryDirectory(prefix="formflow-bench-") as tmp:
        file = sqlite_path or Path(tmp) / "bench.db"
        if not reuse:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{file}{suffix}").unlink(missing_ok=True)
        yield Database("sqlite", f"sqlite:///{file}", path=file)


# -- the data set -------------------------------------------------------------------


@dataclass
class Dataset:
    rows: int
    admin_id: int
    load_seconds: float
    reused: bool


def _marker(conn: sa.Connection) -> tuple[int, str] | None:
    if not sa.inspect(conn).has_table("bench_dataset"):
        return None
    row = conn.execute(sa.text("SELECT rows, form FROM bench_dataset")).one_or_none()
    return (int(row.rows), str(row.form)) if row else None


def prepare(db: Database, rows: int, *, log: Callable[[str], None] = print) -> Dataset:
    """Make ``db`` hold the customer data set of ``rows`` records (v1 of the form).

    A data set already there with the same rows and form is reused; anything
    else in the way is an error (``database`` empties the place unless asked
    to reuse it).
    """
    doc = customer_document()
    digest = document_digest(doc)
    engine = db.engine()
    try:
        with engine.connect() as conn:
            marker = _marker(conn)
        if marker == (rows, digest):
            with engine.connect() as conn:
                admin_id = conn.execute(
                    sa.text("SELECT id FROM ff_user WHERE username = :u"), {"u": ADMIN[0]}
                ).scalar_one()
            log(f"  reusing the {rows:,}-row data set already in the {db.backend} database")
            return Dataset(rows, int(admin_id), 0.0, reused=True)
        if _has_tables(engine):
            raise SystemExit(
                f"The {db.backend} database holds a different data set (rows, form) = {marker}; "
                "run without --reuse to reload it"
            )
        started = time.perf_counter()
        migrations.upgrade(engine)
        with engine.begin() as conn:
            admin_id = _seed_people(conn)
            publish(conn, parse_definition(doc, source="bench customer"), actor_id=admin_id)
        _bulk_load(db, engine, rows, log)
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE bench_dataset (rows BIGINT, form VARCHAR(64))")
            conn.execute(
                sa.text("INSERT INTO bench_dataset VALUES (:r, :f)"), {"r": rows, "f": digest}
            )
        elapsed = time.perf_counter() - started
        log(f"  loaded {rows:,} rows into {db.backend} in {elapsed:.1f} s")
        return Dataset(rows, admin_id, elapsed, reused=False)
    finally:
        engine.dispose()


def _has_tables(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        return bool(sa.inspect(conn).get_table_names())


def _seed_people(conn: sa.Connection) -> int:
    at = now()
    admin_id = create_user(conn, username=ADMIN[0], password=ADMIN[1], is_superuser=True, now=at)
    for i in range(1, N_MANAGERS + 1):
        create_user(conn, username=f"rm{i:03d}", password=None, display_name=f"客户经理{i}", now=at)
    for i in range(1, N_DEPARTMENTS + 1):
        conn.execute(
            sa.text("INSERT INTO ff_department (code, name) VALUES (:c, :n)"),
            {"c": f"b{i:03d}", "n": f"第{i}支行"},
        )
    return admin_id


SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国志文辉力海云峰晨宇"


def _row_sql(dialect: str, rows: int) -> str:
    """One INSERT ... SELECT generating ``rows`` customers from the integer ``g``."""
    pg = dialect == "postgresql"

    def pad(expr: str, width: int) -> str:
        if pg:
            return f"lpad(CAST({expr} AS TEXT), {width}, '0')"
        return f"substr('{'0' * width}' || ({expr}), -{width})"

    def money(expr: str) -> str:  # whole yuan -> the column's storage
        return f"CAST({expr} AS NUMERIC(18,2))" if pg else f"(({expr}) * 100)"

    if pg:
        ts = "(TIMESTAMPTZ '2020-01-01 00:00:00+00' + g * INTERVAL '1 minute')"
        deleted = f"(CASE WHEN g % 100 = 50 THEN {ts} + INTERVAL '1 day' END)"
        birthday = (
            "(CASE WHEN g % 50 <> 7 "
            "THEN DATE '1950-01-01' + CAST((g * 7919) % 18250 AS INTEGER) END)"
        )
        boolean = "(g % 3 = 0)"
        tags = "CAST((CASE g % 3 WHEN 0 THEN '[\"payroll\"]' WHEN 1 THEN '[\"young\", \"credit_card_active\"]' ELSE '[]' END) AS JSON)"  # noqa: E501
        source = f"generate_series(CAST(1 AS BIGINT), {rows}) AS s(g)"
        prefix = ""
    else:
        ts = "(datetime('2020-01-01 00:00:00', '+' || g || ' minutes') || '.000000')"
        deleted = (
            "(CASE WHEN g % 100 = 50 THEN "
            "datetime('2020-01-02 00:00:00', '+' || g || ' minutes') || '.000000' END)"
        )
        birthday = "(CASE WHEN g % 50 <> 7 THEN date('1950-01-01', '+' || ((g * 7919) % 18250) || ' days') END)"  # noqa: E501
        boolean = "(g % 3 = 0)"
        tags = "(CASE g % 3 WHEN 0 THEN '[\"payroll\"]' WHEN 1 THEN '[\"young\", \"credit_card_active\"]' ELSE '[]' END)"  # noqa: E501
        source = "s"
        prefix = f"WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {rows})"
        prefix += " "
    columns = {
        "id": "g",
        "created_at": ts,
        "created_by": f"2 + g % {N_MANAGERS}",
        "updated_at": ts,
        "updated_by": f"2 + g % {N_MANAGERS}",
        "owner_id": f"2 + g % {N_MANAGERS}",
        "dept_id": f"1 + g % {N_DEPARTMENTS}",
        "version": "1",
        "deleted_at": deleted,
        "customer_no": f"'C' || {pad('g', 9)}",
        "customer_type": "(CASE WHEN g % 10 = 0 THEN 'corporate' ELSE 'individual' END)",
        "name": (
            f"substr('{SURNAMES}', CAST(1 + g % {len(SURNAMES)} AS INTEGER), 1)"
            f" || substr('{GIVEN}', CAST(1 + (g / {len(SURNAMES)}) % {len(GIVEN)} AS INTEGER), 1)"
            f" || substr('{GIVEN}', CAST(1 + (g / {len(SURNAMES) * len(GIVEN)}) % {len(GIVEN)}"
            " AS INTEGER), 1)"
        ),
        "id_number": f"'9' || {pad('g', 17)}",
        "phone": f"'13' || {pad('g', 9)}",
        "email": "'c' || g || '@example.com'",
        "birthday": birthday,
        "annual_income": money("(g * 37) % 1000000"),
        "branch": f"1 + g % {N_DEPARTMENTS}",
        "owner_rm": f"2 + g % {N_MANAGERS}",
        "source_channel": (
            "(CASE g % 4 WHEN 0 THEN 'branch_walk_in' WHEN 1 THEN 'referral' "
            "WHEN 2 THEN 'wechat' ELSE 'mobile_banking' END)"
        ),
        "consent_marketing": boolean,
        "tier": (
            "(CASE WHEN g % 20 = 0 THEN 'private' WHEN g % 20 < 4 THEN 'high' "
            "WHEN g % 20 < 10 THEN 'mid' ELSE 'mass' END)"
        ),
        "tags": tags,
        "aum": money("(g * 7907) % 5000000"),
        "status": "(CASE WHEN g % 10 = 9 THEN 'dormant' ELSE 'active' END)",
    }
    names = ", ".join(columns)
    values = ", ".join(columns.values())
    return f"{prefix}INSERT INTO form_customer ({names}) SELECT {values} FROM {source}"


def _bulk_load(db: Database, engine: sa.Engine, rows: int, log: Callable[[str], None]) -> None:
    """Insert the rows with the secondary indexes (and, on PostgreSQL, the foreign
    keys) removed, then put them back: one validation pass instead of one per row."""
    with engine.connect() as conn:
        table = load_schema(conn).form("customer").table
    indexes = list(table.indexes)
    pg = db.backend == "postgresql"
    fks = [c for c in table.constraints if isinstance(c, sa.ForeignKeyConstraint)] if pg else []
    phase = time.perf_counter()

    def lap(what: str) -> None:
        nonlocal phase
        t = time.perf_counter()
        log(f"    {what}: {t - phase:.1f} s")
        phase = t

    with engine.begin() as conn:
        if pg:
            conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
        for index in indexes:
            index.drop(conn)
        for fk in fks:
            conn.execute(sa.schema.DropConstraint(fk))
        conn.execute(sa.text(_row_sql(db.backend, rows)))
        lap("insert")
        if pg:
            conn.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('form_customer', 'id'), {max(rows, 1)})"
            )
        for index in indexes:
            index.create(conn)
        lap(f"{len(indexes)} indexes")
        for fk in fks:
            conn.execute(sa.schema.AddConstraint(fk))
        if fks:
            lap(f"{len(fks)} foreign keys")
    if pg:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE form_customer")
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    lap("vacuum/analyze")


def admin_token(engine: sa.Engine) -> str:
    with engine.begin() as conn:
        token, _, _ = login(
            conn, username=ADMIN[0], password=ADMIN[1], now=now(), ttl=dt.timedelta(hours=2)
        )
    return token


# -- statistics ---------------------------------------------------------------------


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[k]


def summary_ms(samples: Sequence[float]) -> tuple[float, float]:
    """(median, p95) in milliseconds of samples in seconds."""
    return statistics.median(samples) * 1000, percentile(samples, 0.95) * 1000


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def fmt_bytes(n: int) -> str:
    return f"{n / 1024 / 1024:,.1f} MiB"
