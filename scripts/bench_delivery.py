"""Delivery speed of couponsvc: from a redemption to the ERP receiver's 2xx, through the real stack.

A benchmark, not a test: it measures and prints, and asserts nothing about timing.

    .venv/bin/python scripts/bench_delivery.py                    # both worker classes
    .venv/bin/python scripts/bench_delivery.py --count 1000 --rounds 1 --latency-seconds 5
    .venv/bin/python scripts/bench_delivery.py --classes simple --profile

How deliveries travel (couponsvc/deliveries/): the redeem's transaction writes the
event and its delivery rows; after the commit the integration is *woken*, which
queues one drain job (`workers.deliver.drain`) on the `deliveries` queue only when no
drain holds the integration's lock. A drain claims up to 100 due deliveries per
statement, calls the adapter for each over one keep-alive session, records the
batch's attempts in one transaction, and loops until nothing is due (after a 5 s
budget it hands over to a fresh drain job). Retries and anything Redis lost are
woken by the relay sweep (every second). So the `deliveries` queue holds about one
job per integration, whatever the backlog: the backlog is the open deliveries in
the database (status pending or failed), and progress is the receiver's receipts.

One run does, against PostgreSQL (`DATABASE_URL`) and Redis (`REDIS_URL`, flushed first):

1. Setup as `scripts/bench_redeem.py` does (its helpers are imported): `couponsvc db
   upgrade`, a platform key, gunicorn on `couponsvc:create_app()`, and through the HTTP
   API a merchant, a store, a scanner key, a published campaign and orders of
   `quantity=100`. A loopback receiver (`scripts/bench/receiver.py`: asyncio HTTP/1.1
   keep-alive, answers 204 at once, records the time each POST had fully arrived, its
   `webhook-id` and its body) stands in for the ERP; a `webhook` integration
   subscribed to `coupon.redeemed` points at it. The app and the workers run with
   `COUPONSVC_ALLOW_PRIVATE_WEBHOOK_TARGETS=1`.
2. Latency, for each worker class: one worker running, coupons redeemed at a steady
   `--rate` for `--latency-seconds` (open loop: each redeem is sent at its scheduled
   time from a pool of client threads), after a few warm-up redeems. Per event, the
   receiver's receipt time minus the time the redeem request was sent, and minus the
   time its 201 came back (the drain is woken before the 201 is written, so this one
   can be negative): p50/p99; and how many drain jobs ran for how many deliveries (at
   a steady trickle a drain often finds one delivery, so this is the per-job case). A
   class whose worker cannot keep up with `--rate` (a backlog builds, latency grows
   without bound) is measured again at `--slow-rate`.
3. Ceiling: from this one process, sequential keep-alive POSTs (a `requests.Session`,
   the body and headers of a real delivery, the signature computed once) to the same
   receiver: POSTs/s. Also the adapter alone (`WebhookAdapter.deliver` in a loop, no
   database, no RQ): what the adapter's own code costs on top. Measured before and after
   the throughput runs; the ratios use the higher of the two.
4. Throughput, for each worker class: no worker running, `--count` coupons redeemed
   (`--fork-count` for the fork worker; the same by default), so as many deliveries
   are open in the database (and one or a few drain jobs wait on the `deliveries`
   queue); then one worker started. Deliveries/s from the first receipt until every
   attempt is recorded (no open delivery left in the database: the headline, the
   worker at work, its last batch's bookkeeping included), from the first receipt to
   the last receipt, and from the worker's start (which adds its start-up). Per
   delivery (after the first): CPU of the worker and of the others (from the first
   receipt until all is recorded), PostgreSQL commits, rollbacks, new sessions and
   rows read, by table scan and by index (pg_stat_database, pg_stat_user_tables and
   pg_stat_user_indexes of this database, the benchmark's own queries taken out), and
   Redis commands (INFO commandstats, server-wide), both from the worker's start until
   all is recorded (plus the ~2 s PostgreSQL takes to publish a busy backend's
   counters; not the worker's shutdown); and the drain jobs that ran (RQ's finished
   registry). `--rounds` repeats
   the pair, the order alternating (ABBA), so a drift in the machine's load favours
   neither. `--profile` runs py-spy on the worker in each class's first run (from its
   first delivery until all is recorded) and prints where its time goes: by step of
   the drain (claim, adapter call, record, lock, RQ outside the job), by library at
   the sampled frame (requests/urllib3, JSON, HMAC, SQLAlchemy, psycopg, redis-py,
   RQ), each also as CPU ms per delivery, and the busiest functions; that run is
   slower for it. `--profile-latency` does the same in the latency phase (at a steady
   trickle, where a drain job often carries a single delivery).

The worker classes: `simple` is the shipped `couponsvc worker` (RQ's SimpleWorker,
`workers/run.py`); `fork` is RQ's default `Worker`, which forks a work horse per job,
now once per drain job (one per batch loop, not per delivery), run by
`scripts/bench/rq_worker.py`, which does what `run_worker` does with that class.

Every phase prints where the CPU went (the worker with its work horses, the
receiver, PostgreSQL, Redis, gunicorn, this process) and how much went to other
processes: on a shared machine the figures are noisy, and the run says so. A worker
gets `STOP_PATIENCE` seconds to stop on SIGTERM before it is killed, and the run says
how often that was needed (a worker that ignores SIGTERM is a finding). At the
end it checks the whole run for lost and duplicate deliveries (every 201 redemption's
event against what the receiver got), the deliveries' states in the database, RQ's
failed jobs, and errors in the logs.

Defaults: `DATABASE_URL=postgresql://postgres@127.0.0.1:5432/couponsvc_bench_delivery`
(dropped and created anew on each run unless --keep-db; a database named by
`DATABASE_URL` is created if missing and dropped only with --fresh-db) and
`REDIS_URL=redis://127.0.0.1:6379/14` (flushed at the start: give it a Redis database
of its own). Logs, the receiver's records and profiles go to --out (default: a new
temporary directory). Every process the benchmark starts is stopped by its pid when
it ends, error or not. `--profile` needs py-spy (`pip install py-spy`, in the `bench`
extra).
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
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import redis
import requests
from bench_redeem import (
    BENCH_DIR,
    VENV_BIN,
    BenchError,
    Client,
    Fixture,
    Processes,
    Server,
    couponsvc_cli,
    free_port,
    log,
    log_problems,
    log_tail,
    machine_busy_seconds,
    make_fixture,
    open_run,
    place_orders,
    print_orders,
    run,
    run_cli,
    start_ours,
    wait_http,
    worker_pids,
)
from psycopg.conninfo import conninfo_to_dict

from integrations.adapter import Context
from integrations.adapter import Event as AdapterEvent
from integrations.http import new_session
from integrations.webhook import WebhookAdapter, sign

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/couponsvc_bench_delivery"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
ORDER_QUANTITY = 100
WARMUP_REDEEMS = 20
CLASS_NAMES = {"simple": "SimpleWorker", "fork": "Worker (fork)"}
AIM_P50_MS = 100.0
AIM_RATIO = 1 / 3
DRAIN_QUEUE = "deliveries"  # workers.queues.DELIVERIES: the drain jobs
STOP_PATIENCE = 5.0  # seconds a worker gets to stop on SIGTERM before it is killed
PG_IDLE_FLUSH = 10.5  # s: an idle backend publishes its last second of counters after 10 s
PG_COUNTER_QUERIES = 3  # autocommit statements in one `pg_counters`
PG_BUSY_FLUSH = 2.2  # s: a backend with a transaction each second publishes within ~2 s


# ---------------------------------------------------------------- CPU accounting


def proc_cpu(pid: int, with_children: bool) -> float | None:
    """User + system CPU seconds of a live pid (plus its reaped children's), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = int(fields[11]) + int(fields[12])
    if with_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """Every live process under `pid` (a worker's scheduler and work horse, say)."""
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True,
                         check=False).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2:
            children.setdefault(int(parts[1]), []).append(int(parts[0]))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def pg_counters(db_url: str) -> Counter[str]:
    """This database's transaction, session and row counters (pg_stat_database), and rows
    read per table scan and per index (pg_stat_user_tables, pg_stat_user_indexes)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit, xact_rollback, sessions, tup_returned, tup_fetched, "
            "tup_inserted, tup_updated FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        names = ("xact_commit", "xact_rollback", "sessions", "tup_returned", "tup_fetched",
                 "tup_inserted", "tup_updated")
        counters = Counter(dict(zip(names, (int(v or 0) for v in row), strict=True)))
        # where the rows read come from: sequential scans per table, index entries per index
        for table, seq_read in conn.execute(
                "SELECT relname, seq_tup_read FROM pg_stat_user_tables"):
            counters[f"seq scan of {table}"] = int(seq_read or 0)
        for table, index, read in conn.execute(
                "SELECT relname, indexrelname, idx_tup_read FROM pg_stat_user_indexes"):
            counters[f"index {index} ({table})"] = int(read or 0)
    return counters


def rows_read(used: Counter[str]) -> list[tuple[str, int]]:
    """Rows read by table scan or index, most first."""
    return [(name, n) for name, n in used.most_common()
            if name.startswith(("seq scan of ", "index ")) and n > 0]


def redis_counters(client: redis.Redis) -> Counter[str]:
    """Calls per command since the Redis server started (INFO commandstats)."""
    stats = client.info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): int(value["calls"])
                    for name, value in stats.items()})


def redis_server_pids(client: redis.Redis) -> list[int]:
    """The pid of the Redis server behind `client` (INFO server), not every redis-server on
    the machine (other test sessions run private ones); all of them if it cannot tell."""
    with contextlib.suppress(redis.RedisError, KeyError, ValueError):
        pid = int(client.info("server")["process_id"])
        if Path(f"/proc/{pid}").exists():
            return [pid]
    out = subprocess.run(["ps", "-C", "redis-server", "-o", "pid="], capture_output=True,
                         text=True, check=False).stdout
    return [int(pid) for pid in out.split()]


class Meter:
    """CPU seconds of named groups of processes during a phase, the machine's busy time,
    and what is left for other processes (their load makes the figures noisy).

    A group is a function giving (pid, count reaped children too) pairs, asked at the
    start and at the end; a process that started inside the phase counts whole. A
    process that ends inside the phase is counted by whoever reaps it (the worker's
    work horses, through the worker's reaped-children time: their CPU from before
    the phase is taken out) or, for the groups in `transient` (PostgreSQL backends that
    a work horse opened and closed), by its last value seen by a sampler thread that
    looks every `every` seconds (so at most that much of its CPU is missed).
    """

    def __init__(self, groups: dict[str, Any], transient: tuple[str, ...] = (),
                 every: float = 0.2) -> None:
        self.groups, self.transient, self.every = groups, transient, every
        self.used: dict[str, float] = {}
        self._seen: dict[str, dict[int, float]] = {name: {} for name in transient}
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None

    def _sample(self, names: Any = None) -> dict[str, dict[int, float]]:
        sample = {}
        for name in names or self.groups:
            values = {}
            for pid, with_children in self.groups[name]():
                value = proc_cpu(pid, with_children)
                if value is not None:
                    values[pid] = value
            sample[name] = values
        return sample

    def _watch(self) -> None:
        while not self._stop.wait(self.every):
            for name, values in self._sample(self.transient).items():
                self._seen[name].update(values)

    @staticmethod
    def _self_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    def __enter__(self) -> Meter:
        self.started = time.monotonic()
        self.busy = machine_busy_seconds()
        self.self_cpu = self._self_cpu()
        self.before = self._sample()
        if self.transient:
            self._sampler = threading.Thread(target=self._watch, name="meter", daemon=True)
            self._sampler.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        after = self._sample()
        if self._sampler is not None:
            self._stop.set()
            self._sampler.join()
        self.wall = time.monotonic() - self.started or 1.0
        for name, now in after.items():
            before = self.before[name]
            used = sum(v - before.get(pid, 0.0) for pid, v in now.items())
            if name in self.transient:  # ended inside the phase: its last value seen
                used += sum(v - before.get(pid, 0.0) for pid, v in self._seen[name].items()
                            if pid not in now)
            else:  # reaped by a process of the group, whose children's time now holds it all
                used -= sum(v for pid, v in before.items() if pid not in now)
            self.used[name] = max(0.0, used)
        self.used["bench"] = self._self_cpu() - self.self_cpu
        self.machine = machine_busy_seconds() - self.busy
        self.others = max(0.0, self.machine - sum(self.used.values()))

    def cpus(self, name: str) -> float:
        return self.used.get(name, 0.0) / self.wall

    @property
    def others_cpus(self) -> float:
        return self.others / self.wall

    def describe(self) -> str:
        parts = ", ".join(f"{name} {value / self.wall:.2f}" for name, value in self.used.items())
        return (f"CPUs busy {self.machine / self.wall:.2f} of {os.cpu_count()}: {parts}, "
                f"other processes {self.others_cpus:.2f}")


def our_postgres_pids(dbname: str | None) -> list[int]:
    """As bench_redeem's `postgres_pids`, from /proc instead of ps (the meter's sampler
    asks five times a second)."""
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if Path(f"/proc/{entry.name}/comm").read_text().strip() != "postgres":
                continue
            args = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        backend = _PG_BACKEND.match(args.decode(errors="replace").strip())
        if backend and dbname and backend.group(1) != dbname:
            continue
        pids.append(int(entry.name))
    return pids


_PG_BACKEND = re.compile(r"^postgres: [^:]+: \S+ (\S+) (?:\S+\(\d+\)|\[local\])")


# ---------------------------------------------------------------- the receiver


class Receiver:
    def __init__(self, proc: subprocess.Popen, port: int, log_path: Path) -> None:
        self.proc, self.port, self.log_path = proc, port, log_path
        self.url = f"http://127.0.0.1:{port}/erp/webhooks"
        self._client = Client(port, "-")

    def count(self) -> int:
        return int(self._client.call("GET", "/_stats", expect=(200,))["count"])

    def records(self, start: int) -> list[list[Any]]:
        """[received_at, webhook_id, redemption_id, redeemed_at, body_bytes] from index start."""
        return self._client.call("GET", f"/_records?from={start}", expect=(200,))

    def sample(self) -> dict[str, Any]:
        return self._client.call("GET", "/_sample", expect=(200,))

    def wait_for(self, start: int, wanted: int, stall: float = 15.0, cap: float = 900.0,
                 worker: subprocess.Popen | None = None, worker_log: Path | None = None,
                 poll: float = 0.02) -> int:
        """Wait until `wanted` POSTs arrived after index `start`, or none arrived for `stall`
        seconds, or `cap` seconds passed; the count reached."""
        now = time.monotonic()
        deadline, progress, last = now + cap, now, -1
        while True:
            got = self.count() - start
            now = time.monotonic()
            if got != last:
                progress, last = now, got
            if got >= wanted or now > deadline or now - progress > stall:
                return got
            if worker is not None and worker.poll() is not None:
                raise BenchError(f"the worker exited {worker.returncode}:\n"
                                 f"{log_tail(worker_log) if worker_log else ''}")
            time.sleep(poll)


def start_receiver(procs: Processes, out: Path, status: int) -> Receiver:
    port = free_port()
    log_path = out / "receiver.log"
    argv = [sys.executable, str(BENCH_DIR / "receiver.py"), "--port", str(port),
            "--status", str(status), "--log", str(out / "received.jsonl")]
    proc = procs.start("receiver", argv, env=dict(os.environ), log_path=log_path)
    wait_http(port, "GET", "/_stats", {200}, proc, log_path)
    return Receiver(proc, port, log_path)


# ---------------------------------------------------------------- redemptions


@dataclass
class Redeem:
    code: str
    sent: float  # time.time() just before the request was written
    answered: float  # time.time() once the answer was read
    status: int
    redemption_id: str | None


class Redeemer:
    """POST /api/v1/redemptions with the scanner key; one keep-alive connection per thread."""

    def __init__(self, port: int, fixture: Fixture) -> None:
        self.port, self.fixture = port, fixture
        self._local = threading.local()
        self.headers = {"Authorization": f"Bearer {fixture.scanner_key}",
                        "Content-Type": "application/json", "Accept": "application/json"}

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        return conn

    def redeem(self, code: str) -> Redeem:
        body = json.dumps({"code": code, "store_id": self.fixture.store_id}).encode()
        for attempt in (1, 2):
            conn = self._conn()
            sent = time.time()
            try:
                conn.request("POST", "/api/v1/redemptions", body=body, headers=self.headers)
                response = conn.getresponse()
                raw = response.read()
                answered = time.time()
                break
            except (ConnectionError, http.client.HTTPException):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    return Redeem(code, sent, time.time(), 0, None)
        redemption_id = None
        if response.status == 201:
            with contextlib.suppress(ValueError):
                redemption_id = json.loads(raw).get("id")
        elif not getattr(self._local, "warned", False):
            self._local.warned = True
            log(f"    redeem {code} -> {response.status}: {raw[:300]!r}")
        return Redeem(code, sent, answered, response.status, redemption_id)

    def paced(self, codes: list[str], rate: float, threads: int = 8) -> tuple[list[Redeem], float]:
        """Open loop: redeem i is sent at start + i/rate (or as soon as a thread is free);
        returns the redeems and the worst lag behind schedule, in seconds."""
        results: list[Redeem] = []
        lag = [0.0]
        lock = threading.Lock()

        def one(code: str, due: float) -> None:
            late = time.monotonic() - due
            result = self.redeem(code)
            with lock:
                results.append(result)
                lag[0] = max(lag[0], late)

        start = time.monotonic() + 0.05
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for number, code in enumerate(codes):
                due = start + number / rate
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                pool.submit(one, code, due)
        return results, lag[0]

    def burst(self, codes: list[str], threads: int = 4) -> tuple[list[Redeem], float]:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=threads) as pool:
            results = list(pool.map(self.redeem, codes))
        return results, time.perf_counter() - started


# ---------------------------------------------------------------- workers


class Stack:
    """What every phase needs: the processes, the environment, the receiver, gunicorn."""

    def __init__(self, procs: Processes, env: dict[str, str], out: Path, db_url: str,
                 redis_url: str, receiver: Receiver, server: Server) -> None:
        self.procs, self.env, self.out = procs, env, out
        self.db_url, self.redis_url = db_url, redis_url
        self.dbname = conninfo_to_dict(db_url).get("dbname")
        self.receiver, self.server = receiver, server
        self.worker: subprocess.Popen | None = None
        self.worker_log: Path | None = None
        self.worker_kind = ""
        self.stops: list[tuple[str, float, int | None]] = []  # kind, seconds, exit code
        self.redis = redis.Redis.from_url(redis_url)
        self.integration_id: str | None = None
        self.redis_pids = redis_server_pids(self.redis)

    def start_worker(self, kind: str, tag: str) -> subprocess.Popen:
        if kind == "simple":
            argv = [*couponsvc_cli(), "worker"]
        else:
            argv = [sys.executable, str(BENCH_DIR / "rq_worker.py"), "--class", kind]
        self.worker_log = self.out / f"worker-{kind}-{tag}.log"
        self.worker_kind = kind
        self.worker = self.procs.start(f"worker ({kind})", argv, env=self.env,
                                       log_path=self.worker_log)
        return self.worker

    def stop_worker(self, patience: float = STOP_PATIENCE) -> None:
        """SIGTERM, then SIGKILL after `patience` seconds (noted: a worker that ignores
        SIGTERM is a finding, and must not run on into the next measurement)."""
        if self.worker is None:
            return
        leftovers = {pid: cmdline(pid) for pid in descendants(self.worker.pid)}
        asked = time.monotonic()
        self.procs.stop(self.worker, timeout=patience)
        took = time.monotonic() - asked
        self.stops.append((self.worker_kind, took, self.worker.returncode))
        if self.worker.returncode == -signal.SIGKILL:
            log(f"    the {self.worker_kind} worker did not stop within {patience:g} s of SIGTERM; "
                f"killed (SIGKILL){self._restart_note()}")
        for pid, argv in leftovers.items():  # a work horse has a process group of its own
            if argv and cmdline(pid) == argv:
                log(f"    process {pid} of the worker outlived it; stopping it")
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        self.worker = None

    def _restart_note(self) -> str:
        text = self.worker_log.read_text(errors="replace") if self.worker_log else ""
        restarts = text.count("ended without a stop request")
        return (f"; its log says {restarts} time(s) 'the worker loop ended without a stop "
                f"request; starting it again'" if restarts else "")

    def meter(self) -> Meter:
        def worker_pids_() -> list[tuple[int, bool]]:
            if self.worker is None or self.worker.poll() is not None:
                return []
            return [(self.worker.pid, True), *((p, True) for p in descendants(self.worker.pid))]

        return Meter({
            "worker": worker_pids_,
            "receiver": lambda: [(self.receiver.proc.pid, False)],
            "PostgreSQL": lambda: [(p, False) for p in our_postgres_pids(self.dbname)],
            "Redis": lambda: [(p, False) for p in self.redis_pids],
            "gunicorn": lambda: [(self.server.proc.pid, True),
                                 *((p, False) for p in worker_pids(self.server.proc.pid))],
        }, transient=("PostgreSQL",))

    def open_deliveries(self, conn: psycopg.Connection | None = None) -> int:
        """The backlog: this integration's deliveries still pending or failed (to retry)."""
        query = ("SELECT count(*) FROM deliveries WHERE integration_id = %s "
                 "AND status IN ('pending', 'failed')")
        if conn is not None:
            return int(conn.execute(query, (self.integration_id,)).fetchone()[0])
        with psycopg.connect(self.db_url, autocommit=True) as own:
            return int(own.execute(query, (self.integration_id,)).fetchone()[0])

    def drain_jobs_queued(self) -> int:
        return int(self.redis.llen(f"rq:queue:{DRAIN_QUEUE}"))

    def drain_jobs_ended(self) -> int:
        """Drain jobs RQ has finished or failed so far (its registries; result_ttl 600 s)."""
        return int(self.redis.zcard(f"rq:finished:{DRAIN_QUEUE}")
                   + self.redis.zcard(f"rq:failed:{DRAIN_QUEUE}"))

    def wait_recorded(self, stall: float = 20.0, poll: float = 0.005) -> tuple[int, float, int]:
        """Wait until no delivery is open in the database, or none closed for `stall` s:
        (open deliveries left, when this saw them all closed, queries this made). Polled
        on one connection, so the caller can take the queries out of PostgreSQL's counts."""
        polls = 0
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            last, progress = -1, time.monotonic()
            while True:
                left = self.open_deliveries(conn)
                polls += 1
                now = time.monotonic()
                if left != last:
                    last, progress = left, now
                if left == 0 or now - progress > stall:
                    return left, time.time(), polls
                if self.worker is not None and self.worker.poll() is not None:
                    raise BenchError(f"the worker exited {self.worker.returncode}:\n"
                                     f"{log_tail(self.worker_log) if self.worker_log else ''}")
                time.sleep(poll)


