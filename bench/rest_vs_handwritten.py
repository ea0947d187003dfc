"""Generated REST endpoints next to a hand-written FastAPI + SQLAlchemy app, same table, same run.

Both apps serve the same two requests on the customer data set:

* ``GET /api/v1/forms/customer/records/{id}`` (a random live id per request);
* ``GET /api/v1/forms/customer/records?limit=50`` (the first page, id order).

The hand-written app does the same work: one transaction per request in a
FastAPI dependency, the bearer token resolved by
``runtime.auth.service.authenticate`` in that transaction, a hand-written
Core SELECT and row-to-JSON function, and byte-for-byte the same body and
ETag (checked before the load starts). Each app runs in its own uvicorn
process (one worker) on 127.0.0.1; the client is ``wrk`` when installed
(keep-alive, ``--connections`` connections, one thread), otherwise a
bounded httpx loop. The apps are loaded one at a time, alternately,
``--rounds`` times ``--duration`` seconds each, so they never compete for
the CPU. Target: generated >= 0.85x hand-written requests/s.

    python -m bench.rest_vs_handwritten [--backend sqlite|postgresql] [--rows N]
        [--duration S] [--rounds N] [--profile DIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import Response

from bench import _handwritten as hand
from bench._common import add_database_arguments, admin_token, database, prepare
from engine.errors import AuthenticationError
from runtime.auth.service import Principal, authenticate

TARGET = 0.85
HOST = "127.0.0.1"
RECORD_PATH = "/api/v1/forms/customer/records/{id}"
LIST_PATH = "/api/v1/forms/customer/records?limit=50"


# -- the two apps (run in the server subprocesses) ------------------------------------


def _db(request: Request) -> Iterator[sa.Connection]:
    with request.app.state.engine.begin() as conn:
        yield conn


Db = Annotated[sa.Connection, Depends(_db, scope="function")]


def _current_user(request: Request, conn: Db) -> Principal:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(401, "Use 'Authorization: Bearer <token>'.")
    try:
        return authenticate(conn, token.strip(), now=dt.datetime.now(dt.UTC))
    except AuthenticationError as exc:
        raise HTTPException(401, str(exc)) from None


User = Annotated[Principal, Depends(_current_user)]

handwritten = APIRouter()


@handwritten.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@handwritten.get("/api/v1/forms/customer/records/{record_id}")
def get_customer(record_id: int, conn: Db, user: User) -> Response:
    record = hand.get_customer(conn, record_id)
    if record is None:
        raise HTTPException(404, f"There is no customer {record_id}.")
    return Response(
        hand.dumps(record),
        media_type="application/json",
        headers={"ETag": f'"{record["version"]}"'},
    )


@handwritten.get("/api/v1/forms/customer/records")
def list_customers(
    conn: Db,
    user: User,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> Response:
    after = hand.decode_cursor(cursor)[1] if cursor else None
    items, next_cursor = hand.page_by_id(conn, limit, after)
    body = {"items": items, "next_cursor": next_cursor, "limit": limit}
    return Response(hand.dumps(body), media_type="application/json")


def handwritten_app(engine: sa.Engine) -> FastAPI:
    app = FastAPI()
    app.state.engine = engine
    app.include_router(handwritten)
    return app


def generated_app(engine: sa.Engine, url: str) -> Any:
    from runtime.settings import Settings
    from runtime.web.app import create_app

    return create_app(Settings(database_url=url), engine=engine)


MAX_SERVER_SECONDS = 1800


def serve(which: str, url: str, port: int) -> None:
    """Run one app with uvicorn; exits when the benchmark that started it is gone."""
    import uvicorn

    from engine.db import create_engine

    parent = os.getppid()
    started = time.monotonic()

    def watchdog() -> None:
        while os.getppid() == parent and time.monotonic() - started < MAX_SERVER_SECONDS:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watchdog, daemon=True).start()
    engine = create_engine(url)
    app = generated_app(engine, url) if which == "generated" else handwritten_app(engine)
    uvicorn.run(app, host=HOST, port=port, log_level="warning", access_log=False)


# -- servers and clients ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"


@contextmanager
def server(name: str, url: str) -> Iterator[Server]:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(_root()), os.environ.get("PYTHONPATH")])),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.rest_vs_handwritten", "serve", name, url, str(port)],
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the {name} server exited with {process.returncode}")
            try:
                if httpx.get(f"http://{HOST}:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the {name} server did not start within 60 s")
            time.sleep(0.2)
        yield Server(name, port, process)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of a process, all threads (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _root() -> Path:
    return Path(__file__).resolve().parent.parent


@dataclass
class Load:
    requests: int
    seconds: float
    errors: int
    p50_ms: float | None = None
    p99_ms: float | None = None
    server_cpu: float | None = None  # seconds of CPU the server process used

    @property
    def cpu_ms_per_request(self) -> float | None:
        if self.server_cpu is None or not self.requests:
            return None
        return 1000 * self.server_cpu / self.requests

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


WRK_RANDOM_ID = """
math.randomseed({seed})
request = function()
  local id = math.random(1, {rows})
  if id % 100 == 50 then id = id + 1 end  -- every 100th record is soft-deleted
  return wrk.format(nil, "/api/v1/forms/customer/records/" .. id)
