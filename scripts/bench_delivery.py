"""Delivery speed of couponsvc: from a redemption to the ERP receiver's 2xx, through the real
stack, against plain keep-alive POSTs to the same receiver. A benchmark, not a test: it prints.

    .venv/bin/python scripts/bench_delivery.py
    .venv/bin/python scripts/bench_delivery.py --count 300 --rounds 1 --latency-seconds 3

What it measures, how, and the figures of record: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg
import redis
import requests
from bench.common import (
    ORDER_QUANTITY,
    BenchError,
    Client,
    Fixture,
    Meter,
    Processes,
    Receiver,
    Server,
    add_common_args,
    children,
    couponsvc_cli,
    log,
    log_tail,
    make_fixture,
    open_run,
    pct,
    place_orders,
    postgres_pids,
    problems,
    run,
    setup_database,
    start_gunicorn,
    start_py_spy,
    stop_py_spy,
    table,
)
from psycopg.conninfo import conninfo_to_dict

from couponsvc.redis_client import redis_client
from integrations.adapter import Context
from integrations.adapter import Event as AdapterEvent
from integrations.http import new_session
from integrations.webhook import WebhookAdapter, sign

WARMUP_REDEEMS = 20
AIM_P50_MS, AIM_RATIO = 100.0, 1 / 3
DRAIN_QUEUE = "deliveries"  # the queue of the drain jobs
STOP_PATIENCE = 5.0  # seconds the worker gets to stop on SIGTERM before it is killed
PG_IDLE_FLUSH = 10.5  # s: an idle backend publishes its last second of counters after 10 s
PG_BUSY_FLUSH = 2.2  # s: a backend with a transaction each second publishes within ~2 s
PG_COUNTER_QUERIES = 3  # autocommit statements in one `pg_counters`


def pg_counters(db_url: str) -> Counter[str]:
    """This database's transaction, session and row counters, and rows read per table scan
    and per index."""
    names = ("xact_commit", "xact_rollback", "sessions", "tup_returned")
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(f"SELECT {', '.join(names)} FROM pg_stat_database "
                           "WHERE datname = current_database()").fetchone()
        counters = Counter(dict(zip(names, (int(v or 0) for v in row), strict=True)))
        for table_name, read in conn.execute("SELECT relname, seq_tup_read FROM pg_stat_user_tables"):
            counters[f"seq scan of {table_name}"] = int(read or 0)
        for table_name, index, read in conn.execute(
                "SELECT relname, indexrelname, idx_tup_read FROM pg_stat_user_indexes"):
            counters[f"index {index} ({table_name})"] = int(read or 0)
    return counters


def redis_counters(client: redis.Redis) -> Counter[str]:
    """Calls per command since the Redis server started (INFO commandstats)."""
    return Counter({name.removeprefix("cmdstat_"): int(value["calls"])
                    for name, value in client.info("commandstats").items()})


def redis_server_pids(client: redis.Redis) -> list[int]:
    """The Redis server behind `client`, not every redis-server on the machine."""
    with contextlib.suppress(redis.RedisError, KeyError, ValueError):
        pid = int(client.info("server")["process_id"])
        if psutil.pid_exists(pid):
            return [pid]
    return [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "redis-server"]


@dataclass
class Redeem:
    sent: float  # time.time() just before the request was written
    answered: float  # time.time() once the answer was read
    status: int
    redemption_id: str | None


class Redeemer:
    """POST /api/v1/redemptions with the scanner key, timed; a keep-alive connection per thread."""

    def __init__(self, port: int, fixture: Fixture) -> None:
        self.client, self.store_id = Client(port, fixture.scanner_key, timeout=60), fixture.store_id
        self._warned = False

    def redeem(self, code: str) -> Redeem:
        sent = time.time()
        try:
            status, body = self.client.send("POST", "/api/v1/redemptions",
                                            {"code": code, "store_id": self.store_id})
        except (OSError, http.client.HTTPException):
            return Redeem(sent, time.time(), 0, None)
        answered = time.time()
        if status != 201 and not self._warned:
            self._warned = True
            log(f"    redeem {code} -> {status}: {str(body)[:300]}")
        return Redeem(sent, answered, status, body.get("id") if status == 201 else None)

    def paced(self, codes: list[str], rate: float, threads: int = 8) -> tuple[list[Redeem], float]:
        """Open loop: redeem i is sent at start + i/rate (or as soon as a thread is free);
        the redeems and the worst lag behind schedule, in seconds."""
        results, lags = [], [0.0]

        def one(code: str, due: float) -> None:
            lags.append(time.monotonic() - due)
            results.append(self.redeem(code))

        start = time.monotonic() + 0.05
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for number, code in enumerate(codes):
                due = start + number / rate
                time.sleep(max(0.0, due - time.monotonic()))
                pool.submit(one, code, due)
        return results, max(lags)

    def burst(self, codes: list[str], threads: int = 4) -> tuple[list[Redeem], float]:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=threads) as pool:
            results = list(pool.map(self.redeem, codes))
        return results, time.perf_counter() - started


class Stack:
    """What every phase needs: the processes, the receiver, gunicorn, one worker at a time."""

    def __init__(self, procs: Processes, env: dict[str, str], out: Path, db_url: str,
                 redis_url: str, receiver: Receiver, server: Server, integration_id: str) -> None:
        self.procs, self.env, self.out, self.db_url = procs, env, out, db_url
        self.dbname = conninfo_to_dict(db_url).get("dbname")
        self.receiver, self.server, self.integration_id = receiver, server, integration_id
        self.redis = redis_client(redis_url)
        self.redis_pids = redis_server_pids(self.redis)
        self.worker: Any = None
        self.worker_log: Path | None = None
        self.stops = self.killed = 0

    def start_worker(self, tag: str) -> Any:
        self.worker_log = self.out / f"worker-{tag}.log"
        self.worker = self.procs.start([*couponsvc_cli(), "worker"], env=self.env,
                                       log_path=self.worker_log)
        return self.worker

    def stop_worker(self) -> None:
        """SIGTERM, then SIGKILL after STOP_PATIENCE s (counted: ignoring SIGTERM is a finding)."""
        if self.worker is not None:
            self.stops += 1
            if self.procs.stop(self.worker, timeout=STOP_PATIENCE):
                self.killed += 1
                log(f"    the worker did not stop within {STOP_PATIENCE:g} s of SIGTERM; killed")
            self.worker = None

    def check_worker(self) -> None:
        if self.worker is not None and self.worker.poll() is not None:
            raise BenchError(f"the worker exited {self.worker.returncode}:\n{log_tail(self.worker_log)}")

    def meter(self) -> Meter:
        def worker() -> list[tuple[int, bool]]:
            if self.worker is None or self.worker.poll() is not None:
                return []
            return [(self.worker.pid, True), *((p, True) for p in children(self.worker.pid))]

        return Meter({"worker": worker, "receiver": lambda: [(self.receiver.proc.pid, False)],
                      "PostgreSQL": lambda: [(p, False) for p in postgres_pids(self.dbname)],
                      "Redis": lambda: [(p, False) for p in self.redis_pids],
                      "gunicorn": self.server.pids})

    def open_deliveries(self, conn: psycopg.Connection) -> int:
        """The backlog: this integration's deliveries still pending or failed (to retry)."""
        return int(conn.execute("SELECT count(*) FROM deliveries WHERE integration_id = %s "
                                "AND status IN ('pending', 'failed')",
                                (self.integration_id,)).fetchone()[0])

    def drain_jobs_ended(self) -> int:
        """Drain jobs RQ has finished or failed so far (its registries; result_ttl 600 s)."""
        return int(self.redis.zcard(f"rq:finished:{DRAIN_QUEUE}")
                   + self.redis.zcard(f"rq:failed:{DRAIN_QUEUE}"))

    def wait_recorded(self, stall: float = 20.0) -> tuple[int, float, int]:
        """Wait until no delivery is open, or none closed for `stall` s: (open deliveries left,
        when this saw them all closed, queries this made, to take out of PostgreSQL's counts)."""
        polls, last, progress = 0, -1, time.monotonic()
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            while True:
                left = self.open_deliveries(conn)
                polls += 1
                now = time.monotonic()
                if left != last:
                    last, progress = left, now
                if left == 0 or now - progress > stall:
                    return left, time.time(), polls
                self.check_worker()
                time.sleep(0.005)


