"""Offline batch uploads (POST /api/v1/redemptions/batch, 500 distinct coupons each) against
single idempotent redeems (POST /api/v1/redemptions with an Idempotency-Key), both through
the real stack in one run, on the same server: coupons redeemed per second and their
ratio (aim >= 5). A benchmark, not a test: it prints.

    .venv/bin/python scripts/bench_batch.py                        # QR items, 15 s each
    .venv/bin/python scripts/bench_batch.py --duration 10 --items code

What it measures, how, and the figures of record: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
from bench.common import (
    ORDER_QUANTITY,
    BenchError,
    Client,
    Meter,
    Processes,
    Server,
    add_common_args,
    couponsvc_cli,
    log,
    make_fixture,
    open_run,
    pct,
    place_orders,
    postgres_pids,
    problems,
    run,
    setup_database,
    start_gunicorn,
    table,
)
from bench_redeem import PgSampler, WrkResult, ensure_wrk, run_wrk
from psycopg.conninfo import conninfo_to_dict

BATCH_SIZE = 500


@dataclass
class BatchResult:
    label: str
    seconds: float
    batches: int
    items: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    failures: Counter = field(default_factory=Counter)
    exhausted: bool = False
    meter: Meter | None = None
    sessions: str = ""

    @property
    def accepted(self) -> int:
        return self.items["accepted"]

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0

    def cpu_per_item(self) -> str:
        n = max(1, self.accepted)
        return (f"app {self.meter.used['app'] / n * 1000:.3f} ms + PostgreSQL "
                f"{self.meter.used['PostgreSQL'] / n * 1000:.3f} ms")


def batch_bodies(coupons: list[str], qr: dict[str, str], store_id: str, items: str, tag: str) -> list[dict]:
    """The uploads of `coupons`, BATCH_SIZE at a time: each coupon scanned offline a few
    minutes ago, by its QR (or its typed code), with a nonce of its own."""
    scanned = (datetime.now(UTC) - timedelta(minutes=3)).isoformat()
    bodies = []
    for start in range(0, len(coupons) - BATCH_SIZE + 1, BATCH_SIZE):
        device = f"bench-{tag}-{start // BATCH_SIZE % 16}"
        bodies.append({"items": [
            {("qr" if items == "qr" else "code"): qr[code] if items == "qr" else code,
             "store_id": store_id, "scanned_at": scanned, "device_id": device,
             "nonce": f"{code}-{uuid.uuid4().hex[:8]}"}
            for code in coupons[start:start + BATCH_SIZE]]})
    return bodies


def run_batches(server: Server, key: str, bodies: list[dict], seconds: float, clients: int,
                db_url: str, label: str) -> BatchResult:
    """`clients` threads upload `bodies` (each once, in turn) for `seconds`; prints the result."""
    client = Client(server.port, key)
    lock, queue = threading.Lock(), iter(bodies)
    result = BatchResult(label, seconds, 0)
    deadline = time.monotonic() + seconds

    def upload() -> None:
        while time.monotonic() < deadline:
            with lock:
                body = next(queue, None)
            if body is None:
                result.exhausted = True
                return
            started = time.perf_counter()
            status, answer = client.send("POST", "/api/v1/redemptions/batch", body)
            took = time.perf_counter() - started
            with lock:
                result.batches += 1
                if status != 200:
                    result.failures[f"{status} {answer.get('code') if isinstance(answer, dict) else answer}"] += 1
                    continue
                result.latencies.append(took)
                result.items.update(item["status"] for item in answer["items"])

    dbname = conninfo_to_dict(db_url).get("dbname")
    started = time.monotonic()
    with Meter({"app": server.pids,
                "PostgreSQL": lambda: [(p, False) for p in postgres_pids(dbname)]}) as meter, \
            PgSampler(db_url) as sessions:
        threads = [threading.Thread(target=upload, name=f"uploader-{n}") for n in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    result.seconds = time.monotonic() - started  # the last batches end after the deadline
    result.meter, result.sessions = meter, sessions.describe()
    log(f"  {label}: {result.accepted:,} accepted in {result.batches:,} batches in {result.seconds:.2f} s "
        f"= {result.rate:,.0f} coupons/s; batch latency p50 {pct(result.latencies, .5) * 1000:.0f} ms, "
        f"p99 {pct(result.latencies, .99) * 1000:.0f} ms")
    log(f"    items {dict(result.items)}; CPU per coupon: {result.cpu_per_item()}")
    log(f"    {meter.describe()}")
    log(f"    PostgreSQL sessions (mean count by state): {result.sessions}")
    if result.failures:
        log(f"    FAILED batches: {dict(result.failures)}")
    if result.exhausted:
        log("    WARNING: the uploaders ran out of coupons before the time was up; raise "
            "--batch-codes-per-second")
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=15, help="seconds of each measured run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up before each")
    parser.add_argument("--items", choices=("qr", "code"), default="qr",
                        help="what the till sends, in both runs: the scanned QR (an offline till "
                             "queues QRs only) or the typed code")
    parser.add_argument("--clients", type=int, default=None,
                        help="threads uploading batches at once (default: one per gunicorn thread, "
                             "so that every thread is busy, as wrk's 16 connections keep them)")
    parser.add_argument("--codes-per-second", type=int, default=1500,
                        help="coupons issued per second of the single redeems' runs")
    parser.add_argument("--batch-codes-per-second", type=int, default=10000,
                        help="coupons issued per second of the batches' runs")
    parser.add_argument("--order-threads", type=int, default=4, help="threads placing orders")
    add_common_args(parser, workers=3)
    return parser.parse_args(argv)


def bench(args: argparse.Namespace, procs: Processes) -> int:
    wrk = ensure_wrk()
    args.clients = args.clients or args.workers * args.threads
    r = open_run(args, "batch", f"singles: wrk -t2 -c16 -d{args.duration}s with Idempotency-Key; "
                 f"batches: {args.clients} clients x {BATCH_SIZE} {args.items} items",
                 default_db_url="postgresql://postgres@127.0.0.1:5432/couponsvc_bench_batch",
                 default_redis_url="redis://127.0.0.1:6379/11")
    log("\n== setup")
    platform_key = setup_database(r.env)
    procs.start([*couponsvc_cli(), "worker"], env=r.env, log_path=r.out / "worker.log")
    ours = start_gunicorn(procs, args, r.env, r.out, "ours")
    client = Client(ours.port, platform_key)
    fixture = make_fixture(client, r.tag, max_coupons=100_000_000)
    log(f"  merchant {fixture.merchant_id}, store {fixture.store_id}, campaign {fixture.campaign_id}")

    single_n = (args.duration + args.warmup) * args.codes_per_second + 1
    batch_n = (args.duration + args.warmup) * args.batch_codes_per_second
    orders = math.ceil((single_n + batch_n) / ORDER_QUANTITY)
    log(f"\n== orders: {orders:,} of {ORDER_QUANTITY} (POST /campaigns/{{id}}/orders)")
    codes: list[str] = []
    qr: dict[str, str] = {}
    place_orders(client, fixture, r.tag, 0, orders, args.order_threads, codes, qr)
    if len(codes) < single_n + BATCH_SIZE:
        raise BenchError(f"only {len(codes)} coupons were issued")
    with psycopg.connect(r.db_url, autocommit=True) as conn:
        # As autovacuum would soon: planned on the stats of an empty table, the single redeem
        # of a QR (which names its campaign) can use ix_coupons_campaign and read every coupon.
        conn.execute("ANALYZE")
    singles, batched = codes[:single_n], codes[single_n:]
    sent = (lambda code: qr[code]) if args.items == "qr" else (lambda code: code)

    log(f"\n== single idempotent redeems: POST /api/v1/redemptions, {args.items}, Idempotency-Key")
    wrk_args = ["ours", fixture.scanner_key, fixture.store_id, "1"]
    warm_n = args.warmup * args.codes_per_second
    if args.warmup:
        run_wrk(wrk, ours, [sent(c) for c in singles[:warm_n]], args.warmup, r.out, "single-warmup",
                r.db_url, wrk_args)
    single: WrkResult = run_wrk(wrk, ours, [sent(c) for c in singles[warm_n:]], args.duration, r.out,
                                "single", r.db_url, wrk_args)

    log(f"\n== batches: POST /api/v1/redemptions/batch, {BATCH_SIZE} distinct coupons each, "
        f"{args.clients} clients")
    bodies = batch_bodies(batched, qr, fixture.store_id, args.items, r.tag)
    warm_batches = math.ceil(args.warmup * args.batch_codes_per_second / BATCH_SIZE)
    if args.warmup:
        run_batches(ours, fixture.scanner_key, bodies[:warm_batches], args.warmup, args.clients,
                    r.db_url, "batch-warmup")
    batches = run_batches(ours, fixture.scanner_key, bodies[warm_batches:], args.duration, args.clients,
                          r.db_url, "batch")
    uploaded = [item["code" if args.items == "code" else "qr"] for body in bodies for item in body["items"]]
    with psycopg.connect(r.db_url, autocommit=True) as conn:
        used = conn.execute("SELECT count(*) FROM redemptions WHERE uploaded_at IS NOT NULL").fetchone()[0]
    log(f"  redemptions uploaded in the database: {used:,} ({len(uploaded):,} coupons prepared)")
    ratio = batches.rate / single.rate if single.rate else float("nan")
    log(f"  ratio batch/single coupons per second: {ratio:.2f}")

    s, b = single, batches
    table(f"{os.cpu_count()} CPUs; gunicorn -k gthread -w {args.workers} --threads {args.threads}; "
          f"{args.items} items", [
              ("single idempotent redeems/s", f"{s.rate:,.0f}", ""),
              ("single p50 / p99", f"{s.ms('p50'):.1f} / {s.ms('p99'):.1f} ms", ""),
              ("single CPU per redeem", s.cpu_per_redeem(), ""),
              ("batch coupons/s", f"{b.rate:,.0f}", ""),
              (f"batch of {BATCH_SIZE} p50 / p99", f"{pct(b.latencies, .5) * 1000:.0f} / "
                                                   f"{pct(b.latencies, .99) * 1000:.0f} ms", ""),
              ("batch CPU per coupon", b.cpu_per_item(), ""),
              ("ratio batch / single", f"{ratio:.2f}", ">= 5"),
              ("CPUs used by other processes, single / batch",
               f"{s.meter.others_cpus:.2f} / {b.meter.others_cpus:.2f}", "~0 (a quiet machine)"),
              ("non-2xx single / failed batches / items not accepted",
               f"{sum(s.non_2xx.values())} / {sum(b.failures.values())} / "
               f"{sum(n for k, n in b.items.items() if k != 'accepted')}", "0 / 0 / 0"),
          ])
    problems(r.out)
    log(f"\nlogs and wrk output: {r.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run(bench, parse_args(None)))