end
"""


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk_load(
    srv: Server, path: str, token: str, seconds: float, connections: int, script: Path | None
) -> Load:
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "--timeout",
        "10s",
        "-H",
        f"Authorization: Bearer {token}",
    ]
    if script is not None:
        command += ["-s", str(script)]
    out = subprocess.run(
        [*command, srv.base + path], capture_output=True, text=True, timeout=seconds + 30
    ).stdout
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    if m is None:
        raise SystemExit(f"could not read wrk's output:\n{out}")
    elapsed = _ms(m.group(2), m.group(3)) / 1000
    errors = 0
    for pattern in (r"Non-2xx or 3xx responses: (\d+)", r"Socket errors: .*?timeout (\d+)"):
        if e := re.search(pattern, out):
            errors += int(e.group(1))
    if e := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+)", out):
        errors += sum(int(x) for x in e.groups())
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    return Load(
        int(m.group(1)),
        elapsed,
        errors,
        _ms(*p50.groups()) if p50 else None,
        _ms(*p99.groups()) if p99 else None,
    )


def httpx_load(
    srv: Server, path: str, token: str, seconds: float, connections: int, rows: int
) -> Load:
    """A bounded keep-alive client loop: ``connections`` threads for ``seconds``."""
    import random

    counts = [0] * connections
    errors = [0] * connections
    deadline = time.perf_counter() + seconds

    def worker(i: int) -> None:
        rnd = random.Random(i)
        with httpx.Client(base_url=srv.base, headers={"Authorization": f"Bearer {token}"}) as c:
            while time.perf_counter() < deadline and counts[i] < 10_000_000:
                p = path
                if "{id}" in path:
                    n = rnd.randint(1, rows)
                    p = path.format(id=n + 1 if n % 100 == 50 else n)
                if c.get(p).status_code != 200:
                    errors[i] += 1
                counts[i] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 30)
    return Load(sum(counts), time.perf_counter() - started, sum(errors))


# -- the benchmark -----------------------------------------------------------------------


def same_responses(servers: list[Server], token: str, rows: int) -> None:
    """Both apps must answer byte for byte the same, or the comparison means nothing."""
    headers = {"Authorization": f"Bearer {token}"}
    for path in (RECORD_PATH.format(id=1), RECORD_PATH.format(id=rows - 1), LIST_PATH):
        answers = [httpx.get(s.base + path, headers=headers, timeout=30) for s in servers]
        for s, r in zip(servers, answers, strict=True):
            if r.status_code != 200:
                raise SystemExit(f"{s.name} {path}: HTTP {r.status_code} {r.text[:300]}")
        first = answers[0]
        for s, r in zip(servers[1:], answers[1:], strict=True):
            if r.content != first.content or r.headers.get("etag") != first.headers.get("etag"):
                raise SystemExit(
                    f"{s.name} {path}: a different body or ETag than {servers[0].name}"
                )


def profile_server(srv: Server, seconds: float, out: Path, load: Any) -> Path | None:
    """Sample the server with py-spy while ``load()`` runs; returns the raw (collapsed) file."""
    pyspy = shutil.which("py-spy")
    if pyspy is None:
        print("  (py-spy is not installed: pip install py-spy; no profile taken)")
        return None
    target = out / f"{srv.name}.txt"
    spy = subprocess.Popen(
        [
            pyspy,
            "record",
            "--pid",
            str(srv.process.pid),
            "--duration",
            str(round(seconds)),
            "--rate",
            "250",
            "--gil",
            "--format",
            "raw",
            "--output",
            str(target),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    load()
    spy.wait(timeout=seconds + 60)
    return target if target.exists() else None


_LINE = re.compile(r":\d+\)$")


def top_frames(
    collapsed: Path, n: int = 20
) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """From py-spy's collapsed stacks: the top functions by own time, and the
    top Formflow functions (engine/, runtime/) by inclusive time, in % of samples."""
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        k = int(count)
        total += k
        frames = [_LINE.sub(")", f) for f in stack.split(";")]
        own[frames[-1]] = own.get(frames[-1], 0) + k
        for f in set(frames):
            incl[f] = incl.get(f, 0) + k
    total = max(total, 1)
    by_own = sorted(own.items(), key=lambda kv: -kv[1])[:n]
    ours = [kv for kv in incl.items() if "(engine/" in kv[0] or "(runtime/" in kv[0]]
    by_incl = sorted(ours, key=lambda kv: -kv[1])[:n]
    return (
        [(f, 100 * c / total) for f, c in by_own],
        [(f, 100 * c / total) for f, c in by_incl],
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        serve(argv[1], argv[2], int(argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_database_arguments(parser, reusable=True)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per round")
    parser.add_argument("--rounds", type=int, default=4, help="rounds per app and endpoint")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections")
    parser.add_argument("--client", choices=["auto", "wrk", "httpx"], default="auto")
    parser.add_argument(
        "--profile", type=Path, default=None, help="py-spy both servers; write profiles here"
    )
    args = parser.parse_args(argv)
    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "httpx"
    budget = 2 * 2 * args.rounds * args.duration
    print(
        f"== {args.backend}: {args.rows:,} rows; client {client}, {args.connections} connections, "
        f"{args.rounds} x {args.duration:.0f} s per app and endpoint (~{budget:.0f} s of load)"
    )
    with ExitStack() as stack:
        db = stack.enter_context(
            database(
                args.backend,
                url=args.database_url,
                schema="bench_data",
                sqlite_path=args.sqlite_path,
                reuse=args.reuse,
                keep=args.keep,
            )
        )
        prepare(db, args.rows)
        engine = db.engine()
        token = admin_token(engine)
        engine.dispose()
        gen = stack.enter_context(server("generated", db.url))
        handw = stack.enter_context(server("handwritten", db.url))
        same_responses([gen, handw], token, args.rows)
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="formflow-wrk-")))
        script = tmp / "random_id.lua"
        script.write_text(WRK_RANDOM_ID.format(seed=12345, rows=args.rows))

        def load(srv: Server, endpoint: str, seconds: float) -> Load:
            before = process_cpu(srv.process.pid)
            result = _load(srv, endpoint, seconds)
            after = process_cpu(srv.process.pid)
            if before is not None and after is not None:
                result.server_cpu = after - before
            return result

        def _load(srv: Server, endpoint: str, seconds: float) -> Load:
            path = RECORD_PATH if endpoint == "record" else LIST_PATH
            if client == "wrk":
                return wrk_load(
                    srv,
                    path if endpoint != "record" else "/",
                    token,
                    seconds,
                    args.connections,
                    script if endpoint == "record" else None,
                )
            return httpx_load(srv, path, token, seconds, args.connections, args.rows)

        results: dict[tuple[str, str], list[Load]] = {}
        load_before = os.getloadavg()[0]
        for endpoint in ("record", "list"):
            for srv in (gen, handw):  # warm up: caches, pools, the schema cache
                load(srv, endpoint, 2)
            for r in range(args.rounds):
                for srv in (gen, handw) if r % 2 == 0 else (handw, gen):
                    results.setdefault((endpoint, srv.name), []).append(
                        load(srv, endpoint, args.duration)
                    )
        print()
        print(
            f"{'endpoint':<28} {'generated req/s':>16} {'hand-written req/s':>19} {'ratio':>7}  "
            "p50/p99 ms (gen | hand)"
        )
        worst = float("inf")
        for endpoint, label in (("record", "GET record by id"), ("list", "GET list, 50 rows")):
            g = results[(endpoint, "generated")]
            h = results[(endpoint, "handwritten")]
            g_rps = sum(x.requests for x in g) / sum(x.seconds for x in g)
            h_rps = sum(x.requests for x in h) / sum(x.seconds for x in h)
            errors = sum(x.errors for x in g + h)
            ratio = g_rps / h_rps
            worst = min(worst, ratio)
            lat = " | ".join(
                f"{_fmt(median(x.p50_ms for x in side))}/{_fmt(median(x.p99_ms for x in side))}"
                for side in (g, h)
            )
            print(
                f"{label:<28} {g_rps:>16,.0f} {h_rps:>19,.0f} {ratio:>6.2f}x  {lat}"
                + (f"  !! {errors} errors" if errors else "")
            )
            cpu = [median(x.cpu_ms_per_request for x in side) for side in (g, h)]
            if cpu[0] and cpu[1]:
                print(
                    f"  server CPU per request: generated {cpu[0]:.2f} ms, hand-written "
                    f"{cpu[1]:.2f} ms (hand/generated {cpu[1] / cpu[0]:.2f}x; "
                    "less sensitive than req/s to other processes)"
                )
            pairs = [a.rps / b.rps for a, b in zip(g, h, strict=True)]
            print(
                "  rounds back to back, generated/hand-written req/s: "
                + ", ".join(f"{a.rps:,.0f}/{b.rps:,.0f}" for a, b in zip(g, h, strict=True))
                + f"; median of the round ratios {median(pairs):.2f}x"
            )
        load_after = os.getloadavg()[0]
        print(
            f"load average (1 min) before/after: {load_before:.2f}/{load_after:.2f} "
            f"on {os.cpu_count()} CPUs (this benchmark alone accounts for about 1.5)"
        )
        verdict = "meets" if worst >= TARGET else "MISSES"
        print(f"target generated >= {TARGET:.2f}x hand-written: {verdict} (worst {worst:.2f}x)")

        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
            for endpoint in ("record", "list"):
                for srv in (gen, handw):
                    out = args.profile / endpoint
                    out.mkdir(exist_ok=True)
                    raw = profile_server(
                        srv,
                        args.duration,
                        out,
                        lambda s=srv, e=endpoint: load(s, e, args.duration),
                    )
                    if raw is None:
                        continue
                    own, ours = top_frames(raw)
                    print(f"\n-- py-spy --gil, {srv.name}, {endpoint} ({raw})")
                    print("   top functions by own time (% of samples holding the GIL):")
                    for frame, pct in own:
                        print(f"   {pct:5.1f}%  {frame}")
                    if ours:
                        print("   Formflow functions by inclusive time:")
                        for frame, pct in ours:
                            print(f"   {pct:5.1f}%  {frame}")
    return 0 if worst >= TARGET else 1


def median(values: Any) -> float | None:
    data = [v for v in values if v is not None]
    return statistics.median(data) if data else None


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


if __name__ == "__main__":
    sys.exit(main())