def received_by_redemption(records: list[list[Any]]) -> tuple[dict[str, float], int]:
    """First receipt time per redemption id, and how many POSTs repeated an event."""
    first: dict[str, float] = {}
    ids = Counter()
    for received_at, webhook_id, redemption_id, _redeemed_at, _size in records:
        if not webhook_id.startswith("ceiling"):
            ids[webhook_id] += 1
            first.setdefault(redemption_id, received_at)
    return first, sum(n - 1 for n in ids.values() if n > 1)


@dataclass
class Latency:
    send: list[float]  # ms from each redeem's request to its receipt
    answer: list[float]  # ms from each redeem's 201 to its receipt
    kept_up: bool  # whether deliveries kept pace with the redeems (no backlog building up)
    worker_ms: float  # worker CPU per delivery
    per_job: float  # deliveries per drain job
    others: float  # CPUs used by other processes
    ids: set[str]  # every 201 redemption of the phase, warm-up included


def run_latency(stack: Stack, redeemer: Redeemer, codes: list[str], rate: float) -> Latency:
    receiver = stack.receiver
    worker = stack.start_worker("latency")
    start = receiver.count()
    warmed = [r for r in map(redeemer.redeem, codes[:WARMUP_REDEEMS]) if r.redemption_id]
    if receiver.wait_for(start, len(warmed), 60, 120, worker) < len(warmed):
        raise BenchError(f"the worker did not deliver the warm-up events:\n{log_tail(stack.worker_log)}")
    stack.wait_recorded()
    start, jobs_before = receiver.count(), stack.drain_jobs_ended()
    with stack.meter() as meter:
        redeems, lag = redeemer.paced(codes[WARMUP_REDEEMS:], rate)
        receiver.wait_for(start, sum(1 for r in redeems if r.status == 201), 15, 900, worker)
    stack.wait_recorded()
    received, duplicates = received_by_redemption(receiver.records(start))
    stack.stop_worker()
    jobs = stack.drain_jobs_ended() - jobs_before
    ok = [r for r in redeems if r.redemption_id]
    send = [(received[r.redemption_id] - r.sent) * 1000 for r in ok if r.redemption_id in received]
    answer = [(received[r.redemption_id] - r.answered) * 1000 for r in ok
              if r.redemption_id in received]
    request = [(r.answered - r.sent) * 1000 for r in ok]
    missing = [r.redemption_id for r in ok if r.redemption_id not in received]
    result = Latency(send, answer, bool(send) and pct(send, .5) < 1000 and not missing,
                     meter.used["worker"] / max(1, len(send)) * 1000, len(send) / max(1, jobs),
                     meter.others_cpus, {r.redemption_id for r in warmed + ok})
    log(f"  {len(redeems)} redeems at {rate:g}/s, statuses {dict(Counter(r.status for r in redeems))}"
        f"; {len(send)} events received" + (f" (worst send lag behind schedule {lag * 1000:.0f} ms)"
                                            if lag > 0.05 else ""))
    for name, values, extra in (
            ("redeem sent", send, ""),
            ("201 back   ", answer, f" (received before the 201 was read: {sum(a < 0 for a in answer)})")):
        log(f"    {name} -> receipt: p50 {pct(values, .5):.1f} ms, p90 {pct(values, .9):.1f} ms, "
            f"p99 {pct(values, .99):.1f} ms, max {max(values, default=float('nan')):.1f} ms{extra}")
    log(f"    the redeem request itself: p50 {pct(request, .5):.1f} ms, p99 {pct(request, .99):.1f} ms")
    log(f"    drain jobs run: {jobs} for {len(send)} deliveries ({result.per_job:.1f} per job); "
        f"worker CPU {result.worker_ms:.2f} ms per delivery at this rate")
    log(f"    {meter.describe()}")
    if not result.kept_up:
        log(f"    the worker did NOT keep up with {rate:g} redeems/s: a backlog built up")
    if missing:
        log(f"    NOT RECEIVED by the end of the phase: {len(missing)} redeemed (201) events, "
            f"e.g. {missing[:3]} (the final checks say whether they came later)")
    if duplicates:
        log(f"    DUPLICATES: {duplicates} POSTs repeated an event already received")
    return result