# ---------------------------------------------------------------- profiling


def start_profiler(stack: Stack, target: Path) -> subprocess.Popen | None:
    """py-spy on the worker (and its work horses), raw collapsed stacks, until stopped."""
    py_spy = VENV_BIN / "py-spy"
    exe = str(py_spy) if py_spy.exists() else shutil.which("py-spy")
    if not exe or stack.worker is None:
        log("    --profile: py-spy is not installed (pip install py-spy); running unprofiled")
        return None
    argv = [exe, "record", "--pid", str(stack.worker.pid), "--subprocesses", "--nonblocking",
            "--rate", "500", "--format", "raw", "--output", str(target)]
    return stack.procs.start("py-spy", argv, env=dict(os.environ),
                             log_path=stack.out / "py-spy.log")


def stop_profiler(stack: Stack, proc: subprocess.Popen | None, target: Path) -> bool:
    """Stop py-spy; whether it wrote a profile."""
    if proc is None:
        return False
    stack.procs.stop(proc, signal.SIGINT, timeout=30)
    if not target.exists() or not target.stat().st_size:
        log(f"    --profile: py-spy wrote nothing:\n{log_tail(stack.out / 'py-spy.log', 8)}")
        return False
    return True


# A sample whose sampled frame is one of these waits (for a job, a work horse, the ticker's
# next second): not work. (py-spy mostly leaves idle threads out by itself.)
IDLE_FRAMES = ("blpop", "brpop", "blmove", "select (selectors", "poll (selectors", "_wait_for_horse",
               "wait (threading.py")

