"""Redemptions per second against the number of web nodes: N = 1, 2, 3, ... gunicorns, each
held to a fixed CPU share by a cgroup, behind HAProxy, with PostgreSQL alone on another
core; where the curve bends, and what one PostgreSQL core carries. A benchmark, not a
test: it prints. Runs as root (it writes cgroups) on a machine of 2 cores or more.

    .venv/bin/python scripts/bench_scaling.py                   # 0.2 CPU a node, N up to 8, 10 s each
    .venv/bin/python scripts/bench_scaling.py --node-cpu 0.1 --pg-cpu 0.25

What it measures, how, and the figures of record: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
from bench.cgroups import CpuGroups
from bench.common import (
    BENCH_DIR,
    BenchError,
    Client,
    Meter,
    Processes,
    Server,
    add_common_args,
    children,
    couponsvc_cli,
    free_port,
    log,
    make_fixture,
    open_run,
    postgres_pids,
    problems,
    run,
    setup_database,
    start_gunicorn,
    table,
    wait_http,
)
from bench_redeem import (
    GUNICORN_CONFIG,
    WrkResult,
    ensure_wrk,
    log_wrk_trouble,
    measure_wrk,
    run_bulk,
    run_pgbench,
)
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/couponsvc_bench_scaling"
DEFAULT_REDIS = "redis://127.0.0.1:6379/13"
BACKEND = re.compile(r"^postgres: [^:]+: \S+ (\S+) (?:\S+\(\d+\)|\[local\])")


# ---------------------------------------------------------------- PostgreSQL's processes


def postmaster(db_url: str) -> psutil.Process:
    """The postmaster of the server `db_url` reaches: the parent of this session's backend."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    try:
        parent = psutil.Process(backend).parent()
    except psutil.Error:
        parent = None
    if parent is None or parent.name() != "postgres":
        raise BenchError(f"PostgreSQL at {db_url} does not run on this machine (backend {backend} "
                         "is not a local process): it cannot be pinned to a core here")
    return parent


def our_backends(dbname: str) -> list[int]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.info["name"] == "postgres":
            match = BACKEND.match(" ".join(proc.info["cmdline"] or ()).strip())
            if match and match.group(1) == dbname:
                found.append(proc.pid)
    return found


class BackendMover:
    """Moves the benchmark database's backends into pg/ours every 0.5 s (PostgreSQL forks
    them into pg/server, the postmaster's cgroup): --pg-cpu holds them, not the backends of
    other databases on the same server."""

    def __init__(self, groups: CpuGroups, dbname: str) -> None:
        self.groups, self.dbname, self.moved = groups, dbname, set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mover", daemon=True)

    def sweep(self) -> None:
        for pid in our_backends(self.dbname):
            if pid not in self.moved and self.groups.move(pid, "pg/ours"):
                self.moved.add(pid)

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            self.sweep()

    def __enter__(self) -> BackendMover:
        self.sweep()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# ---------------------------------------------------------------- cores