@dataclass
class Throughput:
    unique: int  # distinct events received
    first: float  # first receipt
    last: float  # last receipt
    done: float  # when the benchmark saw no delivery open any more
    left_open: int
    started: float  # the worker's start
    meter: Meter
    metered: int  # deliveries inside the meter's window
    drain_jobs: int
    pg_used: Counter[str]
    redis_used: Counter[str]
    ids: set[str]

    @property
    def receipt_rate(self) -> float:
        """Deliveries/s from the first receipt to the last."""
        span = self.last - self.first
        return (self.unique - 1) / span if span > 0 and self.unique > 1 else float("nan")

    @property
    def rate(self) -> float:
        """Deliveries/s from the first receipt until every attempt was recorded."""
        span = self.done - self.first
        if self.left_open or span <= 0 or self.unique <= 1:
            return self.receipt_rate
        return (self.unique - 1) / span

    def per_delivery(self, name: str) -> float:
        return self.meter.used.get(name, 0.0) / self.metered * 1000


def run_throughput(stack: Stack, redeemer: Redeemer, codes: list[str], tag: str,
                   profile: bool) -> Throughput:
    receiver = stack.receiver
    start = receiver.count()
    redeems, redeem_seconds = redeemer.burst(codes)
    burst_end = time.monotonic()
    ok = {r.redemption_id for r in redeems if r.redemption_id}
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        backlog = stack.open_deliveries(conn)
    log(f"  {tag}: {len(ok)} of {len(codes)} redeemed in {redeem_seconds:.1f} s with no worker "
        f"running; backlog {backlog} open deliveries in the database, "
        f"{stack.redis.llen(f'rq:queue:{DRAIN_QUEUE}')} drain job(s) on the {DRAIN_QUEUE} queue")
    # PostgreSQL publishes a backend's counters at most once a second, and an idle backend's
    # last second only after 10 s idle: gunicorn's redeems must be in before the first count
    time.sleep(max(0.0, burst_end + PG_IDLE_FLUSH - time.monotonic()))
    pg_before, redis_before = pg_counters(stack.db_url), redis_counters(stack.redis)
    jobs_before, started = stack.drain_jobs_ended(), time.time()
    worker = stack.start_worker(tag)
    # CPU and the profile from the first receipt on: the worker's start-up is not per delivery
    receiver.wait_for(start, 1, 60, 120, worker, poll=0.005)
    target = stack.out / f"profile-worker-{tag}.svg"
    profiler = start_py_spy(stack.procs, stack.out, worker.pid, target) if profile else None
    with stack.meter() as meter:
        metered_from = receiver.count() - start
        got = receiver.wait_for(start, len(ok), 20, 1800, worker, poll=0.01)
        # the last batch is recorded after its last POST: the worker is done when none is open
        left_open, done, polls = stack.wait_recorded()
    profiled = stop_py_spy(stack.procs, profiler, target)
    time.sleep(PG_BUSY_FLUSH)  # the worker's last transactions reach pg_stat_database
    pg_used = pg_counters(stack.db_url) - pg_before
    # the benchmark's own: its polls, and the first count's connection (published on close)
    pg_used["xact_commit"] = max(0, pg_used["xact_commit"] - polls - PG_COUNTER_QUERIES)
    pg_used["sessions"] = max(0, pg_used["sessions"] - 2)
    redis_used = redis_counters(stack.redis) - redis_before
    drain_jobs = stack.drain_jobs_ended() - jobs_before
    stack.stop_worker()
    received, duplicates = received_by_redemption(receiver.records(start))
    times = sorted(received[rid] for rid in ok if rid in received)
    if got < len(ok):
        log(f"    only {got} of {len(ok)} deliveries arrived (none came for 20 s)")
    if left_open:
        log(f"    {left_open} deliveries still open in the database (none closed for 20 s)")
    result = Throughput(len(times), times[0] if times else started, times[-1] if times else started,
                        done, left_open, started, meter, max(1, got - metered_from), drain_jobs,
                        pg_used, redis_used, ok)
    n = max(1, result.unique)
    log(f"    {result.unique} delivered: {result.rate:,.0f} deliveries/s from the first receipt "
        f"until all were recorded ({done - result.first:.2f} s; the last recorded "
        f"{(done - result.last) * 1000:.0f} ms after the last receipt); {result.receipt_rate:,.0f}/s "
        f"first receipt to last; {result.unique / max(1e-9, max(result.last, done) - started):,.0f}/s "
        f"from the worker's start (first receipt {result.first - started:.2f} s after it)")
    log(f"    drain jobs run: {drain_jobs} ({n / max(1, drain_jobs):,.0f} deliveries per job)")
    log("    CPU per delivery (after the first): " + ", ".join(
        f"{name} {result.per_delivery(name):.2f} ms" for name in ("worker", "PostgreSQL", "Redis",
                                                                   "receiver")))
    top = ", ".join(f"{name} {calls / n:.3f}" for name, calls in redis_used.most_common(6))
    log(f"    per delivery: PostgreSQL {pg_used['xact_commit'] / n:.3f} commits, "
        f"{pg_used['xact_rollback'] / n:.3f} rollbacks, {pg_used['sessions'] / n:.3f} new "
        f"sessions, {pg_used['tup_returned'] / n:.0f} rows read; Redis "
        f"{sum(redis_used.values()) / n:.3f} commands ({top}; server-wide)")
    reads = [(k, v) for k, v in pg_used.most_common() if k.startswith(("seq scan", "index ")) and v]
    if reads:
        log("    rows read per delivery, by where: " + ", ".join(
            f"{name} {count / n:,.1f}" for name, count in reads[:5]))
    log(f"    {meter.describe()}")
    if len(ok) - result.unique:
        log(f"    NOT RECEIVED by the end of the phase: {len(ok) - result.unique} redeemed (201) events")
    if duplicates:
        log(f"    DUPLICATES: {duplicates} POSTs repeated an event already received")
    if profiled:
        log(f"    profile (py-spy flame graph; its own cost slows this run): {target}")
    return result