# The drain's steps, by the deepest of our frames in a sample (function, file): the first rule
# that matches the deepest frame with a rule wins.
STEPS: tuple[tuple[str, str, str], ...] = (
    ("attempt (", "couponsvc/deliveries/attempt.py", "adapter call (attempt: build, sign, POST)"),
    ("claim (", "couponsvc/deliveries/batch.py", "claim (UPDATE .. RETURNING, events SELECT)"),
    ("_events (", "couponsvc/deliveries/batch.py", "claim (UPDATE .. RETURNING, events SELECT)"),
    ("record (", "couponsvc/deliveries/batch.py", "record (SELECT FOR UPDATE, UPDATE, INSERT)"),
    ("release (", "couponsvc/deliveries/batch.py", "release unsent claims"),
    ("<listcomp> (", "couponsvc/deliveries/batch.py", "record (SELECT FOR UPDATE, UPDATE, INSERT)"),
    ("note_attempts (", "couponsvc/deliveries/health.py", "health (integration failing_since)"),
    ("Session.commit (", "sqlalchemy/orm/session.py", "commit (claim's and record's)"),
    ("Session.get (", "sqlalchemy/orm/session.py", "load the Integration"),
    ("http_session (", "couponsvc/adapters.py", "send_round: other"),
    ("RedisDrains.", "couponsvc/deliveries/wakeup.py", "drain lock and flag (Redis Lua)"),
    ("wake (", "couponsvc/deliveries/wakeup.py", "wake (hand-over: queue a drain job)"),
    ("send_round (", "couponsvc/deliveries/drain.py", "send_round: other"),
    ("drain (", "couponsvc/deliveries/drain.py", "drain: other"),
    ("wrapper (", "workers/job.py", "job wrapper (session.remove)"),
    ("sweep (", "workers/relay.py", "relay sweep job (every second)"),
    ("close_due (", "workers/relay.py", "close-due job"),
    ("Ticker.run (", "workers/periodic.py", "ticker (enqueues the periodic jobs)"),
)