def busy_per_cpu() -> list[float]:
    return [sum(getattr(t, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq", "steal"))
            for t in psutil.cpu_times(percpu=True)]


def choose_cores(pg_core: int) -> tuple[str, str]:
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        raise BenchError(f"{len(allowed)} core(s) available: PostgreSQL needs one of its own "
                         "and the web nodes another")
    if pg_core not in allowed:
        raise BenchError(f"--pg-core {pg_core} is not one of this machine's cores {allowed}")
    rest = [str(core) for core in allowed if core != pg_core]
    return str(pg_core), ",".join(rest)


# ---------------------------------------------------------------- HAProxy


def haproxy_cfg(port: int, nodes: list[Server]) -> str:
    """docs/operations.md's load balancer (the multi-host test's), on loopback."""
    servers = "\n".join(f"    server w{n} 127.0.0.1:{node.port} check"
                        for n, node in enumerate(nodes, 1))
    return f"""\
global
    maxconn 4096
    nbthread 1

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    option redispatch
    retries 2
    retry-on conn-failure

frontend couponsvc
    bind 127.0.0.1:{port}
    http-request set-header X-Forwarded-For %[src]
    default_backend nodes

backend nodes
    balance roundrobin
    option httpchk
    http-check send meth GET uri /healthz
    http-check expect status 200
    default-server inter 500ms fall 2 rise 2
{servers}
"""


def start_haproxy(procs: Processes, out: Path, nodes: list[Server]) -> Server:
    port, log_path = free_port(), out / f"haproxy-{len(nodes)}.log"
    config = out / f"haproxy-{len(nodes)}.cfg"
    config.write_text(haproxy_cfg(port, nodes))
    proc = procs.start(["haproxy", "-db", "-f", str(config)], env=dict(os.environ), log_path=log_path)
    wait_http(port, "GET", "/healthz", {200}, proc, log_path)
    return Server(proc, port, log_path)


# ---------------------------------------------------------------- one step


@dataclass
class Step:
    nodes: int
    result: WrkResult
    wall: float
    pg_core_busy: float  # the core's busy share, whoever ran there
    web_core_busy: float  # the other core(s), per core
    pg_cpus: float  # PostgreSQL's processes (server and this database's backends), CPUs
    pg_backends: float  # this database's backends alone (what --pg-cpu holds), CPUs

    @property
    def pg_ms(self) -> float:
        return self.pg_cpus * self.wall / max(1, self.result.ok) * 1000

    @property
    def app_ms(self) -> float:
        return self.result.meter.used["app"] / max(1, self.result.ok) * 1000


def group_pids(servers: list[Server]):
    return lambda: [pair for server in servers for pair in server.pids()]


def pg_groups(dbname: str) -> dict[str, object]:
    """Meter groups: this database's backends (opened and closed inside a phase too) and
    the server's own processes (postmaster, WAL writer, checkpointer, ...); not the backends
    of other databases."""
    def server() -> list[tuple[int, bool]]:
        ours = set(our_backends(dbname))
        return [(p, False) for p in postgres_pids(dbname) if p not in ours]
    return {"PostgreSQL": lambda: [(p, False) for p in our_backends(dbname)],
            "PostgreSQL server": server}


def run_load(wrk: str, haproxy: Server, nodes: list[Server], worker: subprocess.Popen,
             codes: list[str], seconds: int, connections: int, out: Path, label: str,
             db_url: str, scanner: tuple[str, str], cores: tuple[str, str]) -> Step:
    """wrk -t1 with scripts/bench/redeem.lua through HAProxy, one coupon per request."""
    codes_file = out / f"codes-{label}.txt"
    codes_file.write_text("\n".join(codes) + "\n")
    argv = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s",
            "-s", str(BENCH_DIR / "redeem.lua"), haproxy.url, "--", "ours", str(codes_file), "1",
            *scanner, "0"]
    dbname = conninfo_to_dict(db_url).get("dbname")
    groups = {"app": group_pids(nodes), "haproxy": group_pids([haproxy]),
              "worker": lambda: [(worker.pid, False), *((p, False) for p in children(worker.pid))],
              **pg_groups(dbname)}
    before = busy_per_cpu()
    result = measure_wrk(argv, groups, "wrk and this script", db_url, seconds, out, label)
    meter = result.meter
    after = busy_per_cpu()
    pg_core, web_cores = int(cores[0]), [int(c) for c in cores[1].split(",")]
    step = Step(len(nodes), result, meter.wall,
                (after[pg_core] - before[pg_core]) / meter.wall,
                sum(after[c] - before[c] for c in web_cores) / meter.wall / len(web_cores),
                (meter.used["PostgreSQL"] + meter.used["PostgreSQL server"]) / meter.wall,
                meter.used["PostgreSQL"] / meter.wall)
    log(f"  {label}: {result.ok:,} redeemed in {result.seconds:.2f} s = {result.rate:,.0f} "
        f"redeems/s; p50 {result.ms('p50'):.1f} ms, p99 {result.ms('p99'):.1f} ms")
    log(f"    CPU per redeem: app {step.app_ms:.2f} ms, PostgreSQL {step.pg_ms:.2f} ms; "
        f"PostgreSQL {step.pg_cpus:.2f} CPU (backends {step.pg_backends:.2f}), its core busy {step.pg_core_busy:.2f}, "
        f"web core busy {step.web_core_busy:.2f}")
    log(f"    {meter.describe()}")
    log(f"    PostgreSQL sessions (mean count by state): {result.sessions}")
    log_wrk_trouble(result)
    return step


# ---------------------------------------------------------------- the run


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds of each measured step")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up before each step")
    parser.add_argument("--max-nodes", type=int, default=8, help="the largest N")
    parser.add_argument("--node-cpu", type=float, default=0.2, help="CPUs each web node may use")
    parser.add_argument("--pg-cpu", type=float, default=1.0,
                        help="CPUs the benchmark database's backends may use on PostgreSQL's "
                             "core (1: the whole core; less, to reach its saturation with "
                             "fewer nodes than one core of web nodes holds)")
    parser.add_argument("--pg-core", type=int, default=0, help="PostgreSQL's core; the rest: web")
    parser.add_argument("--connections-per-node", type=int, default=6,
                        help="wrk connections to HAProxy per web node")
    parser.add_argument("--codes-per-second", type=int, default=1500,
                        help="coupons issued per second of each step (size them generously)")
    parser.add_argument("--bend", type=float, default=0.85,
                        help="measured/linear below this: the curve has bent")
    parser.add_argument("--pgbench-seconds", type=int, default=10)
    add_common_args(parser, workers=1)
    args = parser.parse_args(argv)
    if not 0.05 <= args.node_cpu <= 1 or not 0.05 <= args.pg_cpu <= 1:
        parser.error("--node-cpu and --pg-cpu are between 0.05 and 1")
    return args