def run_ceiling(stack: Stack, secret: str, seconds: float, label: str) -> tuple[float, float, Meter]:
    """Plain keep-alive POSTs of a real delivery's body and headers, then the adapter alone:
    (POSTs/s, WebhookAdapter.deliver/s, the meter of the plain POSTs)."""
    sample = stack.receiver.sample()
    if not sample:
        raise BenchError("the receiver has no delivery to copy for the ceiling")
    body = sample["body"].encode()
    sent = {k.lower(): v for k, v in sample["headers"].items()}
    webhook_id, timestamp = "ceiling-" + sent.get("webhook-id", "evt")[8:], int(time.time())
    headers = {"User-Agent": sent.get("user-agent", "couponsvc-integrations/1"),
               "Content-Type": "application/json", "webhook-id": webhook_id,
               "webhook-timestamp": str(timestamp),
               "webhook-signature": sign(secret, webhook_id, timestamp, body)}
    session = requests.Session()
    session.trust_env = False
    envelope = json.loads(body)
    event = AdapterEvent(id=webhook_id, type=envelope["type"], data=envelope["data"],
                         created_at=datetime.fromisoformat(envelope["timestamp"].replace("Z", "+00:00"))
                         .astimezone(UTC))
    adapter, config = WebhookAdapter(), {"url": stack.receiver.url, "secret": secret, "headers": {}}
    context = Context(timeout=15.0, allow_private_targets=True,
                      session=new_session(allow_private_targets=True))
    calls = {
        f"plain keep-alive POSTs {label}":
            lambda: session.post(stack.receiver.url, data=body, headers=headers, timeout=15).status_code,
        f"WebhookAdapter.deliver {label}":
            lambda: adapter.deliver(event, config, context).status_code,
    }
    results = []
    for name, call in calls.items():
        for _ in range(200):
            call()
        statuses: Counter[int] = Counter()
        with stack.meter() as meter:
            started = time.perf_counter()
            while time.perf_counter() < started + seconds:
                statuses[call()] += 1
            elapsed = time.perf_counter() - started
        rate = sum(n for s, n in statuses.items() if 200 <= s < 300) / elapsed
        log(f"  {name}: {rate * elapsed:,.0f} in {elapsed:.2f} s = {rate:,.0f}/s "
            f"({1000 / rate:.3f} ms each); statuses {dict(statuses)}")
        log(f"    {meter.describe()}")
        results.append((rate, meter))
    session.close()
    return results[0][0], results[1][0], results[0][1]