# Libraries, by the sampled (leaf) frame's file: where the CPU is actually spent.
LIBRARIES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("requests/", "urllib3/", "http/client.py", "socket.py", "ssl.py", "email/",
      "http/cookiejar.py", "urllib/"), "HTTP: requests, urllib3, http.client, socket"),
    (("json/",), "JSON"),
    (("hmac.py", "hashlib.py", "base64.py", "secrets.py"), "HMAC, base64"),
    (("sqlalchemy/",), "SQLAlchemy"),
    (("psycopg/", "psycopg_binary/", "psycopg_pool/"), "psycopg (the driver)"),
    (("redis/",), "redis-py"),
    (("rq/",), "RQ"),
    (("logging/",), "logging"),
    (("marshmallow/",), "marshmallow"),
    (("flask/", "werkzeug/"), "Flask, Werkzeug"),
    (("integrations/",), "integrations/ (the adapter's own code)"),
    (("couponsvc/",), "couponsvc/"),
    (("workers/",), "workers/"),
    (("datetime.py", "_strptime.py", "zoneinfo/"), "datetime"),
    (("uuid.py", "pickle.py", "zlib", "copyreg.py"), "uuid, pickle (RQ's job payloads)"),
)


def _frame_name(frame: str) -> str:
    return re.sub(r":\d+\)$", ")", frame.strip())


def _step(frames: list[str]) -> str:
    for frame in reversed(frames):
        for function, path, step in STEPS:
            if frame.startswith(function) and path in frame:
                return step
            if function.endswith(".") and function in frame and path in frame:
                return step
    if any("rq/" in frame for frame in frames):
        return "RQ around the job (fetch, registries, heartbeats, result)"
    return "unattributed (no frame of ours: a partial stack, as py-spy --nonblocking takes some)"


def _library(frames: list[str]) -> str:
    leaf = frames[-1] if frames else ""
    for needles, name in LIBRARIES:
        if any(needle in leaf for needle in needles):
            return name
    match = re.search(r"\(([^:)]*)", leaf)
    return f"other: {match.group(1) if match else leaf[:40]}"


