"""Redemption, order and bulk-issuance speed of couponsvc, through the real stack.

A benchmark, not a test: it measures and prints, and asserts nothing about timing.

    .venv/bin/python scripts/bench_redeem.py                  # 20 s runs, 1,000,000 bulk codes
    .venv/bin/python scripts/bench_redeem.py --duration 10 --bulk-count 100000
    .venv/bin/python scripts/bench_redeem.py --skip-bulk --profile

One run does, against PostgreSQL (`DATABASE_URL`) and Redis (`REDIS_URL`):

1. `couponsvc db upgrade`, `couponsvc create-key --role platform`, and `couponsvc worker`
   (with `REDIS_URL` set, bulk jobs run on RQ, so a worker is part of the stack).
2. gunicorn on `couponsvc:create_app()`; through the HTTP API: a merchant, a store, a
   scanner key, a published campaign (`min_group_size` 1), then orders of
   `quantity=100`, first one at a time and then from `--order-threads` threads: the
   "orders" figures are coupons issued per second.
3. Redemptions: `wrk -t2 -c16 --latency` with `scripts/bench/redeem.lua`, every request
   redeeming a distinct coupon, after a short warm-up with coupons of its own. First
   ours (`POST /api/v1/redemptions`), then the ceiling, `scripts/bench/thin_redeem.py`
   (one conditional UPDATE through a psycopg pool), with the same gunicorn settings,
   database and load, on a fresh set of coupons cloned in SQL from one of ours. The
   ratio is ours/ceiling redeems per second.
4. `pgbench` with `scripts/bench/pg_update.sql` (the same UPDATE, `-c 16 -j 2`) on a
   scratch table: raw PostgreSQL UPDATEs per second, for scale.
5. `POST /campaigns/{id}/coupons/bulk {count}`, polling the job until it ends: codes/s.

Figures: redeems/s counts 2xx answers only; every other status is printed, never
hidden. p50/p99 come from wrk's latency histogram, which covers every request of
the run. If a wrk thread runs out of coupons it stops early and the run says so
(raise --codes-per-second). Each measured run also prints the CPU time per redeem of
the app server and of PostgreSQL (from /proc), how busy the CPUs were and how much of
that went to other processes (on a shared machine the figures are noisy, and the run
says so), and what the database sessions were doing (pg_stat_activity every 50 ms:
many `idle in transaction` sessions mean requests hold transactions open while they
wait for the CPU or do other work).

gunicorn settings (the same for both apps): `-k gthread -w 3 --threads 4` by
default. gthread keeps the 16 client connections alive (sync workers close each
connection after one answer); on a 2-core machine, which also runs PostgreSQL and
wrk, 3 processes x 4 threads gave the ceiling app its best throughput with a
low p99 (measured against 2x4, 4x2, 2x8 gthread and 4 or 8 sync workers).
Change them with --workers, --threads, --worker-class.

Defaults: `DATABASE_URL=postgresql://postgres@127.0.0.1:5432/couponsvc_bench` and
`REDIS_URL=redis://127.0.0.1:6379/15`. The default database is the benchmark's own
scratch database: it is dropped and created anew on every run, so runs compare
(--keep-db keeps it). A database named by `DATABASE_URL` is created if missing and
never dropped unless --fresh-db says so. wrk is installed with apt-get if missing.
Logs, code lists and wrk output go to --out (default: a new temporary directory).
Every process the benchmark starts is stopped by its pid when it ends, error or not.

`--profile` runs py-spy on ours (master and its workers) during the measured run and
prints where the flame graph is; py-spy takes CPU of its own, so a profiled run's
figures are lower than an unprofiled one's.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "scripts" / "bench"
VENV_BIN = Path(sys.executable).parent
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/couponsvc_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
ORDER_QUANTITY = 100
WRK_THREADS = 2
WRK_CONNECTIONS = 16
PGBENCH_ROWS = 100_000


class BenchError(RuntimeError):
    """The benchmark cannot go on; the message says why."""


def log(message: str = "") -> None:
    print(message, flush=True)


def tool(name: str) -> str:
    """A console script of this venv, else one on PATH."""
    candidate = VENV_BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise BenchError(f"{name} is not installed (looked in {VENV_BIN} and PATH)")
    return found


# ---------------------------------------------------------------- processes


class Processes:
    """Every process the benchmark starts, so each is stopped by its pid at the end."""

    def __init__(self) -> None:
        self._procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, argv: list[str], *, env: dict[str, str], log_path: Path,
              cwd: Path = ROOT) -> subprocess.Popen:
        handle = open(log_path, "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        handle.close()
        self._procs.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                # Our own session: its process group id is the pid we started.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        self._procs = [(n, p) for n, p in self._procs if p is not proc]

    def stop_all(self) -> None:
        for _name, proc in reversed(list(self._procs)):
            self.stop(proc)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def log_problems(path: Path, limit: int = 12) -> tuple[int, list[str]]:
    """Count tracebacks and ERROR/CRITICAL lines in a log; return the count and a sample."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return 0, []
    hits = [line for line in text.splitlines()
            if "Traceback" in line or re.search(r"\b(ERROR|CRITICAL)\b", line)
            or re.search(r"^\w*(Error|Exception): ", line)]
    return len(hits), hits[:limit]