def final_checks(stack: Stack, redeemed: set[str]) -> tuple[int, int]:
    """Lost and duplicate deliveries over the whole run, the deliveries' states, RQ's failed
    jobs; prints them and answers (lost, duplicates)."""
    params = {"i": stack.integration_id}
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        events, orphans = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM deliveries d "
            "WHERE d.event_seq = e.seq)) FROM events e WHERE e.type = 'coupon.redeemed'").fetchone()
        states = dict(conn.execute("SELECT status, count(*) FROM deliveries WHERE "
                                   "integration_id = %(i)s GROUP BY status", params).fetchall())
        retried, attempts = conn.execute(
            "SELECT (SELECT count(*) FROM deliveries WHERE integration_id = %(i)s AND attempts > 1),"
            " (SELECT count(*) FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id"
            " WHERE d.integration_id = %(i)s)", params).fetchone()
        failed = conn.execute(
            "SELECT a.outcome, coalesce(a.error, ''), count(*) FROM delivery_attempts a JOIN "
            "deliveries d ON d.id = a.delivery_id WHERE d.integration_id = %(i)s AND a.outcome "
            "<> 'succeeded' GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 5", params).fetchall()
    records = [r for r in stack.receiver.records(0) if not r[1].startswith("ceiling")]
    ids = Counter(r[1] for r in records)
    duplicates = sum(n - 1 for n in ids.values() if n > 1)
    lost = sorted(redeemed - {r[2] for r in records})
    rq_failed = {name: int(stack.redis.zcard(f"rq:failed:{name}")) for name in (DRAIN_QUEUE, "default")}
    log(f"  redeems answered 201: {len(redeemed):,}; coupon.redeemed events in the database: "
        f"{events:,} ({orphans} without a delivery row)")
    log(f"  deliveries by status: {states}; retried (attempts > 1): {retried}; attempt rows: "
        f"{attempts}")
    log(f"  receiver: {len(records):,} POSTs of {len(ids):,} distinct events; duplicate POSTs: "
        f"{duplicates}")
    log(f"  RQ failed-job registries: {rq_failed}")
    log(f"  LOST: {len(lost)} redeemed (201) events never reached the receiver, e.g. {lost[:3]}"
        if lost else "  lost: none (every 201 redemption's event reached the receiver)")
    for outcome, error, count in failed:
        log(f"  attempts that did not succeed: {count} x {outcome}: {error[:160]}")
    log(f"  worker stops on SIGTERM: {stack.stops - stack.killed} of {stack.stops} within "
        f"{STOP_PATIENCE:g} s")
    return len(lost), duplicates


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=50, help="redeems/s in the latency phase")
    parser.add_argument("--latency-seconds", type=float, default=10,
                        help="length of the latency phase")
    parser.add_argument("--count", type=int, default=3000,
                        help="coupons redeemed (deliveries waiting) per throughput run")
    parser.add_argument("--rounds", type=int, default=2, help="throughput runs")
    parser.add_argument("--ceiling-seconds", type=float, default=5,
                        help="length of each ceiling measurement")
    parser.add_argument("--receiver-status", type=int, choices=(200, 204), default=204)
    parser.add_argument("--profile", action="store_true",
                        help="py-spy the worker in the first throughput run and print where its "
                             "time goes (that run's figures drop by py-spy's cost)")
    add_common_args(parser, workers=2)
    return parser.parse_args(argv)