def profile_summary(path: Path, ms_per_delivery: float | None = None, top: int = 16) -> list[str]:
    """Where the worker's busy samples went: by step of the drain, by library at the sampled
    frame, and the busiest functions (inclusive); with ms per delivery when given the
    worker's CPU per delivery over the same window."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    steps: Counter[str] = Counter()
    libraries: Counter[str] = Counter()
    total = idle = 0
    for line in path.read_text(errors="replace").splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack_text.split(";") if not f.startswith(("process ", "thread "))]
        if not frames or any(marker in frames[-1] for marker in IDLE_FRAMES):
            idle += count
            continue
        total += count
        steps[_step(frames)] += count
        libraries[_library(frames)] += count
        own[_frame_name(frames[-1])] += count
        seen = set()
        for frame in frames:
            name = _frame_name(frame)
            if name not in seen:
                seen.add(name)
                inclusive[name] += count
    if not total:
        return ["no busy samples"]

    def row(name: str, count: int) -> str:
        share = count / total
        ms = f"  {share * ms_per_delivery:6.3f} ms/delivery" if ms_per_delivery else ""
        return f"{100 * share:5.1f}%{ms}  {name[:140]}"

    rows = [f"{total} busy samples ({idle} idle left out)"
            + (f"; the worker's CPU was {ms_per_delivery:.3f} ms per delivery in this run"
               if ms_per_delivery else "")]
    rows.append("by step of the drain (the deepest of our frames in the sample):")
    rows += ["  " + row(name, count) for name, count in steps.most_common()]
    rows.append("by library (the sampled frame's file):")
    rows += ["  " + row(name, count) for name, count in libraries.most_common(12)]
    rows.append("busiest functions below the drain's own (inclusive):")
    chain = ("<module>", "(rq/", "(workers/", "(couponsvc/cli.py", "(couponsvc/deliveries/drain.py",
             "(couponsvc/deliveries/attempt.py", "(click/", "(flask/cli", "WebhookAdapter.deliver (",
             "post (integrations/http.py")
    shown = 0
    for name, count in inclusive.most_common():
        if any(c in name for c in chain):
            continue
        rows.append("  " + row(name, count))
        shown += 1
        if shown >= top:
            break
    rows.append("hottest functions (self: the sampled frame):")
    rows += ["  " + row(name, count) for name, count in own.most_common(top)]
    return rows


# ---------------------------------------------------------------- phases


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(len(ordered) * p) - 1))]


@dataclass
class Latency:
    kind: str
    rate: float
    seconds: float
    redeems: list[Redeem]
    received: dict[str, float]  # redemption id -> receipt time (first)
    lag: float
    meter: Meter
    duplicates: int
    warmup: list[Redeem]
    drain_jobs: int  # drain jobs RQ ran during the phase (warm-up excluded)
    profile: list[str] = field(default_factory=list)

    @property
    def ok(self) -> list[Redeem]:
        return [r for r in self.redeems if r.status == 201 and r.redemption_id]

    @property
    def from_send(self) -> list[float]:
        return [(self.received[r.redemption_id] - r.sent) * 1000 for r in self.ok
                if r.redemption_id in self.received]

    @property
    def from_answer(self) -> list[float]:
        return [(self.received[r.redemption_id] - r.answered) * 1000 for r in self.ok
                if r.redemption_id in self.received]

    @property
    def request_ms(self) -> list[float]:
        return [(r.answered - r.sent) * 1000 for r in self.ok]

    @property
    def missing(self) -> list[str]:
        return [r.redemption_id for r in self.ok if r.redemption_id not in self.received]

    @property
    def kept_up(self) -> bool:
        """Whether deliveries kept pace with the redeems (no backlog building up)."""
        send = self.from_send
        return bool(send) and pct(send, .5) < 1000 and not self.missing

    @property
    def delivered_rate(self) -> float:
        times = sorted(self.received[r.redemption_id] for r in self.ok
                       if r.redemption_id in self.received)
        span = times[-1] - times[0] if len(times) > 1 else 0.0
        return (len(times) - 1) / span if span > 0 else float("nan")


def received_by_redemption(records: list[list[Any]]) -> tuple[dict[str, float], int]:
    """First receipt time per redemption id, and how many POSTs repeated an event."""
    first: dict[str, float] = {}
    ids = Counter()
    for received_at, webhook_id, redemption_id, _redeemed_at, _size in records:
        if webhook_id.startswith("ceiling"):
            continue
        ids[webhook_id] += 1
        if redemption_id and redemption_id not in first:
            first[redemption_id] = received_at
    return first, sum(n - 1 for n in ids.values() if n > 1)


def run_latency(stack: Stack, redeemer: Redeemer, kind: str, codes: list[str], rate: float,
                seconds: float, tag: str, profile: bool = False) -> Latency:
    receiver = stack.receiver
    worker = stack.start_worker(kind, tag)
    warm, run = codes[:WARMUP_REDEEMS], codes[WARMUP_REDEEMS:]
    start = receiver.count()
    warmed = [r for r in (redeemer.redeem(c) for c in warm) if r.status == 201 and r.redemption_id]
    got = receiver.wait_for(start, len(warmed), 60, 120, worker, stack.worker_log)
    if got < len(warmed):
        raise BenchError(f"the {kind} worker delivered {got} of {len(warmed)} warm-up events:\n"
                         f"{log_tail(stack.worker_log)}")
    stack.wait_recorded()
    start, jobs_before = receiver.count(), stack.drain_jobs_ended()
    target = stack.out / f"profile-worker-{kind}-{tag}.txt"
    profiler = start_profiler(stack, target) if profile else None
    with stack.meter() as meter:
        redeems, lag = redeemer.paced(run, rate)
        ok = sum(1 for r in redeems if r.status == 201)
        receiver.wait_for(start, ok, 15, 900, worker, stack.worker_log)
    profiled = stop_profiler(stack, profiler, target)
    stack.wait_recorded()
    received, duplicates = received_by_redemption(receiver.records(start))
    stack.stop_worker()
    drain_jobs = stack.drain_jobs_ended() - jobs_before
    result = Latency(kind, rate, seconds, redeems, received, lag, meter, duplicates, warmed,
                     drain_jobs)
    if profiled:
        per_delivery = meter.used.get("worker", 0.0) / max(1, len(result.from_send)) * 1000
        result.profile = [f"profile (raw collapsed stacks, py-spy; its own cost slows this "
                          f"phase): {target}", *profile_summary(target, per_delivery)]
    return result


def print_latency(result: Latency) -> None:
    send, answer, request = result.from_send, result.from_answer, result.request_ms
    statuses = Counter(r.status for r in result.redeems)
    log(f"  {CLASS_NAMES[result.kind]}: {len(result.redeems)} redeems at {result.rate:g}/s over "
        f"{result.seconds:g} s, statuses {dict(statuses)}; {len(send)} events received"
        + (f" (worst send lag behind schedule {result.lag * 1000:.0f} ms)"
           if result.lag > 0.05 else ""))
    log(f"    redeem sent -> receipt: p50 {pct(send, .5):.1f} ms, p90 {pct(send, .9):.1f} ms, "
        f"p99 {pct(send, .99):.1f} ms, max {max(send, default=float('nan')):.1f} ms")
    log(f"    201 back    -> receipt: p50 {pct(answer, .5):.1f} ms, p90 {pct(answer, .9):.1f} ms, "
        f"p99 {pct(answer, .99):.1f} ms, max {max(answer, default=float('nan')):.1f} ms"
        f" (received before the 201 was read: {sum(1 for a in answer if a < 0)})")
    log(f"    the redeem request itself: p50 {pct(request, .5):.1f} ms, "
        f"p99 {pct(request, .99):.1f} ms")
    per_delivery = result.meter.used.get("worker", 0.0) / max(1, len(send)) * 1000
    log(f"    drain jobs run: {result.drain_jobs} for {len(send)} deliveries "
        f"({len(send) / max(1, result.drain_jobs):.1f} per job); worker CPU {per_delivery:.2f} ms "
        f"per delivery at this rate")
    log(f"    {result.meter.describe()}")
    if result.meter.others_cpus > 0.2:
        log("    NOTE: other processes took CPU during this phase; its figures are noisy")
    if not result.kept_up:
        log(f"    the worker did NOT keep up with {result.rate:g} redeems/s: it delivered "
            f"{result.delivered_rate:,.1f}/s, so a backlog built up and latency grew with it")
    if result.missing:
        log(f"    NOT RECEIVED by the end of the phase: {len(result.missing)} redeemed (201) "
            f"events, e.g. {result.missing[:3]} (the final checks say whether they came later)")
    if result.duplicates:
        log(f"    DUPLICATES: {result.duplicates} POSTs repeated an event already received")
    for line in result.profile:
        log(f"    {line}" if line.startswith("profile") else f"      {line}")


@dataclass
class Throughput:
    kind: str
    tag: str
    redeemed: int
    backlog: int  # open deliveries in the database when the worker started
    jobs_queued: int  # drain jobs waiting on the deliveries queue then
    received: int
    unique: int
    duplicates: int
    missing: int
    first: float
    last: float
    done: float  # when the benchmark saw no delivery open any more
    left_open: int
    started: float
    meter: Meter
    redeem_seconds: float
    ids: set[str]
    metered: int  # deliveries inside the CPU meter's window
    drain_jobs: int  # drain jobs RQ ran from the worker's start to its stop
    pg_used: Counter[str]
    redis_used: Counter[str]

    @property
    def rate(self) -> float:
        """Deliveries/s from the first receipt until every attempt was recorded."""
        span = self.done - self.first
        if self.left_open or span <= 0 or self.unique <= 1:
            return self.receipt_rate
        return (self.unique - 1) / span

    @property
    def receipt_rate(self) -> float:
        """Deliveries/s from the first receipt to the last."""
        span = self.last - self.first
        return (self.unique - 1) / span if span > 0 and self.unique > 1 else float("nan")

    @property
    def rate_from_start(self) -> float:
        span = max(self.last, self.done) - self.started
        return self.unique / span if span > 0 else float("nan")

    def per_delivery(self, name: str) -> float:
        return self.meter.used.get(name, 0.0) / self.metered * 1000


def run_throughput(stack: Stack, redeemer: Redeemer, kind: str, codes: list[str],
                   tag: str, profile: bool = False) -> Throughput:
    receiver = stack.receiver
    if stack.worker is not None:
        stack.stop_worker()
    start = receiver.count()
    redeems, redeem_seconds = redeemer.burst(codes)
    burst_end = time.monotonic()
    ok = [r for r in redeems if r.status == 201 and r.redemption_id]
    backlog, jobs_queued = stack.open_deliveries(), stack.drain_jobs_queued()
    log(f"  {CLASS_NAMES[kind]} ({tag}): {len(ok)} of {len(codes)} redeemed in "
        f"{redeem_seconds:.1f} s with no worker running; backlog {backlog} open deliveries in "
        f"the database, {jobs_queued} drain job(s) on the {DRAIN_QUEUE} queue")
    if backlog != len(ok):
        log(f"    NOTE: {backlog} open deliveries for {len(ok)} redeems (left over from an "
            f"earlier phase, or missing)")
    # PostgreSQL publishes a backend's counters at most once a second, and an idle backend's
    # last second only after 10 s idle: gunicorn's redeems must be in before the first count
    time.sleep(max(0.0, burst_end + PG_IDLE_FLUSH - time.monotonic()))
    pg_before, redis_before = pg_counters(stack.db_url), redis_counters(stack.redis)
    jobs_before = stack.drain_jobs_ended()
    started = time.time()
    worker = stack.start_worker(kind, tag)
    # CPU and the profile from the first receipt on: the worker's start-up is not per delivery
    receiver.wait_for(start, 1, 60, 120, worker, stack.worker_log, poll=0.005)
    target = stack.out / f"profile-worker-{kind}-{tag}.txt"
    profiler = start_profiler(stack, target) if profile else None
    with stack.meter() as meter:
        metered_from = receiver.count() - start
        got = receiver.wait_for(start, len(ok), 20, 1800, worker, stack.worker_log, poll=0.01)
        # the last batch is recorded after its last POST: the worker is done when none is open
        left_open, done, polls = stack.wait_recorded()
    profiled = stop_profiler(stack, profiler, target)
    # Counted up to here, not to the worker's stop (its shutdown is not per delivery): the
    # worker's last transactions reach pg_stat_database with its next relay sweep's.
    time.sleep(PG_BUSY_FLUSH)
    pg_used = pg_counters(stack.db_url) - pg_before
    # the benchmark's own: its polls, and the first count's connection (published on close)
    pg_used["xact_commit"] = max(0, pg_used["xact_commit"] - polls - PG_COUNTER_QUERIES)
    pg_used["sessions"] = max(0, pg_used["sessions"] - 2)
    redis_used = redis_counters(stack.redis) - redis_before
    drain_jobs = stack.drain_jobs_ended() - jobs_before
    stack.stop_worker()
    records = [r for r in receiver.records(start) if not r[1].startswith("ceiling")]
    received, duplicates = received_by_redemption(records)
    wanted = {r.redemption_id for r in ok}
    times = sorted(received[rid] for rid in wanted if rid in received)
    if got < len(ok):
        log(f"    only {got} of {len(ok)} deliveries arrived (none came for 20 s)")
    if left_open:
        log(f"    {left_open} deliveries still open in the database (none closed for 20 s)")
    result = Throughput(kind, tag, len(ok), backlog, jobs_queued, len(records), len(times),
                        duplicates, len(wanted - received.keys()), times[0] if times else started,
                        times[-1] if times else started, done, left_open, started, meter,
                        redeem_seconds, wanted, max(1, got - metered_from), drain_jobs, pg_used,
                        redis_used)
    log(f"    {result.unique} delivered: {result.rate:,.0f} deliveries/s from the first receipt "
        f"until all were recorded ({result.done - result.first:.2f} s; the last recorded "
        f"{(result.done - result.last) * 1000:.0f} ms after the last receipt); "
        f"{result.receipt_rate:,.0f}/s first receipt to last; {result.rate_from_start:,.0f}/s from "
        f"the worker's start (first receipt {result.first - started:.2f} s after it)")
    log(f"    drain jobs run: {drain_jobs} ({result.unique / max(1, drain_jobs):,.0f} deliveries "
        f"per job)")
    log(f"    CPU per delivery (after the first): worker {result.per_delivery('worker'):.2f} ms, "
        f"PostgreSQL {result.per_delivery('PostgreSQL'):.2f} ms, Redis "
        f"{result.per_delivery('Redis'):.2f} ms, receiver {result.per_delivery('receiver'):.2f} ms")
    n = max(1, result.unique)
    top = ", ".join(f"{name} {calls / n:.3f}" for name, calls in redis_used.most_common(6))
    log(f"    per delivery: PostgreSQL {pg_used['xact_commit'] / n:.3f} commits, "
        f"{pg_used['xact_rollback'] / n:.3f} rollbacks, {pg_used['sessions'] / n:.3f} new "
        f"sessions, {pg_used['tup_returned'] / n:.0f} rows read; Redis "
        f"{sum(redis_used.values()) / n:.3f} commands ({top}; server-wide: other users of this "
        f"Redis count too)")
    reads = rows_read(pg_used)
    if reads:
        log("    rows read per delivery, by where: " + ", ".join(
            f"{name} {count / n:,.1f}" for name, count in reads[:5]))
    log(f"    {meter.describe()}")
    if meter.others_cpus > 0.2:
        log("    NOTE: other processes took CPU during this phase; its figures are noisy")
    if result.missing:
        log(f"    NOT RECEIVED by the end of the phase: {result.missing} redeemed (201) events")
    if duplicates:
        log(f"    DUPLICATES: {duplicates} POSTs repeated an event already received")
    if profiled:
        log(f"    profile (raw collapsed stacks, py-spy; its own cost slows this run): {target}")
        for line in profile_summary(target, result.per_delivery("worker")):
            log(f"      {line}")
    return result


@dataclass
class Ceiling:
    label: str
    posts: int
    seconds: float
    statuses: dict[int, int]
    meter: Meter

    @property
    def rate(self) -> float:
        return self.posts / self.seconds if self.seconds else float("nan")


def run_ceiling(stack: Stack, secret: str, seconds: float, label: str) -> tuple[Ceiling, Ceiling]:
    """Plain keep-alive POSTs of a real delivery's body and headers, then the adapter alone."""
    receiver = stack.receiver
    sample = receiver.sample()
    if not sample:
        raise BenchError("the receiver has no delivery to copy for the ceiling")
    body = sample["body"].encode()
    sent_headers = {k.lower(): v for k, v in sample["headers"].items()}
    webhook_id = "ceiling-" + sent_headers.get("webhook-id", "evt")[8:]
    timestamp = int(time.time())
    headers = {"User-Agent": sent_headers.get("user-agent", "couponsvc-integrations/1"),
               "Content-Type": "application/json", "webhook-id": webhook_id,
               "webhook-timestamp": str(timestamp),
               "webhook-signature": sign(secret, webhook_id, timestamp, body)}
    session = requests.Session()
    session.trust_env = False

    def plain() -> int:
        return session.post(receiver.url, data=body, headers=headers, timeout=15).status_code

    envelope = json.loads(body)
    event = AdapterEvent(id=webhook_id, type=envelope["type"], data=envelope["data"],
                         created_at=datetime.fromisoformat(envelope["timestamp"].replace("Z", "+00:00"))
                         .astimezone(UTC))
    adapter = WebhookAdapter()
    config = {"url": receiver.url, "secret": secret, "headers": {}}
    context = Context(timeout=15.0, allow_private_targets=True,
                      session=new_session(allow_private_targets=True))

    def through_adapter() -> int:
        return adapter.deliver(event, config, context).status_code

    results = []
    for name, call in ((f"plain keep-alive POSTs {label}", plain),
                       (f"WebhookAdapter.deliver {label}", through_adapter)):
        for _ in range(200):
            call()
        statuses: Counter[int] = Counter()
        with stack.meter() as meter:
            started = time.perf_counter()
            end = started + seconds
            while time.perf_counter() < end:
                statuses[call()] += 1
            elapsed = time.perf_counter() - started
        ok = sum(n for s, n in statuses.items() if 200 <= s < 300)
        result = Ceiling(name, ok, elapsed, dict(statuses), meter)
        log(f"  {name}: {ok:,} in {elapsed:.2f} s = {result.rate:,.0f}/s "
            f"({1000 / result.rate:.3f} ms each); statuses {dict(statuses)}")
        log(f"    {meter.describe()}")
        if meter.others_cpus > 0.2:
            log("    NOTE: other processes took CPU during this phase; its figures are noisy")
        results.append(result)
    session.close()
    return results[0], results[1]


