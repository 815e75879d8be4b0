"""Redemption, order and bulk-issuance speed of couponsvc, through the real stack, against
the thinnest Flask redeem measured in the same run. A benchmark, not a test: it prints.

    .venv/bin/python scripts/bench_redeem.py                  # 20 s runs, 1,000,000 bulk codes
    .venv/bin/python scripts/bench_redeem.py --duration 10 --skip-bulk --idempotency
    .venv/bin/python scripts/bench_redeem.py --duration 15 --skip-bulk --metrics both

What it measures, how, and the figures of record: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from bench.common import (
    BENCH_DIR,
    ORDER_QUANTITY,
    BenchError,
    Client,
    Fixture,
    Meter,
    Processes,
    Run,
    Server,
    add_common_args,
    couponsvc_cli,
    log,
    make_fixture,
    open_run,
    place_orders,
    postgres_pids,
    problems,
    run,
    settle,
    setup_database,
    start_gunicorn,
    start_py_spy,
    stop_py_spy,
    table,
)
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

WRK_THREADS, WRK_CONNECTIONS = 2, 16
PGBENCH_ROWS = 100_000
WRITTEN = ("coupons", "orders", "customer_purchases", "idempotency_keys", "redemptions", "events",
           "deliveries")  # the tables the orders and the redeems write, settled before each run
GUNICORN_CONFIG = "python:couponsvc.gunicorn_conf"  # ours runs as in production


def ensure_wrk() -> str:
    for first in ([], ["apt-get", "update"]):
        if shutil.which("wrk"):
            break
        log("wrk is not installed: apt-get install -y wrk" + (" after apt-get update" if first else ""))
        if first:
            subprocess.run(first, check=False)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=False)
    found = shutil.which("wrk")
    if not found:
        raise BenchError("wrk could not be installed (apt-get install -y wrk)")
    return found


class PgSampler:
    """What the benchmark database's sessions are doing, sampled every 50 ms: many `idle in
    transaction` mean requests hold transactions open while they wait or work elsewhere."""

    def __init__(self, db_url: str) -> None:
        self.db_url, self.counts, self.samples = db_url, {}, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        try:
            with psycopg.connect(self.db_url, autocommit=True) as conn:
                while not self._stop.wait(0.05):
                    self.samples += 1
                    for state, wait_type, wait in conn.execute(
                            "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                            "AND backend_type = 'client backend'"):
                        name = f"active, waiting on {wait_type}:{wait}" if (
                            state == "active" and wait_type) else state or "?"
                        self.counts[name] = self.counts.get(name, 0) + 1
        except psycopg.Error:
            pass

    def __enter__(self) -> PgSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def describe(self) -> str:
        parts = sorted(self.counts.items(), key=lambda item: -item[1])[:6]
        return ", ".join(f"{name} {n / self.samples:.1f}" for name, n in parts) or "n/a"


@dataclass
class WrkResult:
    label: str
    data: dict[str, Any]
    meter: Meter
    sessions: str

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

    def ms(self, key: str) -> float:
        return self.data["latency_us"][key] / 1000

    def cpu_per_redeem(self) -> str:
        ok = max(1, self.ok)
        return (f"app {self.meter.used['app'] / ok * 1000:.2f} ms + PostgreSQL "
                f"{self.meter.used['PostgreSQL'] / ok * 1000:.2f} ms")


def run_wrk(wrk: str, server: Server, codes: list[str], seconds: int, out: Path, label: str,
            db_url: str, script_args: list[str]) -> WrkResult:
    """wrk with scripts/bench/redeem.lua on `codes`, one request per code; prints the result."""
    codes_file = out / f"codes-{label}.txt"
    codes_file.write_text("\n".join(codes) + "\n")
    argv = [wrk, f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{seconds}s", "--latency",
            "--timeout", "10s", "-s", str(BENCH_DIR / "redeem.lua"), server.url, "--",
            script_args[0], str(codes_file), str(WRK_THREADS), *script_args[1:]]
    dbname = conninfo_to_dict(db_url).get("dbname")
    result = measure_wrk(argv, {"app": server.pids,
                                "PostgreSQL": lambda: [(p, False) for p in postgres_pids(dbname)]},
                         "wrk", db_url, seconds, out, label)
    d = result.data
    log(f"  {label}: {result.ok:,} redeemed in {result.seconds:.2f} s = {result.rate:,.0f} "
        f"redeems/s; latency p50 {result.ms('p50'):.1f} ms, p90 {result.ms('p90'):.1f} ms, "
        f"p99 {result.ms('p99'):.1f} ms, max {result.ms('max'):.1f} ms")
    log(f"    statuses {d['statuses']}; codes loaded {d['codes_loaded']:,}, answered "
        f"{d['answered']:,}; CPU per redeem: {result.cpu_per_redeem()}")
    log(f"    {result.meter.describe()}")
    log(f"    PostgreSQL sessions (mean count by state): {result.sessions}")
    log_wrk_trouble(result)
    return result


def measure_wrk(argv: list[str], groups: dict[str, object], own: str, db_url: str, seconds: int,
                out: Path, label: str) -> WrkResult:
    """Run wrk with scripts/bench/redeem.lua under a Meter of `groups` and a PgSampler; its
    WRK_RESULT line, with the output kept in `out`."""
    with Meter(groups, own=own) as meter, PgSampler(db_url) as sessions:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 120,
                              check=False)
    (out / f"wrk-{label}.txt").write_text(done.stdout + done.stderr)
    match = re.search(r"^WRK_RESULT (\{.*\})$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or not match:
        raise BenchError(f"wrk ({label}) exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return WrkResult(label, json.loads(match.group(1)), meter, sessions.describe())


def log_wrk_trouble(result: WrkResult) -> None:
    """What makes a run's figures doubtful: non-2xx answers, socket errors, coupons run out."""
    d = result.data
    errors = {k: v for k, v in d["errors"].items() if v and k != "status"}
    if result.non_2xx:
        log(f"    NON-2xx answers: {result.non_2xx}")
    if errors:
        log(f"    socket errors/timeouts: {errors}")
    if d["exhausted_threads"]:
        log(f"    WARNING: {d['exhausted_threads']} wrk thread(s) ran out of coupons and stopped "
            f"early ({d['extra']} extra answers not counted); raise --codes-per-second")


def clone_coupons(db_url: str, template_code: str, count: int, tag: str) -> list[str]:
    """Insert `count` active single-use copies of one of ours, with new codes, in SQL."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        columns = [row[0] for row in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = "
            "current_schema() AND table_name = 'coupons' ORDER BY ordinal_position")]
        overrides = {"code": sql.SQL("%s || lpad(g::text, 8, '0')"), "status": sql.SQL("'active'"),
                     "uses_left": sql.SQL("1"), "uses_total": sql.SQL("1")}
        query = sql.SQL(
            "INSERT INTO coupons ({cols}) SELECT {select} FROM coupons, "
            "generate_series(1, %s) AS g WHERE coupons.code = %s"
        ).format(cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
                 select=sql.SQL(", ").join(overrides.get(c, sql.Identifier(c)) for c in columns))
        conn.execute(query, (f"T{tag}", count, template_code))
        conn.execute("ANALYZE coupons")
    return [f"T{tag}{n:08d}" for n in range(1, count + 1)]


def run_pgbench(db_url: str, seconds: int, out: Path) -> float | None:
    """Raw UPDATEs/s of scripts/bench/pg_update.sql on a scratch table, for scale."""
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
        done = subprocess.run(
            [pgbench, "-n", "-f", str(BENCH_DIR / "pg_update.sql"), "-D", f"rows={PGBENCH_ROWS}",
             "-c", str(WRK_CONNECTIONS), "-j", str(WRK_THREADS), "-T", str(seconds), db_url],
            capture_output=True, text=True, timeout=seconds + 120, check=False)
        (out / "pgbench.txt").write_text(done.stdout + done.stderr)
        match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
        if done.returncode != 0 or not match:
            log(f"  pgbench failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
            return None
        return float(match.group(1))
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS bench_pgb_coupons")


def run_bulk(client: Client, fixture: Fixture, count: int, db_url: str, tag: str) -> tuple[str, str]:
    """POST .../coupons/bulk and poll the job; (summary value, note) for the table."""
    count_sql = "SELECT count(*) FROM coupons WHERE campaign_id = %s"
    with psycopg.connect(db_url, autocommit=True) as conn:
        before = conn.execute(count_sql, (fixture.campaign_id,)).fetchone()[0]
    started = time.perf_counter()
    job = client.call("POST", f"/api/v1/campaigns/{fixture.campaign_id}/coupons/bulk",
                      {"count": count}, idempotency_key=f"bulk-{tag}", expect=(202,))
    deadline, last_print = time.monotonic() + max(900.0, count / 500), time.monotonic()
    while job.get("status") not in ("succeeded", "failed"):
        if time.monotonic() > deadline:
            raise BenchError(f"bulk job {job['id']} still {job.get('status')} after the deadline")
        if time.monotonic() - last_print > 5:
            last_print = time.monotonic()
            log(f"  ... {job.get('status')}, done {job.get('done')} of {job.get('requested')}")
        time.sleep(0.2)
        job = client.call("GET", f"/api/v1/jobs/{job['id']}", expect=(200,))
    seconds = time.perf_counter() - started
    with psycopg.connect(db_url, autocommit=True) as conn:
        in_db = conn.execute(count_sql, (fixture.campaign_id,)).fetchone()[0] - before
    if job["status"] == "failed":
        log(f"  bulk job FAILED: {job.get('error')}")
    times = [job.get(k) for k in ("started_at", "finished_at")]
    job_rate = ""
    if all(isinstance(t, str) for t in times):
        begun, ended = (datetime.fromisoformat(t.replace("Z", "+00:00")) for t in times)
        if ended > begun:
            job_rate = f", {in_db / (ended - begun).total_seconds():,.0f} codes/s of job run time"
    log(f"  {job['status']}: {in_db:,} codes in the database after {seconds:.1f} s "
        f"= {in_db / seconds:,.0f} codes/s{job_rate}")
    return f"{in_db / seconds:,.0f} ({seconds:.1f} s)", f"{in_db:,} codes, {job['status']}"


def metrics_variants(args: argparse.Namespace) -> list[str]:
    """The COUPONSVC_METRICS of each run of ours: `both` alternates off and on as
    off, on, on, off, ... (a drift over the runs weighs on both alike)."""
    if args.metrics != "both":
        return [args.metrics]
    return [variant for n in range(args.metrics_rounds)
            for variant in (("off", "on") if n % 2 == 0 else ("on", "off"))]


def compare_metrics(results: dict[str, list[WrkResult]], thin: WrkResult) -> list[tuple[str, str, str]]:
    """Rows for the summary: each variant's rate, ratio and app CPU per redeem (mean of its
    runs), and, with both, what counting costs (on against off)."""
    rows, means = [], {}
    for variant, runs in results.items():
        rate = sum(run.rate for run in runs) / len(runs)
        cpu = sum(run.meter.used["app"] / max(1, run.ok) for run in runs) / len(runs) * 1000
        means[variant] = (rate, cpu)
        ratio = rate / thin.rate if thin.rate else float("nan")
        rows.append((f"metrics {variant}: redeems/s, ratio to ceiling, app CPU per redeem"
                     f" ({len(runs)} run{'s' if len(runs) > 1 else ''})",
                     f"{rate:,.0f}, {ratio:.3f}, {cpu:.3f} ms",
                     ", ".join(f"{run.rate:,.0f}" for run in runs)))
    if {"on", "off"} <= means.keys():
        (on_rate, on_cpu), (off_rate, off_cpu) = means["on"], means["off"]
        rows.append(("metrics on vs off: redeems/s, app CPU per redeem",
                     f"{(on_rate / off_rate - 1) * 100:+.1f} %, {(on_cpu / off_cpu - 1) * 100:+.1f} %",
                     "within 5 %"))
        log(f"  metrics on vs off: redeems/s {(on_rate / off_rate - 1) * 100:+.1f} %, app CPU per "
            f"redeem {(on_cpu / off_cpu - 1) * 100:+.1f} %")
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=20, help="seconds of each measured wrk run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of wrk warm-up per app")
    parser.add_argument("--idempotency", action="store_true",
                        help="send an Idempotency-Key with every redemption")
    parser.add_argument("--bulk-count", type=int, default=1_000_000, help="codes in the bulk job")
    parser.add_argument("--skip-bulk", action="store_true", help="leave out the bulk benchmark")
    parser.add_argument("--codes-per-second", type=int, default=3000,
                        help="coupons issued per second of wrk run and app (size them generously)")
    parser.add_argument("--order-threads", type=int, default=4,
                        help="threads placing orders concurrently")
    parser.add_argument("--orders-sequential", type=int, default=20,
                        help="orders placed one at a time before the concurrent ones")
    parser.add_argument("--pgbench-seconds", type=int, default=10)
    parser.add_argument("--metrics", choices=("on", "off", "both"), default="on",
                        help="COUPONSVC_METRICS of ours; both: off and on runs in turn "
                             "(off, on, on, off, ...: --metrics-rounds each) and what counting costs")
    parser.add_argument("--metrics-rounds", type=int, default=2,
                        help="runs of each variant with --metrics both")
    parser.add_argument("--rounds", type=int, default=1,
                        help="ours then the ceiling, this many times in turn, each round's ratio "
                             "printed (two runs a minute apart, on a machine whose speed drifts)")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy flame graph of ours in the measured run (figures drop by its cost)")
    add_common_args(parser, workers=3)
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be 1 or more")
    return args


def _ours(results: dict[str, list[WrkResult]], variants: list[str]) -> WrkResult:
    """The run of ours a round is judged by: its last with metrics on, else its last."""
    return results["on"][-1] if results.get("on") else results[variants[0]][-1]


def _ratio(ours: WrkResult, thin: WrkResult) -> float:
    return ours.rate / thin.rate if thin.rate else float("nan")


def _round(args: argparse.Namespace, n: int, prefix: str = "-round-") -> str:
    return f"{prefix}{n + 1}" if args.rounds > 1 else ""


def redeem_ours(args: argparse.Namespace, procs: Processes, r: Run, wrk: str, variants: list[str],
                codes: list[str], ours_args: list[str], round_: int) -> dict[str, list[WrkResult]]:
    """Ours on `codes`, one run of each metrics variant, each on a server of its own."""
    log("\n== redemptions: ours, POST /api/v1/redemptions")
    warm_n = args.warmup * args.codes_per_second
    per_run = len(codes) // len(variants)
    results: dict[str, list[WrkResult]] = {variant: [] for variant in variants}
    for n, variant in enumerate(variants):
        ours = start_gunicorn(procs, args, {**r.env, "COUPONSVC_METRICS": variant}, r.out,
                              f"ours-redeem-metrics-{variant}-{round_}-{n}", config=GUNICORN_CONFIG)
        share = codes[n * per_run:(n + 1) * per_run]
        warm, measured = share[:warm_n], share[warm_n:]
        label = f"ours-metrics-{variant}" + (f"-{n}" if len(variants) > 1 else "") + _round(args, round_)
        log(f"  {settle(r.db_url, WRITTEN)}")
        log(f"  COUPONSVC_METRICS={variant} (gunicorn -c {GUNICORN_CONFIG})")
        if args.warmup:
            run_wrk(wrk, ours, warm, args.warmup, r.out, f"{label}-warmup", r.db_url, ours_args)
        target = r.out / "profile-ours.svg"
        profiler = (start_py_spy(procs, r.out, ours.proc.pid, target, args.duration + 1)
                    if args.profile and not n and not round_ else None)
        result = run_wrk(wrk, ours, measured, args.duration, r.out, label, r.db_url, ours_args)
        results[variant].append(result)
        if profiler is not None:
            log(f"  profile: {target if stop_py_spy(procs, profiler, target, 30) else 'none'}")
        with psycopg.connect(r.db_url, autocommit=True) as conn:
            in_db = conn.execute("SELECT count(*) FROM coupons WHERE code = ANY(%s) AND uses_left = 0",
                                 (measured,)).fetchone()[0]
        log(f"  coupons of the run used up in the database: {in_db:,} (2xx answers: {result.ok:,})")
        procs.stop(ours.proc)
    return results


def redeem_ceiling(args: argparse.Namespace, procs: Processes, r: Run, wrk: str, codes: list[str],
                   round_: int) -> WrkResult:
    """The ceiling (`scripts/bench/thin_redeem.py`) on `codes`, on a server of its own."""
    log("\n== redemptions: ceiling, scripts/bench/thin_redeem.py POST /redeem/<code>")
    log(f"  {settle(r.db_url, WRITTEN)}")
    thin = start_gunicorn(procs, args, {**r.env, "THIN_POOL_SIZE": str(args.threads)}, r.out,
                          f"thin-{round_}", "thin_redeem:create_app()", ("POST", "/redeem/BENCH-PROBE", {409}))
    warm_n = args.warmup * args.codes_per_second * 2
    if args.warmup:
        run_wrk(wrk, thin, codes[:warm_n], args.warmup, r.out, "thin-warmup" + _round(args, round_),
                r.db_url, ["thin"])
    result = run_wrk(wrk, thin, codes[warm_n:], args.duration, r.out, "ceiling" + _round(args, round_),
                     r.db_url, ["thin"])
    procs.stop(thin.proc)
    return result


def bench(args: argparse.Namespace, procs: Processes) -> int:
    wrk = ensure_wrk()
    load = f"wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{args.duration}s"
    r = open_run(args, "redemption", load + ("; Idempotency-Key on every redeem"
                                             if args.idempotency else ""),
                 default_db_url="postgresql://postgres@127.0.0.1:5432/couponsvc_bench",
                 default_redis_url="redis://127.0.0.1:6379/15")
    log("\n== setup")
    platform_key = setup_database(r.env)
    log("  database upgraded, platform key created")
    procs.start([*couponsvc_cli(), "worker"], env=r.env, log_path=r.out / "worker.log")
    variants = metrics_variants(args)
    ours = start_gunicorn(procs, args, {**r.env, "COUPONSVC_METRICS": variants[0]}, r.out,
                          f"ours-redeem-metrics-{variants[0]}", config=GUNICORN_CONFIG)
    client = Client(ours.port, platform_key)
    fixture = make_fixture(client, r.tag, max_coupons=10_000_000)
    log(f"  merchant {fixture.merchant_id}, store {fixture.store_id}, "
        f"campaign {fixture.campaign_id} (published)")

    log(f"\n== orders (quantity={ORDER_QUANTITY}, through POST /campaigns/{{id}}/orders)")
    needed = (args.duration + args.warmup) * args.codes_per_second * len(variants) * args.rounds + 1
    total = max(math.ceil(needed / ORDER_QUANTITY), args.orders_sequential + 1)
    codes: list[str] = []
    sequential = place_orders(client, fixture, r.tag, 0, args.orders_sequential, 1, codes)
    concurrent = place_orders(client, fixture, r.tag, args.orders_sequential,
                              total - args.orders_sequential, args.order_threads, codes)
    if len(codes) < 1000:
        raise BenchError(f"only {len(codes)} coupons were issued; not enough to measure")

    body = Client(ours.port, fixture.scanner_key).call(
        "POST", "/api/v1/redemptions", {"code": codes[0], "store_id": fixture.store_id},
        expect=(201,))
    log(f"\n  one redemption by hand: 201, coupon status {(body.get('coupon') or {}).get('status')!r}")
    procs.stop(ours.proc)
    ours_args = ["ours", fixture.scanner_key, fixture.store_id, "1" if args.idempotency else "0"]
    per_round = len(codes[1:]) // args.rounds
    thin_per_round = (args.duration + args.warmup) * args.codes_per_second * 2
    thin_codes = clone_coupons(r.db_url, codes[-1], thin_per_round * args.rounds, r.tag)
    log(f"  {len(thin_codes):,} fresh coupons for the ceiling cloned in SQL from {codes[-1]}")
    rounds: list[tuple[dict[str, list[WrkResult]], WrkResult]] = []
    for n in range(args.rounds):
        if args.rounds > 1:
            log(f"\n== round {n + 1} of {args.rounds}")
        results = redeem_ours(args, procs, r, wrk, variants, codes[1 + n * per_round:1 + (n + 1) * per_round],
                              ours_args, n)
        thin = redeem_ceiling(args, procs, r, wrk, thin_codes[n * thin_per_round:(n + 1) * thin_per_round], n)
        log(f"  ratio ours/ceiling{_round(args, n, ', round ')}: {_ratio(_ours(results, variants), thin):.2f}")
        rounds.append((results, thin))
    results, thin_result = rounds[-1]
    ours_result = _ours(results, variants)
    ratio = _ratio(ours_result, thin_result)
    metrics_rows = compare_metrics(results, thin_result)
    if args.rounds > 1:
        metrics_rows[:0] = [
            ("each round: ratio ours/ceiling",
             ", ".join(f"{_ratio(_ours(o, variants), t):.2f}" for o, t in rounds), ">= 0.5"),
            ("each round: p99 ours / ceiling",
             ", ".join(f"{_ours(o, variants).ms('p99'):.1f} / {t.ms('p99'):.1f} ms" for o, t in rounds),
             "ours < 50 ms")]

    log(f"\n== raw PostgreSQL: pgbench -c {WRK_CONNECTIONS} -j {WRK_THREADS} "
        f"-T {args.pgbench_seconds}, scripts/bench/pg_update.sql")
    pg_tps = run_pgbench(r.db_url, args.pgbench_seconds, r.out)
    if pg_tps is not None:
        log(f"  {pg_tps:,.0f} UPDATEs/s")

    bulk = None
    if not args.skip_bulk:
        log(f"\n== bulk issuance: POST /campaigns/{{id}}/coupons/bulk {{count: {args.bulk_count}}}")
        ours_bulk = start_gunicorn(procs, args, r.env, r.out, "ours-bulk")
        bulk = run_bulk(Client(ours_bulk.port, platform_key), fixture, args.bulk_count, r.db_url,
                        r.tag)
        procs.stop(ours_bulk.proc)

    o, t = ours_result, thin_result
    rows = [
        ("redeems/s, ours", f"{o.rate:,.0f}", ""),
        ("p50 / p99, ours", f"{o.ms('p50'):.1f} / {o.ms('p99'):.1f} ms", "p99 < 50 ms"),
        ("redeems/s, ceiling (thin app)", f"{t.rate:,.0f}", ""),
        ("p50 / p99, ceiling", f"{t.ms('p50'):.1f} / {t.ms('p99'):.1f} ms", ""),
        ("ratio ours/ceiling", f"{ratio:.2f}", ">= 0.5"),
        ("CPU per redeem, ours", o.cpu_per_redeem(), ""),
        ("CPU per redeem, ceiling", t.cpu_per_redeem(), ""),
        ("CPUs used by other processes, ours / ceiling run",
         f"{o.meter.others_cpus:.2f} / {t.meter.others_cpus:.2f}", "~0 (a quiet machine)"),
        ("non-2xx, ours / ceiling", f"{sum(o.non_2xx.values())} / {sum(t.non_2xx.values())}",
         "0 / 0"),
        ("PostgreSQL UPDATEs/s (pgbench)", f"{pg_tps:,.0f}" if pg_tps else "n/a", ""),
        ("orders: coupons/s, 1 client", f"{sequential:,.0f}", ""),
        (f"orders: coupons/s, {args.order_threads} clients", f"{concurrent:,.0f}", ""),
    ]
    rows += metrics_rows
    if bulk:
        rows.append((f"bulk: codes/s ({bulk[1]})", bulk[0], "1,000,000 in < 30 s"))
    table(f"{os.cpu_count()} CPUs; gunicorn -k gthread -w {args.workers} "
          f"--threads {args.threads}; {load}" + ("; Idempotency-Key" if args.idempotency else "")
          + ("; profiled" if args.profile else ""), rows)
    problems(r.out)
    log(f"\nlogs and wrk output: {r.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run(bench, parse_args(None)))