def bench(args: argparse.Namespace, procs: Processes) -> int:
    r = open_run(args, "delivery", "one couponsvc worker",
                 default_db_url="postgresql://postgres@127.0.0.1:5432/couponsvc_bench_delivery",
                 default_redis_url="redis://127.0.0.1:6379/14", redis_note=" (flushed)")
    redis_client(r.redis_url).flushdb()
    env = {**r.env, "COUPONSVC_ALLOW_PRIVATE_WEBHOOK_TARGETS": "1"}
    log("\n== setup")
    platform_key = setup_database(env)
    receiver = Receiver(procs, r.out, args.receiver_status)
    server = start_gunicorn(procs, args, env, r.out, "delivery")
    log(f"  database upgraded, platform key created; receiver on {receiver.url}, "
        f"gunicorn on {server.url}")
    client = Client(server.port, platform_key)
    latency_n = int(args.rate * args.latency_seconds) + WARMUP_REDEEMS
    needed = latency_n + args.rounds * args.count + 1
    fixture = make_fixture(client, r.tag, max_coupons=needed + 10 * ORDER_QUANTITY)
    codes: list[str] = []
    place_orders(client, fixture, r.tag, 0, math.ceil(needed / ORDER_QUANTITY), 4, codes)
    if len(codes) < needed:
        raise BenchError(f"only {len(codes)} of the {needed} coupons needed were issued")
    integration = client.call("POST", f"/api/v1/merchants/{fixture.merchant_id}/integrations", {
        "adapter": "webhook", "config": {"url": receiver.url}, "events": ["coupon.redeemed"]},
        expect=(201,))
    log(f"  merchant {fixture.merchant_id}, store {fixture.store_id}, campaign "
        f"{fixture.campaign_id}; webhook integration {integration['id']} -> {receiver.url}")
    stack = Stack(procs, env, r.out, r.db_url, r.redis_url, receiver, server, integration["id"])
    redeemer = Redeemer(server.port, fixture)

    log(f"\n== latency: {args.rate:g} redeems/s for {args.latency_seconds:g} s, one worker "
        f"running (after {WARMUP_REDEEMS} warm-up redeems)")
    latency = run_latency(stack, redeemer, codes[:latency_n], args.rate)
    redeemed = set(latency.ids)
    codes = codes[latency_n:]

    def ceiling(number: int) -> tuple[float, float, Meter]:
        log(f"\n== ceiling ({number} of 2): from this process, sequential, to {receiver.url}")
        return run_ceiling(stack, integration["secret"], args.ceiling_seconds, f"({number})")

    ceilings = [ceiling(1)]
    log(f"\n== throughput: {args.count} deliveries waiting in the database, then one worker "
        f"started")
    throughputs: list[Throughput] = []
    for number in range(1, args.rounds + 1):
        throughputs.append(run_throughput(stack, redeemer, codes[:args.count], f"run{number}",
                                          args.profile and number == 1))
        redeemed |= throughputs[-1].ids
        codes = codes[args.count:]
    ceilings.append(ceiling(2))

    log("\n== checks: lost, duplicate and failed deliveries, over the whole run")
    lost, duplicates = final_checks(stack, redeemed)
    plain, adapter = max(c[0] for c in ceilings), max(c[1] for c in ceilings)
    send, answer = latency.send, latency.answer
    backlog = "" if latency.kept_up else " (backlog built up)"
    rates = [t.rate for t in throughputs]
    top = max(throughputs, key=lambda t: t.rate if t.rate == t.rate else -1.0)
    n = max(1, top.unique)
    others = [latency.others, *(c[2].others_cpus for c in ceilings),
              *(t.meter.others_cpus for t in throughputs)]
    rows = [
        (f"redeem -> receipt p50 / p99, at {args.rate:g}/s",
         f"{pct(send, .5):,.1f} / {pct(send, .99):,.1f} ms{backlog}", f"p50 < {AIM_P50_MS:.0f} ms"),
        (f"201 -> receipt p50 / p99, at {args.rate:g}/s",
         f"{pct(answer, .5):,.1f} / {pct(answer, .99):,.1f} ms{backlog}", ""),
        ("worker CPU per delivery; deliveries per drain job, at that rate",
         f"{latency.worker_ms:.2f} ms; {latency.per_job:.1f}", ""),
        ("ceiling: keep-alive POSTs/s, 1 process (1 / 2)",
         " / ".join(f"{c[0]:,.0f}" for c in ceilings), ""),
        ("WebhookAdapter.deliver/s, 1 process (1 / 2)",
         " / ".join(f"{c[1]:,.0f}" for c in ceilings), ""),
        ("deliveries/s, one worker, to all recorded (runs; median)",
         " ".join(f"{x:,.1f}" for x in rates) + f"; {statistics.median(rates):,.1f}", ""),
        ("deliveries/s, one worker, to the last receipt (median)",
         f"{statistics.median(t.receipt_rate for t in throughputs):,.1f}", ""),
        ("ratio one worker / ceiling (median / higher ceiling)",
         f"{statistics.median(rates) / plain:.3f}", f">= {AIM_RATIO:.2f}"),
        ("CPU per delivery (fastest run)",
         f"worker {top.per_delivery('worker'):.2f} + PG {top.per_delivery('PostgreSQL'):.2f} + "
         f"Redis {top.per_delivery('Redis'):.2f} ms", ""),
        ("PG commits / Redis commands per delivery (fastest)",
         f"{top.pg_used['xact_commit'] / n:.3f} / {sum(top.redis_used.values()) / n:.3f}", ""),
        ("drain jobs per run (runs)", " ".join(str(t.drain_jobs) for t in throughputs), ""),
        ("WebhookAdapter.deliver / plain POSTs", f"{adapter / plain:.2f}", ""),
        ("CPUs used by other processes (min / max over phases)",
         f"{min(others):.2f} / {max(others):.2f}", "~0 (a quiet machine)"),
        (f"worker stops that needed SIGKILL (SIGTERM ignored {STOP_PATIENCE:g} s)",
         f"{stack.killed} of {stack.stops}", "0"),
        ("lost / duplicate deliveries (whole run)", f"{lost} / {duplicates}", "0 / 0"),
    ]
    table(f"{os.cpu_count()} CPUs; latency: {args.latency_seconds:g} s of redeems; throughput: "
          f"{args.rounds} round(s)" + ("; worker profiled in round 1" if args.profile else ""), rows)
    problems(r.out)
    log(f"\nlogs: {r.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run(bench, parse_args(None)))