# ---------------------------------------------------------------- checks


def final_checks(stack: Stack, integration_id: str, redeemed: set[str]) -> dict[str, Any]:
    """Deliveries' states in the database, RQ's failed jobs, the receiver's duplicates."""
    checks: dict[str, Any] = {}
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        checks["deliveries"] = dict(conn.execute(
            "SELECT status, count(*) FROM deliveries WHERE integration_id = %s GROUP BY status",
            (integration_id,)).fetchall())
        checks["redeemed_events"] = conn.execute(
            "SELECT count(*) FROM events WHERE type = 'coupon.redeemed'").fetchone()[0]
        checks["events_without_delivery"] = conn.execute(
            "SELECT count(*) FROM events e WHERE e.type = 'coupon.redeemed' AND NOT EXISTS "
            "(SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq)").fetchone()[0]
        checks["retried"] = conn.execute(
            "SELECT count(*) FROM deliveries WHERE integration_id = %s AND attempts > 1",
            (integration_id,)).fetchone()[0]
        checks["failed_attempts"] = conn.execute(
            "SELECT outcome, coalesce(error, ''), count(*) FROM delivery_attempts a JOIN deliveries d "
            "ON d.id = a.delivery_id WHERE d.integration_id = %s AND a.outcome <> 'succeeded' "
            "GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 5", (integration_id,)).fetchall()
        checks["attempt_rows"] = conn.execute(
            "SELECT count(*) FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id "
            "WHERE d.integration_id = %s", (integration_id,)).fetchone()[0]
    checks["stops"] = list(stack.stops)
    checks["rq_failed"] = {
        name: int(stack.redis.zcard(f"rq:failed:{name}")) for name in ("deliveries", "default")}
    records = [r for r in stack.receiver.records(0) if not r[1].startswith("ceiling")]
    ids = Counter(r[1] for r in records)
    checks["received_posts"] = len(records)
    checks["received_events"] = len(ids)
    checks["duplicate_posts"] = sum(n - 1 for n in ids.values() if n > 1)
    checks["redeemed_201"] = len(redeemed)
    lost = sorted(redeemed - {r[2] for r in records})
    checks["lost"] = lost
    if lost:
        with psycopg.connect(stack.db_url, autocommit=True) as conn:
            checks["lost_states"] = conn.execute(
                "SELECT d.status, d.attempts, d.last_error, count(*) FROM deliveries d JOIN events e "
                "ON e.seq = d.event_seq WHERE e.data->'redemption'->>'id' = ANY(%s) "
                "GROUP BY 1, 2, 3", (lost,)).fetchall()
    return checks


