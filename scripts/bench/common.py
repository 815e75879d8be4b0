"""What `scripts/bench_redeem.py` and `scripts/bench_delivery.py` share: processes and
ports, the couponsvc CLI and a keep-alive JSON client, gunicorn, the merchant fixture and
orders, CPU accounting through psutil, py-spy, the loopback receiver and the run's
prologue. What the benchmarks measure and why: docs/benchmarks.md."""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import http.client
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import psycopg
from cryptography.fernet import Fernet
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = ROOT / "scripts" / "bench"
VENV_BIN = Path(sys.executable).parent
ORDER_QUANTITY = 100


class BenchError(RuntimeError):
    """The benchmark cannot go on; the message says why."""


def log(message: str = "") -> None:
    print(message, flush=True)


def tool(name: str) -> str | None:
    """A console script of this venv, else one on PATH, else None."""
    candidate = VENV_BIN / name
    return str(candidate) if candidate.exists() else shutil.which(name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_tail(path: Path | None, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path else ""
    except OSError:
        return ""


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(len(ordered) * p) - 1))]


# ---------------------------------------------------------------- processes


class Processes:
    """Every process the benchmark starts, so each is stopped by its pid at the end."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen] = []

    def start(self, argv: list[str], *, env: dict[str, str], log_path: Path) -> subprocess.Popen:
        with open(log_path, "ab") as handle:
            proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                    stdout=handle, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        self._procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 15.0) -> bool:
        """Stop `proc`; whether it had to be killed (SIGKILL to its own process group)."""
        killed = False
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
                killed = True
        self._procs = [p for p in self._procs if p is not proc]
        return killed

    def stop_all(self) -> None:
        for proc in reversed(list(self._procs)):
            self.stop(proc)


def run(bench_fn, args: argparse.Namespace) -> int:
    """`bench_fn(args, procs)`, and every process it started stopped by its pid at the end:
    on success, on a BenchError, on SIGTERM or SIGINT (also when started with SIGINT
    ignored, as `cmd &` does)."""
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


def problems(out: Path) -> None:
    """Print the tracebacks and ERROR/CRITICAL lines of the run's logs."""
    header = False
    for path in sorted(out.glob("*.log")):
        hits = [line for line in path.read_text(errors="replace").splitlines()
                if "Traceback" in line or re.search(r"\b(ERROR|CRITICAL)\b", line)
                or re.search(r"^\w*(Error|Exception): ", line)]
        if hits:
            if not header:
                log("\n== problems seen in the logs")
                header = True
            log(f"  {path.name}: {len(hits)} error/traceback line(s), e.g.")
            for line in hits[:12]:
                log(f"    {line[:200]}")


# ---------------------------------------------------------------- the run's prologue