# ---------------------------------------------------------------- setup


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    log("wrk is not installed: running `apt-get install -y wrk` ...")
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=False)
    found = shutil.which("wrk")
    if not found:
        log("... that failed; running `apt-get update` and trying again")
        subprocess.run(["apt-get", "update"], check=False)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=False)
        found = shutil.which("wrk")
    if not found:
        raise BenchError("wrk could not be installed (apt-get install -y wrk)")
    return found


def libpq_url(raw: str) -> str:
    for scheme in ("postgresql+psycopg://", "postgres://"):
        if raw.startswith(scheme):
            return "postgresql://" + raw[len(scheme):]
    return raw


def prepare_database(url: str, *, recreate: bool) -> None:
    params = conninfo_to_dict(url)
    name = params.get("dbname")
    if not name:
        raise BenchError(f"DATABASE_URL names no database: {url}")
    admin = make_conninfo(**{**params, "dbname": "postgres"})
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and recreate:
            log(f"dropping the scratch database {name} (use --keep-db to keep it)")
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            exists = None
        if not exists:
            log(f"creating database {name}")
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def couponsvc_cli() -> list[str]:
    """The `couponsvc` console script, or `flask --app couponsvc` where it is not installed."""
    script = VENV_BIN / "couponsvc"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "flask", "--app", "couponsvc"]


def run_cli(args: list[str], env: dict[str, str], *, timeout: float = 300) -> str:
    argv = [*couponsvc_cli(), *args]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if done.returncode != 0:
        raise BenchError(f"`couponsvc {' '.join(args)}` exited {done.returncode}:\n"
                         f"{done.stdout}\n{done.stderr}")
    return done.stdout


# ---------------------------------------------------------------- HTTP


class ApiError(BenchError):
    def __init__(self, method: str, path: str, status: int, body: Any) -> None:
        super().__init__(f"{method} {path} -> {status}: {body}")
        self.status = status
        self.body = body