def print_checks(checks: dict[str, Any]) -> None:
    log(f"  redeems answered 201: {checks['redeemed_201']:,}; coupon.redeemed events in the "
        f"database: {checks['redeemed_events']:,} ({checks['events_without_delivery']} without a "
        f"delivery row)")
    log(f"  deliveries by status: {checks['deliveries']}; retried (attempts > 1): "
        f"{checks['retried']}; attempt rows: {checks['attempt_rows']:,}")
    log(f"  receiver: {checks['received_posts']:,} POSTs of {checks['received_events']:,} distinct "
        f"events; duplicate POSTs: {checks['duplicate_posts']}")
    log(f"  RQ failed-job registries: {checks['rq_failed']}")
    if checks["lost"]:
        log(f"  LOST: {len(checks['lost'])} redeemed (201) events never reached the receiver, e.g. "
            f"{checks['lost'][:3]}; their deliveries: {checks.get('lost_states')}")
    else:
        log("  lost: none (every 201 redemption's event reached the receiver)")
    for outcome, error, count in checks["failed_attempts"]:
        log(f"  attempts that did not succeed: {count} x {outcome}: {error[:160]}")
    for kind in dict.fromkeys(k for k, _, _ in checks["stops"]):
        stops = [(took, code) for k, took, code in checks["stops"] if k == kind]
        killed = sum(1 for _, code in stops if code == -signal.SIGKILL)
        log(f"  {CLASS_NAMES[kind]} stops on SIGTERM: {len(stops) - killed} of {len(stops)} within "
            f"{STOP_PATIENCE:g} s (slowest {max(t for t, _ in stops):.1f} s)"
            + (f"; {killed} killed after {STOP_PATIENCE:g} s" if killed else ""))


def problems(out: Path) -> int:
    total = 0
    for path in sorted(out.glob("*.log")):
        count, sample = log_problems(path)
        if count:
            if not total:
                log("\n== problems seen in the logs")
            total += count
            log(f"  {path.name}: {count} error/traceback line(s), e.g.")
            for line in sample:
                log(f"    {line[:200]}")
    return total


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=50, help="redeems/s in the latency phase")
    parser.add_argument("--latency-seconds", type=float, default=10,
                        help="length of the latency phase, per worker class")
    parser.add_argument("--count", type=int, default=3000,
                        help="coupons redeemed (deliveries waiting) per throughput run")
    parser.add_argument("--fork-count", type=int, default=None,
                        help="the same for the fork worker's throughput runs (default: "
                             "--count; deliveries/s is measured from the first receipt either way)")
    parser.add_argument("--slow-rate", type=float, default=5,
                        help="a class that cannot keep up with --rate is measured again at "
                             "this rate, for its latency without a backlog")
    parser.add_argument("--rounds", type=int, default=2,
                        help="throughput runs per worker class (order alternates, ABBA)")
    parser.add_argument("--classes", default="simple,fork",
                        help="worker classes to measure: simple (couponsvc worker, "
                             "SimpleWorker) and/or fork (RQ's Worker)")
    parser.add_argument("--ceiling-seconds", type=float, default=5,
                        help="length of each ceiling measurement")
    parser.add_argument("--receiver-status", type=int, choices=(200, 204), default=204)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument("--worker-class", default="gthread", choices=("gthread", "sync"),
                        help="gunicorn worker class")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy the worker in the first throughput run of each class and "
                             "print where its time goes (that run's figures drop by py-spy's cost)")
    parser.add_argument("--profile-latency", action="store_true",
                        help="py-spy the worker in the latency phase too (at a steady trickle a "
                             "drain often sends one delivery: the per-job cost); its latency "
                             "figures suffer for it")
    parser.add_argument("--keep-db", action="store_true",
                        help="reuse the default scratch database instead of recreating it")
    parser.add_argument("--fresh-db", action="store_true",
                        help="drop and recreate the database even when DATABASE_URL names it")
    parser.add_argument("--out", type=Path, default=None, help="directory for logs")
    args = parser.parse_args(argv)
    if args.fork_count is None:
        args.fork_count = args.count
    args.classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    unknown = set(args.classes) - set(CLASS_NAMES)
    if unknown or not args.classes:
        parser.error(f"--classes takes simple and/or fork, not {sorted(unknown)}")
    return args


def main(argv: list[str] | None = None) -> int:
    return run(bench, parse_args(argv))