def add_common_args(parser: argparse.ArgumentParser, workers: int) -> None:
    parser.add_argument("--workers", type=int, default=workers, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument("--keep-db", action="store_true",
                        help="reuse the default scratch database instead of recreating it")
    parser.add_argument("--fresh-db", action="store_true",
                        help="drop and recreate the database even when DATABASE_URL names it")
    parser.add_argument("--out", type=Path, default=None, help="directory for logs and outputs")


@dataclass(frozen=True)
class Run:
    out: Path
    tag: str
    db_url: str
    redis_url: str
    env: dict[str, str]  # for every couponsvc process of the run


def prepare_database(url: str, *, recreate: bool) -> None:
    params = conninfo_to_dict(url)
    name = params.get("dbname")
    if not name:
        raise BenchError(f"DATABASE_URL names no database: {url}")
    with psycopg.connect(make_conninfo(**{**params, "dbname": "postgres"}), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and recreate:
            log(f"dropping the scratch database {name} (use --keep-db to keep it)")
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            exists = None
        if not exists:
            log(f"creating database {name}")
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def open_run(args: argparse.Namespace, name: str, load: str, *, default_db_url: str,
             default_redis_url: str, redis_note: str = "") -> Run:
    """The output directory, a tag for this run's names, the database (the default one
    created anew unless --keep-db), the environment of the couponsvc processes (settings
    from the environment win over run_keys), and a header saying what runs against what."""
    out = args.out or Path(tempfile.mkdtemp(prefix=f"couponsvc-bench-{name}-"))
    out.mkdir(parents=True, exist_ok=True)
    tag = secrets.token_hex(2).upper()
    db_url = re.sub(r"^(postgresql\+psycopg2?|postgres)://", "postgresql://",
                    os.environ.get("DATABASE_URL") or default_db_url)
    redis_url = os.environ.get("REDIS_URL") or default_redis_url
    log(f"couponsvc {name} benchmark, run {tag}; output in {out}")
    log(f"  DATABASE_URL={db_url}  REDIS_URL={redis_url}{redis_note}")
    log(f"  gunicorn -k gthread -w {args.workers} --threads {args.threads}; {load}; "
        f"{os.cpu_count()} CPUs")
    default_db = not os.environ.get("DATABASE_URL")
    prepare_database(db_url, recreate=args.fresh_db or (default_db and not args.keep_db))
    env = {**run_keys(conninfo_to_dict(db_url)["dbname"]), **os.environ, "DATABASE_URL": db_url,
           "REDIS_URL": redis_url,
           "COUPONSVC_INSTANCE_PATH": str(out / "instance"), "PYTHONUNBUFFERED": "1"}
    return Run(out, tag, db_url, redis_url, env)


def run_keys(dbname: str) -> dict[str, str]:
    """The settings a production boot requires, generated once per database and kept under
    instance/, so that a kept database's encrypted rows and signed campaigns stay readable."""
    path = ROOT / "instance" / f"bench-keys-{dbname}.json"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps({
            "SECRET_KEY": secrets.token_urlsafe(32),
            "COUPONSVC_QR_SIGNING_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32))
            .rstrip(b"=").decode(),
            "COUPONSVC_DATA_KEYS": Fernet.generate_key().decode(),
            "COUPONSVC_PUBLIC_URL": "http://couponsvc-bench.localhost"}))
        path.chmod(0o600)
    return json.loads(path.read_text())


def couponsvc_cli() -> list[str]:
    """The `couponsvc` console script, or `flask --app couponsvc` where it is not installed."""
    script = VENV_BIN / "couponsvc"
    return [str(script)] if script.exists() else [sys.executable, "-m", "flask", "--app", "couponsvc"]


def run_cli(args: list[str], env: dict[str, str], *, timeout: float = 300) -> str:
    done = subprocess.run([*couponsvc_cli(), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise BenchError(f"`couponsvc {' '.join(args)}` exited {done.returncode}:\n"
                         f"{done.stdout}\n{done.stderr}")
    return done.stdout


def setup_database(env: dict[str, str]) -> str:
    """`couponsvc db upgrade` and a platform key; the key."""
    run_cli(["db", "upgrade"], env)
    return run_cli(["create-key", "--role", "platform"], env).strip().splitlines()[-1]


# ---------------------------------------------------------------- HTTP


class Client:
    """A small keep-alive JSON client: one connection per thread."""

    def __init__(self, port: int, key: str, timeout: float = 600) -> None:
        self.port, self.key, self.timeout = port, key, timeout
        self._local = threading.local()

    def send(self, method: str, path: str, body: Any = None, *,
             idempotency_key: str | None = None) -> tuple[int, Any]:
        """(status, parsed answer); a dropped keep-alive connection is retried once."""
        headers = {"Authorization": f"Bearer {self.key}", "Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        for attempt in (1, 2):
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = self._local.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                                     timeout=self.timeout)
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
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, raw[:500].decode(errors="replace")

    def call(self, method: str, path: str, body: Any = None, *,
             expect: tuple[int, ...] = (200, 201, 202), **kwargs: Any) -> Any:
        status, data = self.send(method, path, body, **kwargs)
        if status not in expect:
            raise BenchError(f"{method} {path} -> {status}: {data}")
        return data


def wait_http(port: int, method: str, path: str, ok: set[int], proc: subprocess.Popen,
              log_path: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{proc.args[0]} exited {proc.returncode} while starting:\n"
                             f"{log_tail(log_path)}")
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request(method, path, headers={"Content-Length": "0"})
            status = conn.getresponse().status
            conn.close()
            if status in ok:
                return
        time.sleep(0.25)
    raise BenchError(f"{method} {path} on port {port} did not answer {sorted(ok)} within "
                     f"{timeout:.0f} s:\n{log_tail(log_path)}")


@functools.cache
def _help(exe: str) -> str:
    return subprocess.run([exe, "--help"], capture_output=True, text=True, check=False).stdout


@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[tuple[int, bool]]:
        """The master and its workers, for a Meter group."""
        return [(self.proc.pid, False), *((pid, False) for pid in children(self.proc.pid))]


def start_gunicorn(procs: Processes, args: argparse.Namespace, env: dict[str, str], out: Path,
                   tag: str, app: str = "couponsvc:create_app()",
                   probe: tuple[str, str, set[int]] = ("GET", "/healthz", {200}),
                   config: str | None = None) -> Server:
    """gunicorn -k gthread on `app` (a module of scripts/bench/ or couponsvc), answering `probe`;
    `config`: a gunicorn config (`python:couponsvc.gunicorn_conf`, as in production)."""
    port, log_path = free_port(), out / f"gunicorn-{tag}.log"
    gunicorn = tool("gunicorn") or "gunicorn"
    argv = [gunicorn, *(["-c", config] if config else []), "--bind", f"127.0.0.1:{port}",
            "--worker-class", "gthread", "--workers",
            str(args.workers), "--threads", str(args.threads), "--log-level", "warning",
            "--graceful-timeout", "5"]
    if not app.startswith("couponsvc:"):
        argv += ["--pythonpath", str(BENCH_DIR)]
    if "--no-control-socket" in _help(gunicorn):  # newer gunicorn opens one by default
        argv.append("--no-control-socket")
    proc = procs.start([*argv, app], env=env, log_path=log_path)
    wait_http(port, *probe, proc, log_path)
    return Server(proc, port, log_path)


def settle(db_url: str, tables: tuple[str, ...], wait: float = 60.0) -> str:
    """The database as calm for every contender: the rows the phase before wrote vacuumed
    and analysed, its WAL checkpointed, and no autovacuum worker left on this database (up
    to `wait` s). Otherwise the first contender measured after a phase of writes pays for
    that phase's autovacuum and full-page writes (its CPU is counted as PostgreSQL's), and
    a later one does not. What it did, for the log."""
    started = time.perf_counter()
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"VACUUM (ANALYZE) {', '.join(tables)}")
        conn.execute("CHECKPOINT")
        deadline = time.monotonic() + wait
        while conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker' "
                "AND datname = current_database()").fetchone()[0]:
            if time.monotonic() > deadline:
                return f"settled in {time.perf_counter() - started:.1f} s; autovacuum still running"
            time.sleep(0.2)
    return f"settled in {time.perf_counter() - started:.1f} s (VACUUM ANALYZE, CHECKPOINT)"


# ---------------------------------------------------------------- fixture and orders


@dataclass
class Fixture:
    merchant_id: str
    store_id: str
    scanner_key: str
    campaign_id: str


def make_fixture(client: Client, tag: str, max_coupons: int) -> Fixture:
    """A merchant, a store, a scanner key and a published campaign (min_group_size 1)."""
    merchant = client.call("POST", "/api/v1/merchants", {
        "name": f"Bench 商户 {tag}", "city": "上海", "timezone": "Asia/Shanghai"})
    path = f"/api/v1/merchants/{merchant['id']}"
    store = client.call("POST", f"{path}/stores",
                        {"name": "Bench store", "city": "上海", "address": "南京西路 1 号"})
    scanner = client.call("POST", f"{path}/api-keys",
                          {"role": "scanner", "label": f"bench scanner {tag}"})
    now = datetime.now(UTC)

    def at(delta: timedelta) -> str:
        return (now + delta).isoformat(timespec="seconds")

    campaign = client.call("POST", "/api/v1/campaigns", {
        "merchant_id": merchant["id"], "title": f"Bench deal {tag}",
        "description": "Benchmark campaign", "city": "上海", "price": 3990, "list_price": 8800,
        "currency": "CNY", "sales_start": at(timedelta(hours=-1)),
        "sales_end": at(timedelta(days=1)), "min_group_size": 1, "max_coupons": max_coupons,
        "uses_per_coupon": 1, "valid_from": at(timedelta(hours=-1)),
        "valid_until": at(timedelta(days=30))})
    client.call("POST", f"/api/v1/campaigns/{campaign['id']}/publish", {})
    return Fixture(merchant["id"], store["id"], scanner["key"], campaign["id"])


def place_orders(client: Client, fixture: Fixture, tag: str, first: int, count: int,
                 threads: int, codes: list[str], qr: dict[str, str] | None = None) -> float:
    """`count` orders of ORDER_QUANTITY from `threads` clients, their codes added to `codes`
    (and their QR payloads to `qr`, by code, when given); prints and answers the coupons
    issued per second."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    issued, lock = len(codes), threading.Lock()

    def one(number: int) -> None:
        ref = f"bench-{tag}-{number}"
        started = time.perf_counter()
        status, order = client.send(
            "POST", f"/api/v1/campaigns/{fixture.campaign_id}/orders",
            {"customer_ref": f"cust-{ref}", "quantity": ORDER_QUANTITY, "payment_ref": f"pay-{ref}"},
            idempotency_key=f"order-{ref}")
        if status in (200, 201):
            latencies.append(time.perf_counter() - started)
            codes.extend(c["code"] for c in order.get("coupons", []))
            if qr is not None:
                qr.update((c["code"], c["qr_payload"]) for c in order.get("coupons", []))
            return
        with lock:
            errors[f"{status} {order.get('code', '') if isinstance(order, dict) else ''}"] += 1
            if sum(errors.values()) == 1:
                log(f"  order refused: {status} {order}")

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, range(first, first + count)))
    seconds, coupons = time.perf_counter() - started, len(codes) - issued
    log(f"  {threads} client{'s' if threads > 1 else ''}: {len(latencies)} orders, {coupons} "
        f"coupons in {seconds:.2f} s = {coupons / seconds:,.0f} coupons/s (order p50 "
        f"{pct(latencies, .5) * 1000:.0f} ms, p99 {pct(latencies, .99) * 1000:.0f} ms)"
        + (f"; refused: {dict(errors)}" if errors else ""))
    return coupons / seconds


# ---------------------------------------------------------------- CPU accounting (psutil)


def cpu_seconds(pid: int, with_children: bool = False) -> float | None:
    """User + system CPU seconds of a live pid (plus its reaped children's)."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return None
    used = times.user + times.system
    return used + times.children_user + times.children_system if with_children else used


def children(pid: int) -> list[int]:
    """Every live process under `pid`."""
    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


_PG_BACKEND = re.compile(r"^postgres: [^:]+: \S+ (\S+) (?:\S+\(\d+\)|\[local\])")


def postgres_pids(dbname: str | None) -> list[int]:
    """The server's own processes and the client backends of `dbname`; not the backends of
    other databases (another test suite on the same server is not our cost)."""
    pids = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.info["name"] != "postgres":
            continue
        backend = _PG_BACKEND.match(" ".join(proc.info["cmdline"] or ()).strip())
        if not (backend and dbname and backend.group(1) != dbname):
            pids.append(proc.pid)
    return pids


def machine_busy_seconds() -> float:
    """CPU seconds all CPUs have spent busy since boot."""
    t = psutil.cpu_times()
    return sum(getattr(t, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq", "steal"))


def own_cpu_seconds() -> float:
    """This process and the children it reaped (wrk, pgbench)."""
    t = psutil.Process().cpu_times()
    return t.user + t.system + t.children_user + t.children_system


class Meter:
    """CPU seconds of named groups of processes during a phase, the machine's busy time, and
    what is left for other processes (their load makes the figures noisy).

    A group is a function giving (pid, count reaped children too) pairs, asked at the start
    and at the end; a process started inside the phase counts whole. A process that ends
    inside the phase counts through whoever reaps it, or, for the groups in `transient`
    (PostgreSQL backends opened and closed inside the phase), by its last value seen by a
    sampler thread every 0.2 s. `own` names this process and the children it reaped (wrk)."""

    def __init__(self, groups: dict[str, Any], transient: tuple[str, ...] = ("PostgreSQL",),
                 own: str = "bench") -> None:
        self.groups, self.transient, self.own_name = groups, transient, own
        self.used: dict[str, float] = {}
        self._seen: dict[str, dict[int, float]] = {name: {} for name in transient}
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._watch, name="meter", daemon=True)

    def _sample(self, names: Any = None) -> dict[str, dict[int, float]]:
        sample = {}
        for name in names or self.groups:
            values = ((pid, cpu_seconds(pid, kids)) for pid, kids in self.groups[name]())
            sample[name] = {pid: value for pid, value in values if value is not None}
        return sample

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            for name, values in self._sample(self.transient).items():
                self._seen[name].update(values)

    def __enter__(self) -> Meter:
        self.started, self.busy, self.own = time.monotonic(), machine_busy_seconds(), own_cpu_seconds()
        self.before = self._sample()
        self._sampler.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        after = self._sample()
        self._stop.set()
        self._sampler.join()
        self.wall = time.monotonic() - self.started or 1.0
        for name, now in after.items():
            before = self.before[name]
            used = sum(v - before.get(pid, 0.0) for pid, v in now.items())
            if name in self.transient:
                used += sum(v - before.get(pid, 0.0) for pid, v in self._seen[name].items()
                            if pid not in now)
            else:  # reaped by a process of the group, whose children's time now holds it
                used -= sum(v for pid, v in before.items() if pid not in now)
            self.used[name] = max(0.0, used)
        self.used[self.own_name] = own_cpu_seconds() - self.own
        self.machine = machine_busy_seconds() - self.busy
        self.others = max(0.0, self.machine - sum(self.used.values()))

    @property
    def others_cpus(self) -> float:
        return self.others / self.wall

    def describe(self) -> str:
        parts = ", ".join(f"{name} {value / self.wall:.2f}" for name, value in self.used.items())
        note = ("\n    NOTE: other processes took CPU during this phase; its figures are noisy"
                if self.others_cpus > 0.2 else "")
        return (f"CPUs busy {self.machine / self.wall:.2f} of {os.cpu_count()}: {parts}, "
                f"other processes {self.others_cpus:.2f}{note}")


# ---------------------------------------------------------------- py-spy


def start_py_spy(procs: Processes, out: Path, pid: int, target: Path,
                 duration: int | None = None) -> subprocess.Popen | None:
    """A py-spy flame graph of `pid` and its subprocesses into `target`, until stopped or
    `duration` s; None (and a note) where py-spy is missing or fails."""
    argv = [tool("py-spy") or "py-spy", "record", "--pid", str(pid), "--subprocesses",
            "--nonblocking", "--rate", "100", "--format", "flamegraph", "--output", str(target)]
    if not tool("py-spy"):
        log("  --profile: py-spy is not installed (pip install -e '.[bench]'); running unprofiled")
        return None
    proc = procs.start(argv + (["--duration", str(duration)] if duration else []),
                       env=dict(os.environ), log_path=out / "py-spy.log")
    time.sleep(1.0)
    if proc.poll() is None:
        return proc
    log(f"  --profile: py-spy failed (exit {proc.returncode}):\n{log_tail(out / 'py-spy.log', 8)}")
    return None


def stop_py_spy(procs: Processes, proc: subprocess.Popen | None, target: Path, wait: float = 0) -> bool:
    """Stop py-spy (after up to `wait` s for it to end by itself); whether it wrote a profile."""
    if proc is None:
        return False
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=wait)
    procs.stop(proc, signal.SIGINT, timeout=30)
    return target.exists() and target.stat().st_size > 0


# ---------------------------------------------------------------- the receiver


class Receiver:
    """scripts/bench/receiver.py: a loopback ERP that answers every POST at once and records it."""

    def __init__(self, procs: Processes, out: Path, status: int) -> None:
        self.port, self.log_path = free_port(), out / "receiver.log"
        argv = [sys.executable, str(BENCH_DIR / "receiver.py"), "--port", str(self.port),
                "--status", str(status), "--log", str(out / "received.jsonl")]
        self.proc = procs.start(argv, env=dict(os.environ), log_path=self.log_path)
        wait_http(self.port, "GET", "/_stats", {200}, self.proc, self.log_path)
        self.url = f"http://127.0.0.1:{self.port}/erp/webhooks"
        self._client = Client(self.port, "-")

    def count(self) -> int:
        return int(self._client.call("GET", "/_stats")["count"])

    def records(self, start: int) -> list[list[Any]]:
        """[received_at, webhook_id, redemption_id, redeemed_at, body_bytes] from index start."""
        return self._client.call("GET", f"/_records?from={start}")

    def sample(self) -> dict[str, Any]:
        """The last delivery's headers and body."""
        return self._client.call("GET", "/_sample")

    def wait_for(self, start: int, wanted: int, stall: float, cap: float,
                 alive: subprocess.Popen | None = None, poll: float = 0.02) -> int:
        """Wait until `wanted` POSTs arrived after index `start`, or none arrived for `stall`
        seconds, or `cap` seconds passed; the count reached. Fails if `alive` exits."""
        now = time.monotonic()
        deadline, progress, last = now + cap, now, -1
        while True:
            got = self.count() - start
            now = time.monotonic()
            if got != last:
                progress, last = now, got
            if got >= wanted or now > deadline or now - progress > stall:
                return got
            if alive is not None and alive.poll() is not None:
                raise BenchError(f"{alive.args[-1]} exited {alive.returncode}")
            time.sleep(poll)


def table(title: str, rows: list[tuple[str, str, str]]) -> None:
    """The summary: what, measured, aim."""
    log(f"\n== summary ({title})")
    width, vwidth = max(len(r[0]) for r in rows), max(len(r[1]) for r in rows)
    log(f"  {'what':<{width}}  {'measured':>{vwidth}}  aim")
    for what, value, aim in rows:
        log(f"  {what:<{width}}  {value:>{vwidth}}  {aim}")