class Client:
    """A small keep-alive JSON client: one connection per thread."""

    def __init__(self, port: int, key: str) -> None:
        self.port = port
        self.key = key
        self._local = threading.local()

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
            self._local.conn = conn
        return conn

    def call(self, method: str, path: str, body: Any = None, *, key: str | None = None,
             idempotency_key: str | None = None, expect: tuple[int, ...] = (200, 201, 202)
             ) -> Any:
        headers = {"Authorization": f"Bearer {key or self.key}", "Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        for attempt in (1, 2):
            conn = self._conn()
            try:
                conn.request(method, path, body=payload, headers=headers)
                response = conn.getresponse()
                raw = response.read()
                break
            except (ConnectionError, http.client.HTTPException):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = raw[:500].decode(errors="replace")
        if response.status not in expect:
            raise ApiError(method, path, response.status, data)
        return data


def wait_http(port: int, method: str, path: str, ok: set[int], proc: subprocess.Popen,
              log_path: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"gunicorn exited {proc.returncode} while starting:\n{log_tail(log_path)}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request(method, path, headers={"Content-Length": "0"})
            status = conn.getresponse().status
            conn.close()
            if status in ok:
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise BenchError(f"{method} {path} on port {port} did not answer {sorted(ok)} within "
                     f"{timeout:.0f} s:\n{log_tail(log_path)}")


# ---------------------------------------------------------------- gunicorn


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def gunicorn_argv(args: argparse.Namespace, port: int, app: str) -> list[str]:
    argv = [tool("gunicorn"), "--bind", f"127.0.0.1:{port}", "--worker-class", args.worker_class,
            "--workers", str(args.workers), "--log-level", "warning", "--graceful-timeout", "5"]
    if args.worker_class == "gthread":
        argv += ["--threads", str(args.threads)]
    if "--no-control-socket" in _gunicorn_help():
        argv.append("--no-control-socket")
    return [*argv, app]


_HELP: list[str] = []


def _gunicorn_help() -> str:
    if not _HELP:
        done = subprocess.run([tool("gunicorn"), "--help"], capture_output=True, text=True,
                              check=False)
        _HELP.append(done.stdout)
    return _HELP[0]


def start_ours(procs: Processes, args: argparse.Namespace, env: dict[str, str],
               out: Path, tag: str) -> Server:
    port = free_port()
    log_path = out / f"gunicorn-ours-{tag}.log"
    proc = procs.start("gunicorn (couponsvc)", gunicorn_argv(args, port, "couponsvc:create_app()"),
                       env=env, log_path=log_path)
    wait_http(port, "GET", "/healthz", {200}, proc, log_path)
    return Server("ours", proc, port, log_path)


def start_thin(procs: Processes, args: argparse.Namespace, env: dict[str, str],
               out: Path) -> Server:
    port = free_port()
    log_path = out / "gunicorn-thin.log"
    thin_env = {**env, "THIN_POOL_SIZE": str(args.threads if args.worker_class == "gthread" else 1)}
    argv = gunicorn_argv(args, port, "thin_redeem:create_app()")
    argv[1:1] = ["--pythonpath", str(BENCH_DIR)]
    proc = procs.start("gunicorn (thin)", argv, env=thin_env, log_path=log_path)
    wait_http(port, "POST", "/redeem/BENCH-PROBE", {409}, proc, log_path)
    return Server("ceiling", proc, port, log_path)


_BACKEND = re.compile(r"^postgres: [^:]+: \S+ (\S+) (?:\S+\(\d+\)|\[local\])")


def postgres_pids(dbname: str | None) -> list[int]:
    """The server's own processes and the client backends of `dbname`; not the backends of
    other databases (another test suite on the same server is not our cost)."""
    out = subprocess.run(["ps", "-C", "postgres", "-o", "pid=,args="], capture_output=True,
                         text=True, check=False).stdout
    pids = []
    for line in out.splitlines():
        pid, _, args = line.strip().partition(" ")
        backend = _BACKEND.match(args.strip())
        if backend and dbname and backend.group(1) != dbname:
            continue
        pids.append(int(pid))
    return pids


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each live pid, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    result = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        result[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return result


def machine_busy_seconds() -> float:
    """CPU seconds all CPUs have spent busy since boot, from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """CPU time of the app server (master and workers), PostgreSQL, the load generator
    and everything else on the machine during a run: others' load makes figures noisy."""

    def __init__(self, server: Server, db_url: str | None) -> None:
        self.server = server
        self.dbname = conninfo_to_dict(db_url).get("dbname") if db_url else None

    def _sample(self) -> tuple[dict[int, float], dict[int, float]]:
        app = [self.server.proc.pid, *worker_pids(self.server.proc.pid)]
        return cpu_seconds(app), cpu_seconds(postgres_pids(self.dbname))

    def __enter__(self) -> CpuMeter:
        self.started = time.monotonic()
        self.busy = machine_busy_seconds()
        self.children = children_cpu_seconds()
        self.before = self._sample()
        return self

    def __exit__(self, *_exc: object) -> None:
        after = self._sample()
        self.app, self.db = (
            sum(v - before.get(pid, 0.0) for pid, v in now.items())
            for before, now in zip(self.before, after, strict=True)
        )
        self.wall = time.monotonic() - self.started
        self.load_generator = children_cpu_seconds() - self.children
        self.machine = machine_busy_seconds() - self.busy
        self.others = max(0.0, self.machine - self.app - self.db - self.load_generator)

    def describe(self) -> str:
        wall = self.wall or 1.0
        return (f"CPUs busy {self.machine / wall:.2f} of {os.cpu_count()}: app "
                f"{self.app / wall:.2f}, PostgreSQL {self.db / wall:.2f}, wrk "
                f"{self.load_generator / wall:.2f}, other processes {self.others / wall:.2f}")


class PgSampler:
    """Samples what the benchmark database's sessions are doing, every 50 ms, during a run.

    The mean number of sessions `active` (and on what they wait), `idle in
    transaction` (the app holds a transaction open while it works elsewhere) and
    `idle` show where a request's time goes that the app's CPU time does not explain.
    """

    def __init__(self, db_url: str | None) -> None:
        self.db_url = db_url
        self.counts: dict[str, int] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _loop(self) -> None:
        try:
            with psycopg.connect(self.db_url, autocommit=True) as conn:
                while not self._stop.wait(0.05):
                    rows = conn.execute(
                        "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                        "AND backend_type = 'client backend'").fetchall()
                    self.samples += 1
                    for state, wait_type, wait in rows:
                        name = state or "?"
                        if state == "active" and wait_type:
                            name = f"active, waiting on {wait_type}:{wait}"
                        self.counts[name] = self.counts.get(name, 0) + 1
        except psycopg.Error:
            pass

    def __enter__(self) -> PgSampler:
        if self.db_url:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def describe(self) -> str:
        if not self.samples:
            return "n/a"
        parts = sorted(self.counts.items(), key=lambda item: -item[1])
        return ", ".join(f"{name} {count / self.samples:.1f}" for name, count in parts[:6])


def worker_pids(master: int) -> list[int]:
    try:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True,
                             text=True, check=False).stdout
    except OSError:
        return []
    return [int(pid) for pid in out.split()]


# ---------------------------------------------------------------- fixture and orders


@dataclass
class Fixture:
    merchant_id: str
    store_id: str
    scanner_key: str
    campaign_id: str


@dataclass
class OrderStats:
    label: str
    orders: int = 0
    coupons: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.coupons / self.seconds if self.seconds else 0.0


def rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def make_fixture(client: Client, run_tag: str, max_coupons: int) -> Fixture:
    merchant = client.call("POST", "/api/v1/merchants",
                           {"name": f"Bench 商户 {run_tag}", "city": "上海",
                            "timezone": "Asia/Shanghai"})
    merchant_id = merchant["id"]
    store = client.call("POST", f"/api/v1/merchants/{merchant_id}/stores",
                        {"name": "Bench store", "city": "上海", "address": "南京西路 1 号"})
    scanner = client.call("POST", f"/api/v1/merchants/{merchant_id}/api-keys",
                          {"role": "scanner", "label": f"bench scanner {run_tag}"})
    now = datetime.now(UTC)
    campaign = client.call("POST", "/api/v1/campaigns", {
        "merchant_id": merchant_id,
        "title": f"Bench deal {run_tag}",
        "description": "Benchmark campaign",
        "city": "上海",
        "price": 3990,
        "list_price": 8800,
        "currency": "CNY",
        "sales_start": rfc3339(now - timedelta(hours=1)),
        "sales_end": rfc3339(now + timedelta(days=1)),
        "min_group_size": 1,
        "max_coupons": max_coupons,
        "uses_per_coupon": 1,
        "valid_from": rfc3339(now - timedelta(hours=1)),
        "valid_until": rfc3339(now + timedelta(days=30)),
    })
    campaign_id = campaign["id"]
    client.call("POST", f"/api/v1/campaigns/{campaign_id}/publish", {},
                expect=(200, 201))
    return Fixture(merchant_id, store["id"], scanner["key"], campaign_id)


def place_orders(client: Client, fixture: Fixture, run_tag: str, first: int, count: int,
                 threads: int, label: str, codes: list[str], lock: threading.Lock) -> OrderStats:
    stats = OrderStats(label)
    path = f"/api/v1/campaigns/{fixture.campaign_id}/orders"

    def one(number: int) -> None:
        ref = f"bench-{run_tag}-{number}"
        started = time.perf_counter()
        try:
            order = client.call("POST", path, {"customer_ref": f"cust-{ref}",
                                               "quantity": ORDER_QUANTITY,
                                               "payment_ref": f"pay-{ref}"},
                                idempotency_key=f"order-{ref}")
        except ApiError as error:
            code = error.body.get("code") if isinstance(error.body, dict) else None
            with lock:
                key = f"{error.status} {code or ''}".strip()
                stats.errors[key] = stats.errors.get(key, 0) + 1
                if stats.errors[key] == 1:
                    log(f"  order refused: {error}")
            return
        elapsed = time.perf_counter() - started
        issued = [c["code"] for c in order.get("coupons", [])]
        with lock:
            stats.orders += 1
            stats.coupons += len(issued)
            stats.latencies.append(elapsed)
            codes.extend(issued)

    started = time.perf_counter()
    if threads <= 1:
        for number in range(first, first + count):
            one(number)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(one, range(first, first + count)))
    stats.seconds = time.perf_counter() - started
    return stats


def print_orders(stats: OrderStats) -> None:
    lat = sorted(stats.latencies)
    p50 = statistics.median(lat) * 1000 if lat else float("nan")
    p99 = lat[min(len(lat) - 1, math.ceil(len(lat) * 0.99) - 1)] * 1000 if lat else float("nan")
    log(f"  {stats.label}: {stats.orders} orders, {stats.coupons} coupons in {stats.seconds:.2f} s"
        f" = {stats.rate:,.0f} coupons/s (order p50 {p50:.0f} ms, p99 {p99:.0f} ms)"
        + (f"; refused: {stats.errors}" if stats.errors else ""))


# ---------------------------------------------------------------- redemption runs


@dataclass
class WrkResult:
    label: str
    data: dict[str, Any]

    @property
    def seconds(self) -> float:
        return self.data["duration_us"] / 1e6

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.data["statuses"].items() if 200 <= int(status) < 300)

    @property
    def non_2xx(self) -> dict[str, int]:
        return {s: n for s, n in self.data["statuses"].items() if not 200 <= int(s) < 300}

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    cpu_app: float | None = None
    cpu_db: float | None = None
    sessions: str = "n/a"
    cpu_note: str = ""
    cpu_others: float = 0.0

    def ms(self, key: str) -> float:
        return self.data["latency_us"][key] / 1000

    def cpu_per_redeem(self) -> str:
        if self.cpu_app is None or not self.ok:
            return "n/a"
        return (f"app {self.cpu_app / self.ok * 1000:.2f} ms + PostgreSQL "
                f"{(self.cpu_db or 0.0) / self.ok * 1000:.2f} ms")


def run_wrk(wrk: str, server: Server, mode: str, codes_file: Path, seconds: int, out: Path,
            label: str, fixture: Fixture | None, idempotency: bool, db_url: str,
            sample_sessions: bool = True) -> WrkResult:
    argv = [wrk, f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{seconds}s", "--latency",
            "--timeout", "10s", "-s", str(BENCH_DIR / "redeem.lua"), server.url,
            "--", mode, str(codes_file), str(WRK_THREADS)]
    if mode == "ours":
        if fixture is None:
            raise BenchError("mode 'ours' needs the fixture")
        argv += [fixture.scanner_key, fixture.store_id, "1" if idempotency else "0"]
    with CpuMeter(server, db_url) as cpu, \
            PgSampler(db_url if sample_sessions else None) as sessions:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120,
                              check=False)
    (out / f"wrk-{label}.txt").write_text(done.stdout + done.stderr)
    match = re.search(r"^WRK_RESULT (\{.*\})$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or not match:
        raise BenchError(f"wrk ({label}) exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    result = WrkResult(label, json.loads(match.group(1)))
    result.cpu_app, result.cpu_db = cpu.app, cpu.db
    result.sessions = sessions.describe()
    result.cpu_note = cpu.describe()
    result.cpu_others = cpu.others / (cpu.wall or 1.0)
    return result


def print_wrk(result: WrkResult) -> None:
    d = result.data
    log(f"  {result.label}: {result.ok:,} redeemed in {result.seconds:.2f} s = "
        f"{result.rate:,.0f} redeems/s; latency p50 {result.ms('p50'):.1f} ms, "
        f"p90 {result.ms('p90'):.1f} ms, p99 {result.ms('p99'):.1f} ms, max {result.ms('max'):.1f} ms")
    log(f"    statuses {d['statuses']}; codes loaded {d['codes_loaded']:,}, answered "
        f"{d['answered']:,}; CPU per redeem: {result.cpu_per_redeem()}")
    if result.cpu_note:
        log(f"    {result.cpu_note}")
        if result.cpu_others > 0.2:
            log("    NOTE: other processes took CPU during this run; its figures are noisy")
    if result.sessions != "n/a":
        log(f"    PostgreSQL sessions (mean count by state): {result.sessions}")
    bad = result.non_2xx
    errors = {k: v for k, v in d["errors"].items() if v and k != "status"}
    if bad:
        log(f"    NON-2xx answers: {bad}")
    if errors:
        log(f"    socket errors/timeouts: {errors}")
    if d["exhausted_threads"]:
        log(f"    WARNING: {d['exhausted_threads']} wrk thread(s) ran out of coupons and stopped "
            f"early ({d['extra']} extra answers not counted); raise --codes-per-second")


def write_codes(path: Path, codes: list[str]) -> Path:
    path.write_text("\n".join(codes) + "\n")
    return path


def clone_coupons(db_url: str, template_code: str, count: int, tag: str) -> list[str]:
    """Insert `count` active single-use copies of one of ours, with new codes, in SQL."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        columns = [row[0] for row in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = "
            "current_schema() AND table_name = 'coupons' ORDER BY ordinal_position")]
        overrides = {
            "code": sql.SQL("%s || lpad(g::text, 8, '0')"),
            "status": sql.SQL("'active'"),
            "uses_left": sql.SQL("1"),
            "uses_total": sql.SQL("1"),
        }
        select = sql.SQL(", ").join(overrides.get(c, sql.Identifier(c)) for c in columns)
        query = sql.SQL(
            "INSERT INTO coupons ({cols}) SELECT {select} FROM coupons, "
            "generate_series(1, %s) AS g WHERE coupons.code = %s"
        ).format(cols=sql.SQL(", ").join(map(sql.Identifier, columns)), select=select)
        prefix = f"T{tag}"
        conn.execute(query, (prefix, count, template_code))
        conn.execute("ANALYZE coupons")
    return [f"{prefix}{n:08d}" for n in range(1, count + 1)]


def redeemed_among(db_url: str, codes: list[str]) -> int:
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM coupons WHERE code = ANY(%s) AND uses_left = 0",
                           (codes,)).fetchone()
    return int(row[0])


def smoke_redeem(server: Server, fixture: Fixture, code: str) -> None:
    client = Client(server.port, fixture.scanner_key)
    try:
        body = client.call("POST", "/api/v1/redemptions",
                           {"code": code, "store_id": fixture.store_id}, expect=(201,))
    except ApiError as error:
        raise BenchError(f"a single redemption failed, so there is nothing to measure: {error}")\
            from None
    log(f"  one redemption by hand: 201, coupon status "
        f"{(body.get('coupon') or {}).get('status')!r}")


def start_profiler(procs: Processes, server: Server, out: Path, seconds: int,
                   fmt: str, gil_only: bool) -> tuple[subprocess.Popen | None, Path]:
    suffix = {"flamegraph": "svg", "speedscope": "json", "raw": "txt"}[fmt]
    target = out / f"profile-ours.{suffix}"
    py_spy = VENV_BIN / "py-spy"
    if not py_spy.exists() and not shutil.which("py-spy"):
        log("  --profile: py-spy is not installed (pip install py-spy); running unprofiled")
        return None, target
    argv = [str(py_spy) if py_spy.exists() else "py-spy", "record", "--pid", str(server.proc.pid),
            "--subprocesses", "--nonblocking", "--rate", "100", "--format", fmt,
            "--duration", str(seconds + 1), "--output", str(target)]
    if gil_only:
        argv.append("--gil")
    proc = procs.start("py-spy", argv, env=dict(os.environ), log_path=out / "py-spy.log")
    time.sleep(1.0)
    if proc.poll() is not None:
        log(f"  --profile: py-spy failed to start (exit {proc.returncode}), going on "
            f"unprofiled:\n{log_tail(out / 'py-spy.log', 8)}")
        return None, target
    return proc, target


def finish_profiler(procs: Processes, proc: subprocess.Popen | None, target: Path,
                    out: Path) -> str:
    if proc is None:
        return "py-spy did not run"
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        procs.stop(proc, signal.SIGINT)
    procs.stop(proc)
    if target.exists() and target.stat().st_size > 0:
        return str(target)
    return f"py-spy wrote nothing (exit {proc.returncode}):\n{log_tail(out / 'py-spy.log', 8)}"


# ---------------------------------------------------------------- pgbench


def run_pgbench(db_url: str, clients: int, seconds: int, out: Path) -> float | None:
    pgbench = shutil.which("pgbench")
    if not pgbench:
        log("  pgbench is not installed (apt-get install postgresql-client); skipped")
        return None
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_pgb_coupons")
        conn.execute("CREATE TABLE bench_pgb_coupons (id integer PRIMARY KEY, "
                     "status varchar(16) NOT NULL, uses_left integer NOT NULL)")
        conn.execute("INSERT INTO bench_pgb_coupons SELECT g, 'active', 1000000000 "
                     "FROM generate_series(1, %s) AS g", (PGBENCH_ROWS,))
        conn.execute("VACUUM ANALYZE bench_pgb_coupons")
    try:
        argv = [pgbench, "-n", "-f", str(BENCH_DIR / "pg_update.sql"), "-D",
                f"rows={PGBENCH_ROWS}", "-c", str(clients), "-j", str(WRK_THREADS),
                "-T", str(seconds), db_url]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120,
                              check=False)
        (out / "pgbench.txt").write_text(done.stdout + done.stderr)
        match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
        if done.returncode != 0 or not match:
            log(f"  pgbench failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
            return None
        return float(match.group(1))
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS bench_pgb_coupons")


# ---------------------------------------------------------------- bulk


@dataclass
class BulkResult:
    count: int
    seconds: float
    status: str
    job_seconds: float | None
    in_db: int

    @property
    def rate(self) -> float:
        return self.in_db / self.seconds if self.seconds else 0.0


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def run_bulk(client: Client, fixture: Fixture, count: int, db_url: str, run_tag: str) -> BulkResult:
    with psycopg.connect(db_url, autocommit=True) as conn:
        before = conn.execute("SELECT count(*) FROM coupons WHERE campaign_id = %s",
                              (fixture.campaign_id,)).fetchone()[0]
    started = time.perf_counter()
    job = client.call("POST", f"/api/v1/campaigns/{fixture.campaign_id}/coupons/bulk",
                      {"count": count}, idempotency_key=f"bulk-{run_tag}", expect=(202,))
    job_id = job["id"]
    log(f"  job {job_id}: {job.get('status')}")
    deadline = time.monotonic() + max(900.0, count / 500)
    last_print = 0.0
    while True:
        job = client.call("GET", f"/api/v1/jobs/{job_id}", expect=(200,))
        if job.get("status") in ("succeeded", "failed"):
            break
        if time.monotonic() > deadline:
            raise BenchError(f"bulk job {job_id} still {job.get('status')} after the deadline")
        if time.monotonic() - last_print > 5:
            last_print = time.monotonic()
            log(f"  ... {job.get('status')}, done {job.get('done')} of {job.get('requested')}")
        time.sleep(0.2)
    seconds = time.perf_counter() - started
    begun, ended = parse_time(job.get("started_at")), parse_time(job.get("finished_at"))
    job_seconds = (ended - begun).total_seconds() if begun and ended else None
    with psycopg.connect(db_url, autocommit=True) as conn:
        after = conn.execute("SELECT count(*) FROM coupons WHERE campaign_id = %s",
                             (fixture.campaign_id,)).fetchone()[0]
    if job.get("status") == "failed":
        log(f"  bulk job FAILED: {job.get('error')}")
    return BulkResult(count, seconds, job["status"], job_seconds, after - before)


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=20, help="seconds of each measured wrk run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of wrk warm-up per app")
    parser.add_argument("--bulk-count", type=int, default=1_000_000, help="codes in the bulk job")
    parser.add_argument("--skip-bulk", action="store_true", help="leave out the bulk benchmark")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers (both apps)")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per gthread worker")
    parser.add_argument("--worker-class", default="gthread", choices=("gthread", "sync"),
                        help="gunicorn worker class (both apps)")
    parser.add_argument("--codes-per-second", type=int, default=3000,
                        help="coupons issued per second of wrk run and app (size them generously)")
    parser.add_argument("--order-threads", type=int, default=4,
                        help="threads placing orders concurrently")
    parser.add_argument("--orders-sequential", type=int, default=20,
                        help="orders placed one at a time before the concurrent ones")
    parser.add_argument("--pgbench-seconds", type=int, default=10)
    parser.add_argument("--idempotency", action="store_true",
                        help="send an Idempotency-Key with every redemption")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy the measured run of ours (its figures drop by py-spy's cost)")
    parser.add_argument("--profile-format", default="flamegraph",
                        choices=("flamegraph", "speedscope", "raw"),
                        help="py-spy output: flamegraph (svg), speedscope (json) or raw "
                             "(collapsed stacks, one a line)")
    parser.add_argument("--profile-gil", action="store_true",
                        help="sample only threads holding the GIL: where the CPU goes, "
                             "not where requests wait")
    parser.add_argument("--keep-db", action="store_true",
                        help="reuse the default scratch database instead of recreating it")
    parser.add_argument("--fresh-db", action="store_true",
                        help="drop and recreate the database even when DATABASE_URL names it")
    parser.add_argument("--out", type=Path, default=None,
                        help="directory for logs, code lists and wrk output")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return run(bench, parse_args(argv))


def run(bench_fn, args: argparse.Namespace) -> int:
    """`bench_fn(args, procs)`, and every process it started stopped by its pid at the
    end: on success, on a BenchError, on SIGTERM or SIGINT (also when started with
    SIGINT ignored, as `cmd &` does)."""
    procs = Processes()

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        return bench_fn(args, procs)
    except BenchError as error:
        log(f"\nbenchmark stopped: {error}")
        return 1
    finally:
        procs.stop_all()


@dataclass(frozen=True)
class Run:
    out: Path
    tag: str
    db_url: str
    redis_url: str
    env: dict[str, str]  # for every couponsvc process of the run


def open_run(args: argparse.Namespace, name: str, load: str, *, default_db_url: str,
             default_redis_url: str, redis_note: str = "") -> Run:
    """What both benchmarks do first: the output directory, a tag for this run's names,
    the database (created anew unless kept, see the module's docstring), the environment,
    and a header saying what runs against what."""
    out = args.out or Path(tempfile.mkdtemp(prefix=f"couponsvc-bench-{name}-"))
    out.mkdir(parents=True, exist_ok=True)
    tag = secrets.token_hex(2).upper()
    db_url = libpq_url(os.environ.get("DATABASE_URL") or default_db_url)
    redis_url = os.environ.get("REDIS_URL") or default_redis_url
    log(f"couponsvc {name} benchmark, run {tag}; output in {out}")
    log(f"  DATABASE_URL={db_url}  REDIS_URL={redis_url}{redis_note}")
    log(f"  gunicorn -k {args.worker_class} -w {args.workers}"
        + (f" --threads {args.threads}" if args.worker_class == "gthread" else "")
        + f"; {load}; {os.cpu_count()} CPUs")
    default_db = not os.environ.get("DATABASE_URL")
    prepare_database(db_url, recreate=args.fresh_db or (default_db and not args.keep_db))
    env = {**os.environ, "DATABASE_URL": db_url, "REDIS_URL": redis_url,
           "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(32),
           "COUPONSVC_INSTANCE_PATH": str(out / "instance"), "PYTHONUNBUFFERED": "1"}
    # what a boot on PostgreSQL requires (docs/security.md); these two commands need no configuration
    for variable, command in (("COUPONSVC_QR_SIGNING_KEYS", "new-qr-key"), ("COUPONSVC_DATA_KEYS", "new-data-key")):
        env[variable] = os.environ.get(variable) or run_cli([command], {"PATH": os.environ.get("PATH", "")}).strip()
    env["COUPONSVC_PUBLIC_URL"] = os.environ.get("COUPONSVC_PUBLIC_URL") or "http://couponsvc.bench"
    return Run(out, tag, db_url, redis_url, env)


def bench(args: argparse.Namespace, procs: Processes) -> int:
    wrk = ensure_wrk()
    run = open_run(args, "redemption", f"wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{args.duration}s",
                   default_db_url=DEFAULT_DATABASE_URL, default_redis_url=DEFAULT_REDIS_URL)
    out, run_tag, db_url, env = run.out, run.tag, run.db_url, run.env
    log("\n== setup")
    run_cli(["db", "upgrade"], env)
    platform_key = run_cli(["create-key", "--role", "platform"], env).strip().splitlines()[-1]
    log("  database upgraded, platform key created")
    procs.start("couponsvc worker", [*couponsvc_cli(), "worker"], env=env,
                log_path=out / "worker.log")
    ours = start_ours(procs, args, env, out, "redeem")
    client = Client(ours.port, platform_key)
    fixture = make_fixture(client, run_tag, max_coupons=10_000_000)
    log(f"  merchant {fixture.merchant_id}, store {fixture.store_id}, "
        f"campaign {fixture.campaign_id} (published)")

    log("\n== orders (quantity=100, through POST /campaigns/{id}/orders)")
    needed = (args.duration + args.warmup) * args.codes_per_second + 1
    total_orders = max(math.ceil(needed / ORDER_QUANTITY), args.orders_sequential + 1)
    codes: list[str] = []
    lock = threading.Lock()
    sequential = place_orders(client, fixture, run_tag, 0, args.orders_sequential, 1,
                              "1 client", codes, lock)
    print_orders(sequential)
    concurrent = place_orders(client, fixture, run_tag, args.orders_sequential,
                              total_orders - args.orders_sequential, args.order_threads,
                              f"{args.order_threads} clients", codes, lock)
    print_orders(concurrent)
    if len(codes) < 1000:
        raise BenchError(f"only {len(codes)} coupons were issued; not enough to measure")

    log("\n== redemptions: ours, POST /api/v1/redemptions")
    smoke_redeem(ours, fixture, codes[0])
    warm_n = args.warmup * args.codes_per_second
    warm_codes, run_codes = codes[1:1 + warm_n], codes[1 + warm_n:]
    if args.warmup:
        print_wrk(run_wrk(wrk, ours, "ours", write_codes(out / "codes-ours-warmup.txt", warm_codes),
                          args.warmup, out, "ours-warmup", fixture, args.idempotency, db_url,
                          sample_sessions=False))
    profiler, profile_target = (None, out / "profile")
    if args.profile:
        profiler, profile_target = start_profiler(procs, ours, out, args.duration,
                                                  args.profile_format, args.profile_gil)
    ours_result = run_wrk(wrk, ours, "ours", write_codes(out / "codes-ours.txt", run_codes),
                          args.duration, out, "ours", fixture, args.idempotency, db_url)
    ours_result.label = "ours"
    print_wrk(ours_result)
    profile_note = finish_profiler(procs, profiler, profile_target, out) if args.profile else None
    if profile_note:
        log(f"  profile: {profile_note}")
    in_db = redeemed_among(db_url, run_codes)
    log(f"  coupons of the run used up in the database: {in_db:,} (2xx answers: {ours_result.ok:,})")
    procs.stop(ours.proc)

    log("\n== redemptions: ceiling, scripts/bench/thin_redeem.py POST /redeem/<code>")
    thin_needed = (args.duration + args.warmup) * args.codes_per_second * 2
    thin_codes = clone_coupons(db_url, run_codes[-1], thin_needed, run_tag)
    log(f"  {len(thin_codes):,} fresh coupons cloned in SQL from {run_codes[-1]}")
    thin = start_thin(procs, args, env, out)
    thin_warm_n = args.warmup * args.codes_per_second * 2
    if args.warmup:
        print_wrk(run_wrk(wrk, thin, "thin", write_codes(out / "codes-thin-warmup.txt",
                                                         thin_codes[:thin_warm_n]),
                          args.warmup, out, "thin-warmup", None, False, db_url,
                          sample_sessions=False))
    thin_result = run_wrk(wrk, thin, "thin", write_codes(out / "codes-thin.txt",
                                                         thin_codes[thin_warm_n:]),
                          args.duration, out, "ceiling", None, False, db_url)
    print_wrk(thin_result)
    procs.stop(thin.proc)
    ratio = ours_result.rate / thin_result.rate if thin_result.rate else float("nan")
    log(f"  ratio ours/ceiling: {ratio:.2f}")

    log(f"\n== raw PostgreSQL: pgbench -c {WRK_CONNECTIONS} -j {WRK_THREADS} "
        f"-T {args.pgbench_seconds}, scripts/bench/pg_update.sql")
    pg_tps = run_pgbench(db_url, WRK_CONNECTIONS, args.pgbench_seconds, out)
    if pg_tps is not None:
        log(f"  {pg_tps:,.0f} UPDATEs/s")

    bulk: BulkResult | None = None
    if not args.skip_bulk:
        log(f"\n== bulk issuance: POST /campaigns/{{id}}/coupons/bulk {{count: {args.bulk_count}}}")
        ours_bulk = start_ours(procs, args, env, out, "bulk")
        bulk = run_bulk(Client(ours_bulk.port, platform_key), fixture, args.bulk_count, db_url,
                        run_tag)
        job_rate = (f", {bulk.in_db / bulk.job_seconds:,.0f} codes/s of job run time"
                    if bulk.job_seconds else "")
        log(f"  {bulk.status}: {bulk.in_db:,} codes in the database after {bulk.seconds:.1f} s "
            f"= {bulk.rate:,.0f} codes/s{job_rate}")
        procs.stop(ours_bulk.proc)

    summary(args, sequential, concurrent, ours_result, thin_result, ratio, pg_tps, bulk)
    problems(out)
    log(f"\nlogs and wrk output: {out}")
    return 0


def summary(args: argparse.Namespace, sequential: OrderStats, concurrent: OrderStats,
            ours: WrkResult, thin: WrkResult, ratio: float, pg_tps: float | None,
            bulk: BulkResult | None) -> None:
    rows: list[tuple[str, str, str]] = [
        ("redeems/s, ours", f"{ours.rate:,.0f}", ""),
        ("p50 / p99, ours", f"{ours.ms('p50'):.1f} / {ours.ms('p99'):.1f} ms", "p99 < 50 ms"),
        ("redeems/s, ceiling (thin app)", f"{thin.rate:,.0f}", ""),
        ("p50 / p99, ceiling", f"{thin.ms('p50'):.1f} / {thin.ms('p99'):.1f} ms", ""),
        ("ratio ours/ceiling", f"{ratio:.2f}", ">= 0.5"),
        ("CPU per redeem, ours", ours.cpu_per_redeem(), ""),
        ("CPU per redeem, ceiling", thin.cpu_per_redeem(), ""),
        ("CPUs used by other processes, ours / ceiling run",
         f"{ours.cpu_others:.2f} / {thin.cpu_others:.2f}", "~0 (a quiet machine)"),
        ("non-2xx, ours / ceiling", f"{sum(ours.non_2xx.values())} / {sum(thin.non_2xx.values())}",
         "0 / 0"),
        ("PostgreSQL UPDATEs/s (pgbench)", f"{pg_tps:,.0f}" if pg_tps else "n/a", ""),
        ("orders: coupons/s, 1 client", f"{sequential.rate:,.0f}", ""),
        (f"orders: coupons/s, {args.order_threads} clients", f"{concurrent.rate:,.0f}", ""),
    ]
    if bulk:
        rows.append((f"bulk: codes/s ({bulk.in_db:,} codes, {bulk.status})",
                     f"{bulk.rate:,.0f} ({bulk.seconds:.1f} s)", "1,000,000 in < 30 s"))
    log(f"\n== summary ({os.cpu_count()} CPUs; gunicorn -k {args.worker_class} -w {args.workers}"
        + (f" --threads {args.threads}" if args.worker_class == "gthread" else "")
        + f"; wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{args.duration}s"
        + ("; profiled" if args.profile else "") + ")")
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    log(f"  {'what':<{width}}  {'measured':>{vwidth}}  aim")
    for what, value, aim in rows:
        log(f"  {what:<{width}}  {value:>{vwidth}}  {aim}")


def problems(out: Path) -> None:
    found = False
    for path in sorted(out.glob("*.log")):
        count, sample = log_problems(path)
        if count:
            if not found:
                log("\n== problems seen in the logs")
                found = True
            log(f"  {path.name}: {count} error/traceback line(s), e.g.")
            for line in sample:
                log(f"    {line[:200]}")


if __name__ == "__main__":
    sys.exit(main())