def bench(args: argparse.Namespace, procs: Processes) -> int:
    run = open_run(args, "delivery", f"worker classes {', '.join(CLASS_NAMES[c] for c in args.classes)}",
                   default_db_url=DEFAULT_DATABASE_URL, default_redis_url=DEFAULT_REDIS_URL,
                   redis_note=" (flushed)")
    out, run_tag, db_url, redis_url = run.out, run.tag, run.db_url, run.redis_url
    redis.Redis.from_url(redis_url).flushdb()
    env = {**run.env, "COUPONSVC_ALLOW_PRIVATE_WEBHOOK_TARGETS": "1"}
    log("\n== setup")
    run_cli(["db", "upgrade"], env)
    platform_key = run_cli(["create-key", "--role", "platform"], env).strip().splitlines()[-1]
    receiver = start_receiver(procs, out, args.receiver_status)
    server = start_ours(procs, args, env, out, "delivery")
    log(f"  database upgraded, platform key created; receiver on {receiver.url}, "
        f"gunicorn on {server.url}")
    client = Client(server.port, platform_key)

    def latency_codes(rate: float) -> int:
        return int(rate * args.latency_seconds) + WARMUP_REDEEMS

    def throughput_codes(kind: str) -> int:
        return args.fork_count if kind == "fork" else args.count

    needed = sum(latency_codes(args.rate) + latency_codes(args.slow_rate)
                 + args.rounds * throughput_codes(kind) for kind in args.classes) + 1
    fixture = make_fixture(client, run_tag, max_coupons=needed + 10 * ORDER_QUANTITY)
    codes: list[str] = []
    orders = place_orders(client, fixture, run_tag, 0, math.ceil(needed / ORDER_QUANTITY), 4,
                          "4 clients", codes, threading.Lock())
    print_orders(orders)
    if len(codes) < needed:
        raise BenchError(f"only {len(codes)} of the {needed} coupons needed were issued")
    integration = client.call("POST", f"/api/v1/merchants/{fixture.merchant_id}/integrations", {
        "adapter": "webhook", "config": {"url": receiver.url}, "events": ["coupon.redeemed"]},
        expect=(201,))
    secret = integration["secret"]
    log(f"  merchant {fixture.merchant_id}, store {fixture.store_id}, campaign "
        f"{fixture.campaign_id}; webhook integration {integration['id']} -> {receiver.url}")
    stack = Stack(procs, env, out, db_url, redis_url, receiver, server)
    stack.integration_id = integration["id"]
    redeemer = Redeemer(server.port, fixture)
    pool = iter(codes)

    def take(n: int) -> list[str]:
        return [next(pool) for _ in range(n)]

    redeemed: set[str] = set()
    log(f"\n== latency: {args.rate:g} redeems/s for {args.latency_seconds:g} s, one worker "
        f"running (after {WARMUP_REDEEMS} warm-up redeems)")
    latencies: list[Latency] = []
    for kind in args.classes:
        result = run_latency(stack, redeemer, kind, take(latency_codes(args.rate)), args.rate,
                             args.latency_seconds, "latency", args.profile_latency)
        latencies.append(result)
        print_latency(result)
        if not result.kept_up and args.slow_rate < args.rate:
            log(f"  ... so {CLASS_NAMES[kind]} again at {args.slow_rate:g} redeems/s:")
            slow = run_latency(stack, redeemer, kind, take(latency_codes(args.slow_rate)),
                               args.slow_rate, args.latency_seconds, "latency-slow")
            latencies.append(slow)
            print_latency(slow)
    for result in latencies:
        redeemed |= {r.redemption_id for r in result.ok + result.warmup}

    log(f"\n== ceiling (1 of 2): from this process, sequential, to {receiver.url}")
    ceilings = [run_ceiling(stack, secret, args.ceiling_seconds, "(1)")]

    counts = ", ".join(f"{throughput_codes(kind)} for {CLASS_NAMES[kind]}" for kind in args.classes)
    log(f"\n== throughput: deliveries waiting in the database ({counts}), then one worker "
        f"started")
    order: list[str] = []
    for number in range(args.rounds):
        order += args.classes if number % 2 == 0 else list(reversed(args.classes))
    throughputs: dict[str, list[Throughput]] = {kind: [] for kind in args.classes}
    profiled: set[str] = set()
    for number, kind in enumerate(order, 1):
        profile = args.profile and kind not in profiled
        profiled.add(kind)
        result = run_throughput(stack, redeemer, kind, take(throughput_codes(kind)),
                                f"run{number}", profile)
        throughputs[kind].append(result)
        redeemed |= result.ids

    log(f"\n== ceiling (2 of 2): from this process, sequential, to {receiver.url}")
    ceilings.append(run_ceiling(stack, secret, args.ceiling_seconds, "(2)"))

    log("\n== checks: lost, duplicate and failed deliveries, over the whole run")
    checks = final_checks(stack, integration["id"], redeemed)
    print_checks(checks)
    summary(args, latencies, throughputs, ceilings, checks)
    problems(out)
    log(f"\nlogs: {out}")
    return 0


def best(results: list[Throughput]) -> Throughput:
    return max(results, key=lambda r: r.rate if r.rate == r.rate else -1.0)


def summary(args: argparse.Namespace, latencies: list[Latency],
            throughputs: dict[str, list[Throughput]],
            ceilings: list[tuple[Ceiling, Ceiling]], checks: dict[str, Any]) -> None:
    plain = max(c[0].rate for c in ceilings)
    adapter = max(c[1].rate for c in ceilings)
    rows: list[tuple[str, str, str]] = []
    for result in latencies:
        send, answer = result.from_send, result.from_answer
        name = f"{CLASS_NAMES[result.kind]} at {result.rate:g}/s"
        note = "" if result.kept_up else " (backlog built up)"
        rows.append((f"redeem -> receipt p50 / p99, {name}",
                     f"{pct(send, .5):,.1f} / {pct(send, .99):,.1f} ms{note}",
                     f"p50 < {AIM_P50_MS:.0f} ms"))
        rows.append((f"201 -> receipt p50 / p99, {name}",
                     f"{pct(answer, .5):,.1f} / {pct(answer, .99):,.1f} ms{note}", ""))
        rows.append((f"worker CPU per delivery; deliveries per drain job, {name}",
                     f"{result.meter.used.get('worker', 0.0) / max(1, len(send)) * 1000:.2f} ms; "
                     f"{len(send) / max(1, result.drain_jobs):.1f}", ""))
    rows.append(("ceiling: keep-alive POSTs/s, 1 process (1 / 2)",
                 " / ".join(f"{c[0].rate:,.0f}" for c in ceilings), ""))
    rows.append(("WebhookAdapter.deliver/s, 1 process (1 / 2)",
                 " / ".join(f"{c[1].rate:,.0f}" for c in ceilings), ""))
    for kind, results in throughputs.items():
        rates = [r.rate for r in results]
        receipts = [r.receipt_rate for r in results]
        top = best(results)
        n = max(1, top.unique)
        rows.append((f"deliveries/s, one {CLASS_NAMES[kind]}, to all recorded (runs; median)",
                     " ".join(f"{r:,.1f}" for r in rates) + f"; {statistics.median(rates):,.1f}",
                     ""))
        rows.append((f"deliveries/s, one {CLASS_NAMES[kind]}, to the last receipt (median)",
                     f"{statistics.median(receipts):,.1f}", ""))
        rows.append((f"ratio one {CLASS_NAMES[kind]} / ceiling (median / higher ceiling)",
                     f"{statistics.median(rates) / plain:.3f}", f">= {AIM_RATIO:.2f}"))
        rows.append((f"CPU per delivery, {CLASS_NAMES[kind]} (fastest run)",
                     f"worker {top.per_delivery('worker'):.2f} + PG "
                     f"{top.per_delivery('PostgreSQL'):.2f} + Redis {top.per_delivery('Redis'):.2f} ms",
                     ""))
        rows.append((f"PG commits / Redis commands per delivery, {CLASS_NAMES[kind]} (fastest)",
                     f"{top.pg_used['xact_commit'] / n:.3f} / {sum(top.redis_used.values()) / n:.3f}",
                     ""))
        rows.append((f"drain jobs per run, {CLASS_NAMES[kind]} (runs)",
                     " ".join(str(r.drain_jobs) for r in results), ""))
    if len(throughputs) == 2:
        simple = statistics.median(r.rate for r in throughputs["simple"])
        fork = statistics.median(r.rate for r in throughputs["fork"])
        rows.append(("throughput SimpleWorker / Worker (fork), medians", f"{simple / fork:.2f}x", ""))
    rows.append(("WebhookAdapter.deliver / plain POSTs", f"{adapter / plain:.2f}", ""))
    others = [r.meter.others_cpus for r in latencies]
    others += [r.meter.others_cpus for rs in throughputs.values() for r in rs]
    others += [c.meter.others_cpus for pair in ceilings for c in pair]
    rows.append(("CPUs used by other processes (min / max over phases)",
                 f"{min(others):.2f} / {max(others):.2f}", "~0 (a quiet machine)"))
    for kind in dict.fromkeys(k for k, _, _ in checks["stops"]):
        codes = [code for k, _, code in checks["stops"] if k == kind]
        killed = sum(1 for code in codes if code == -signal.SIGKILL)
        rows.append((f"{CLASS_NAMES[kind]} stops that needed SIGKILL (SIGTERM ignored "
                     f"{STOP_PATIENCE:g} s)", f"{killed} of {len(codes)}", "0"))
    rows.append(("lost / duplicate deliveries (whole run)",
                 f"{len(checks['lost'])} / {checks['duplicate_posts']}", "0 / 0"))
    log(f"\n== summary ({os.cpu_count()} CPUs; latency: {args.latency_seconds:g} s of redeems; "
        f"throughput: {args.rounds} round(s)" + ("; worker profiled in round 1" if args.profile
                                                 else "") + ")")
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    log(f"  {'what':<{width}}  {'measured':>{vwidth}}  aim")
    for what, value, aim in rows:
        log(f"  {what:<{width}}  {value:>{vwidth}}  {aim}")


if __name__ == "__main__":
    sys.exit(main())