def issue_codes(client: Client, fixture, count: int, db_url: str, tag: str) -> list[str]:
    """`count` coupons through the bulk issuance API (the worker writes them), read back."""
    run_bulk(client, fixture, count, db_url, tag)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("ANALYZE coupons")
        return [row[0] for row in conn.execute(
            "SELECT code FROM coupons WHERE campaign_id = %s AND order_id IS NULL "
            "AND status = 'active'", (fixture.campaign_id,))]


def drop_database(db_url: str) -> None:
    params = conninfo_to_dict(db_url)
    with psycopg.connect(make_conninfo(**{**params, "dbname": "postgres"}), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(params["dbname"])))
    log(f"scratch database {params['dbname']} dropped")


def bench(args: argparse.Namespace, procs: Processes) -> int:
    wrk = ensure_wrk()
    cores = choose_cores(args.pg_core)
    groups = CpuGroups("probe")  # fails early, with the reason, where cgroups cannot be written
    load = (f"HAProxy round robin, wrk -t1 -c{args.connections_per_node}×N "
            f"-d{args.duration}s; {args.node_cpu:g} CPU a node on core(s) {cores[1]}, "
            f"PostgreSQL on core {cores[0]}"
            + (f" ({args.pg_cpu:g} CPU for this database's backends)" if args.pg_cpu < 1 else ""))
    r = open_run(args, "scaling", load, default_db_url=DEFAULT_DB, default_redis_url=DEFAULT_REDIS)
    groups = CpuGroups(r.tag)
    log(f"  {groups.describe()}; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    try:
        return measure(args, procs, r, groups, wrk, cores, load)
    finally:
        groups.restore()
        log("cgroups removed; PostgreSQL and every process back where they were")
        procs.stop_all()
        if not os.environ.get("DATABASE_URL") and not args.keep_db:
            with contextlib.suppress(psycopg.Error):
                drop_database(r.db_url)


def measure(args, procs, r, groups: CpuGroups, wrk: str, cores: tuple[str, str], load: str) -> int:
    log("\n== setup")
    platform_key = setup_database(r.env)
    worker = procs.start([*couponsvc_cli(), "worker"], env=r.env, log_path=r.out / "worker.log")
    node_env = {**r.env, "COUPONSVC_TRUSTED_PROXIES": "1"}
    nodes = [start_gunicorn(procs, args, node_env, r.out, f"node-{n}", config=GUNICORN_CONFIG)
             for n in range(1, args.max_nodes + 1)]
    log(f"  {len(nodes)} web nodes: gunicorn -c {GUNICORN_CONFIG} -w {args.workers} "
        f"--threads {args.threads}")
    client = Client(nodes[0].port, platform_key)
    fixture = make_fixture(client, r.tag, max_coupons=10_000_000)
    per_step = (args.warmup + args.duration) * args.codes_per_second
    codes = issue_codes(client, fixture, per_step * args.max_nodes, r.db_url, r.tag)
    log(f"  {len(codes):,} coupons issued (bulk), {per_step:,} per step")

    log(f"\n== cgroups: PostgreSQL on core {cores[0]}, the web nodes, HAProxy, wrk, the worker "
        f"and this script on {cores[1]}")
    pg_main = postmaster(r.db_url)
    pg_share = args.pg_cpu if args.pg_cpu < 1 else None
    groups.make("pg/server", cpus=cores[0])
    groups.make("pg/ours", cpus=cores[0], cpu=pg_share)
    groups.make("web/driver", cpus=cores[1])
    groups.move(pg_main.pid, "pg/server")  # first: what it forks from now on is forked there
    cluster = [child.pid for child in pg_main.children()]
    for pid in cluster:
        groups.move(pid, "pg/server")
    for pid in (os.getpid(), worker.pid, *children(worker.pid)):
        groups.move(pid, "web/driver")
    for n, node in enumerate(nodes, 1):
        groups.make(f"web/node-{n}", cpus=cores[1], cpu=args.node_cpu)
        for pid, _ in node.pids():
            groups.move(pid, f"web/node-{n}")
    log(f"  postmaster {pg_main.pid} and its {len(cluster)} processes moved; "
        f"{args.node_cpu:g} CPU a node")

    steps: list[Step] = []
    dbname = conninfo_to_dict(r.db_url)["dbname"]
    scanner = (fixture.scanner_key, fixture.store_id)
    with BackendMover(groups, dbname):
        for n in range(1, args.max_nodes + 1):
            log(f"\n== N = {n}")
            haproxy = start_haproxy(procs, r.out, nodes[:n])
            share = codes[(n - 1) * per_step:n * per_step]
            warm_n = args.warmup * args.codes_per_second
            connections = args.connections_per_node * n
            if args.warmup:
                subprocess.run([wrk, "-t1", f"-c{connections}", f"-d{args.warmup}s", "-s",
                                str(BENCH_DIR / "redeem.lua"), haproxy.url, "--", "ours",
                                str(write_codes(r.out, f"warm-{n}", share[:warm_n])), "1",
                                *scanner, "0"], capture_output=True, timeout=args.warmup + 60,
                               check=False)
            steps.append(run_load(wrk, haproxy, nodes[:n], worker, share[warm_n:], args.duration,
                                  connections, r.out, f"N{n}", r.db_url, scanner, cores))
            procs.stop(haproxy.proc)
            if saturated(steps[-1], args) or flat(steps):
                break

        log(f"\n== ceiling: pgbench -c 16 -j 2 -T {args.pgbench_seconds}, scripts/bench/pg_update.sql, "
            f"on the same pinned PostgreSQL")
        with Meter(pg_groups(dbname), own="pgbench and this script") as pg_meter:
            pg_tps = run_pgbench(r.db_url, args.pgbench_seconds, r.out)
        log(f"  {pg_tps or 0:,.0f} UPDATEs/s; {pg_meter.describe()}")

    report(args, steps, pg_tps, pg_meter, load)
    problems(r.out)
    log(f"\nlogs and wrk output: {r.out}")
    return 0


def write_codes(out: Path, label: str, codes: list[str]) -> Path:
    path = out / f"codes-{label}.txt"
    path.write_text("\n".join(codes) + "\n")
    return path


def saturated(step: Step, args: argparse.Namespace) -> bool:
    """PostgreSQL used 90 % of what it may: its backends of --pg-cpu, or all of it its core."""
    return (step.pg_backends if args.pg_cpu < 1 else step.pg_cpus) >= 0.9 * args.pg_cpu


def flat(steps: list[Step]) -> bool:
    """Two steps in a row that gained less than 3 %: the curve is flat, more nodes add nothing."""
    rates = [s.result.rate for s in steps[-3:]]
    return len(rates) == 3 and rates[1] < rates[0] * 1.03 and rates[2] < rates[1] * 1.03


def report(args, steps: list[Step], pg_tps: float | None, pg_meter: Meter, load: str) -> None:
    one = steps[0].result.rate
    log(f"\n== the curve ({args.node_cpu:g} CPU a node)")
    log("   N  redeems/s  linear  measured/linear  p50 / p99 ms  CPU per redeem app / PG ms  "
        "PostgreSQL CPU  its core busy  web core busy  other processes")
    bent = None
    for s in steps:
        ratio = s.result.rate / (one * s.nodes) if one else float("nan")
        if bent is None and ratio < args.bend:
            bent = s
        log(f"  {s.nodes:2d}  {s.result.rate:9,.0f}  {one * s.nodes:6,.0f}  {ratio:15.2f}  "
            f"{s.result.ms('p50'):5.1f} / {s.result.ms('p99'):5.1f}  {s.app_ms:13.2f} / {s.pg_ms:.2f}"
            f"  {s.pg_cpus:14.2f}  {s.pg_core_busy:13.2f}  {s.web_core_busy:13.2f}  "
            f"{s.result.meter.others_cpus:15.2f}")
    best = max(steps, key=lambda s: s.result.rate)
    per_core = 1000 / best.pg_ms if best.pg_ms else float("nan")
    pg_used = pg_meter.used["PostgreSQL"] + pg_meter.used["PostgreSQL server"]
    pg_update_ms = (pg_used / (pg_tps * pg_meter.wall) * 1000
                    if pg_tps else float("nan"))
    if bent is None:
        bend = f"not within N = {steps[-1].nodes} (measured/linear >= {args.bend:g} throughout)"
    else:
        limit = ("PostgreSQL's share" if saturated(bent, args) else
                 "the web core (nodes, HAProxy, wrk)" if bent.web_core_busy >= 0.9 else
                 "neither PostgreSQL nor the web core at 90 %")
        bend = f"N = {bent.nodes} ({bent.result.rate / (one * bent.nodes):.2f} of linear; busy: {limit})"
    rows = [
        ("redeems/s, N = 1 / best (N)", f"{one:,.0f} / {best.result.rate:,.0f} ({best.nodes})", ""),
        ("best / linear (N × one node)", f"{best.result.rate / (one * best.nodes):.2f}", ">= 0.85"),
        ("the curve bends at", bend, ""),
        ("PostgreSQL CPU per redeem (at the best N)", f"{best.pg_ms:.3f} ms", ""),
        ("app CPU per redeem (at the best N)", f"{best.app_ms:.3f} ms", ""),
        ("redeems/s one PostgreSQL core carries (1 / its CPU per redeem)", f"{per_core:,.0f}", ""),
        ("PostgreSQL at the best N: CPUs used (its backends) of its share",
         f"{best.pg_cpus:.2f} ({best.pg_backends:.2f}) of {args.pg_cpu:g}", ""),
        ("ceiling: pgbench UPDATEs/s on the same PostgreSQL", f"{pg_tps or 0:,.0f}", ""),
        ("PostgreSQL CPU per raw UPDATE (pgbench)", f"{pg_update_ms:.3f} ms", ""),
        ("redeem / raw UPDATE, PostgreSQL CPU", f"{best.pg_ms / pg_update_ms:.2f}", ""),
        ("best redeems/s / pgbench UPDATEs/s", f"{best.result.rate / pg_tps:.2f}" if pg_tps else "n/a", ""),
        ("other processes, CPUs (min-max over the steps)",
         f"{min(s.result.meter.others_cpus for s in steps):.2f}-"
         f"{max(s.result.meter.others_cpus for s in steps):.2f}", "~0 (a quiet machine)"),
        ("load average at the end", " ".join(f"{x:.1f}" for x in os.getloadavg()), ""),
    ]
    if saturated(best, args):
        rows.insert(6, ("redeems/s per PostgreSQL core, measured at saturation (best / its share)",
                        f"{best.result.rate / args.pg_cpu:,.0f}", ""))
    table(load, rows)


if __name__ == "__main__":
    sys.exit(run(bench, parse_args(None)))
