"""Admin page speed with 10,000 campaigns and 1,000,000 coupons: the server's own time for
each page, p50 and p95 over --requests requests, against the 50 ms budget and against a
trivial signed-in page measured in the same run. A benchmark, not a test: it prints.

    .venv/bin/python scripts/bench_admin.py                  # seeds couponsvc_bench_admin anew
    .venv/bin/python scripts/bench_admin.py --keep-db --requests 100

What it seeds, how it measures, and the figures of record: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from bench.admin_seed import Scale, seed, seeded
from bench.common import BenchError, log, pct, prepare_database, run, run_cli, run_keys, table
from psycopg.conninfo import conninfo_to_dict

BUDGET_MS = 50.0
DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/couponsvc_bench_admin"
DEFAULT_REDIS = "redis://127.0.0.1:6379/12"
PASSWORD = "bench admin password"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Measured:
    name: str
    who: str
    ms: list[float]
    cpu_ms: list[float]  # this thread's CPU: the app's own work, whatever the machine's load
    queries: float

    @property
    def p50(self) -> float:
        return statistics.median(self.ms)

    @property
    def p95(self) -> float:
        return pct(self.ms, 0.95)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=50, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=3, help="untimed requests per page first")
    parser.add_argument("--keep-db", action="store_true",
                        help="reuse the seeded database instead of seeding it anew")
    parser.add_argument("--out", type=Path, default=None, help="directory for the app's instance files")
    return parser.parse_args(argv)


def bench(args: argparse.Namespace, _procs) -> int:
    db_url = re.sub(r"^(postgresql\+psycopg2?|postgres)://", "postgresql://",
                    os.environ.get("DATABASE_URL") or DEFAULT_DB)
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS
    dbname = conninfo_to_dict(db_url)["dbname"]
    out = args.out or Path(f"/tmp/couponsvc-bench-admin-{dbname}")
    log(f"couponsvc admin benchmark; DATABASE_URL={db_url} REDIS_URL={redis_url}; "
        f"{os.cpu_count()} CPUs; {args.requests} timed requests per page, in-process")
    scale = Scale()
    prepare_database(db_url, recreate=not args.keep_db)
    env = {**run_keys(dbname), **os.environ, "DATABASE_URL": db_url, "REDIS_URL": redis_url,
           "COUPONSVC_INSTANCE_PATH": str(out / "instance")}
    run_cli(["db", "upgrade"], env)
    if not seeded(db_url, scale):
        log(f"\n== seeding {scale.campaigns:,} campaigns, {scale.coupons:,} coupons "
            f"({scale.bulk:,} of them one distribution campaign's), set-based")
        started = time.perf_counter()
        seed(db_url, scale, log)
        log(f"  seeded in {time.perf_counter() - started:.0f} s")
    else:
        log("\n== the database is seeded already (--keep-db)")
    os.environ.update(env)
    return measure(args, db_url)


def measure(args: argparse.Namespace, db_url: str) -> int:
    from sqlalchemy import event, select

    from couponsvc import create_app, people
    from couponsvc.admin.figures import _EXTENSION as FIGURES
    from couponsvc.extensions import db
    from couponsvc.models import AdminUser, Campaign, Coupon, Merchant

    app = create_app()
    with app.app_context():
        big = db.session.scalar(select(Campaign).where(Campaign.title.like("全城派券%")))
        if big is None:
            raise BenchError("the seeded distribution campaign is missing; run without --keep-db")
        merchant = db.session.get(Merchant, big.merchant_id)
        code = db.session.scalar(select(Coupon.code).where(Coupon.campaign_id == big.id).limit(1))
        big_id, big_issued, merchant_id, city = big.id, big.issued, merchant.id, merchant.city
        for email, role, of in (("bench-operator@example.cn", people.OPERATOR, None),
                                ("bench-manager@example.cn", people.MANAGER, merchant_id)):
            if db.session.scalar(select(AdminUser.id).where(AdminUser.email == email)) is None:
                people.create_person(db.session, people.SYSTEM, email=email, password=PASSWORD,
                                     role=role, merchant_id=of)
        db.session.commit()
        counts = {name: db.session.scalar(select(db.func.count()).select_from(model))
                  for name, model in (("campaigns", Campaign), ("coupons", Coupon))}
        db.session.remove()
    log(f"  {counts['campaigns']:,} campaigns, {counts['coupons']:,} coupons; the large campaign "
        f"{big_id} has {big_issued:,} coupons")

    statements = {"n": 0}

    def count(*_args, **_kwargs):
        statements["n"] += 1

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", count)

    operator = signed_in(app, "bench-operator@example.cn")
    manager = signed_in(app, "bench-manager@example.cn")
    second_page = re.search(r'href="([^"]+)" rel="next"', operator.get("/admin/campaigns").get_data(as_text=True))
    has_lookup = "admin.coupon_lookup" in app.view_functions

    def cold():
        app.extensions.pop(FIGURES, None)  # as when the kept figures are a minute old

    pages = [
        ("ceiling: a trivial signed-in page (/admin/sessions)", "operator", operator, "/admin/sessions", None, 200),
        ("campaign list, first page", "operator", operator, "/admin/campaigns", None, 200),
        ("campaign list, second page", "operator", operator,
         second_page.group(1).replace("&amp;", "&") if second_page else "/admin/campaigns", None, 200),
        ("campaign list, filtered (status, city)", "operator", operator,
         f"/admin/campaigns?status=failed&city={city}", None, 200),
        ("campaign list, first page", "manager", manager, "/admin/campaigns", None, 200),
        ("campaign page of the large campaign", "operator", operator, f"/admin/campaigns/{big_id}", None, 200),
        ("  the same, figures counted afresh", "operator", operator, f"/admin/campaigns/{big_id}", cold, 200),
        ("campaign page of the large campaign", "manager", manager, f"/admin/campaigns/{big_id}", None, 200),
        ("its coupons, first page", "manager", manager, f"/admin/campaigns/{big_id}/coupons", None, 200),
        ("dashboard, every merchant", "operator", operator, "/admin/", None, 200),
        ("  the same, figures counted afresh", "operator", operator, "/admin/", cold, 200),
        ("dashboard, one merchant", "operator", operator, f"/admin/?merchant_id={merchant_id}", None, 200),
        ("dashboard", "manager", manager, "/admin/", None, 200),
        ("  the same, figures counted afresh", "manager", manager, "/admin/", cold, 200),
    ]
    if has_lookup:
        pages += [("coupon look-up (/admin/coupons?code=)", "manager", manager,
                   f"/admin/coupons?code={code}", None, 302),
                  ("  the coupon's page it leads to", "manager", manager, f"/admin/coupons/{code}", None, 200)]
    else:
        log("  (no coupon look-up page in this tree: not measured)")

    log(f"\n== {args.requests} requests per page after {args.warmup} untimed, one at a time")
    results: list[Measured] = []
    for name, who, client, path, before, status in pages:
        for _ in range(args.warmup):
            if before:
                before()
            check(client.get(path), status, path)
        times, cpu = [], []
        statements["n"] = 0
        for _ in range(args.requests):
            if before:
                before()
            started, started_cpu = time.perf_counter(), time.thread_time()
            answer = client.get(path)
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.thread_time() - started_cpu) * 1000)
            check(answer, status, path)
        results.append(Measured(name, who, times, cpu, statements["n"] / args.requests))
        log(f"  {name} [{who}]: p50 {results[-1].p50:.1f} ms, p95 {results[-1].p95:.1f} ms, "
            f"app CPU p50 {statistics.median(cpu):.1f} ms")

    ceiling = results[0]
    log(f"\n== summary: server time per page, p50 and p95; then p95 / the {BUDGET_MS:.0f} ms budget, "
        f"p95 / the ceiling's p95 ({ceiling.p95:.1f} ms), the app's CPU time (p50) and SQL "
        "statements per request")
    rows = [(f"{m.name} [{m.who}]", f"{m.p50:6.1f} {m.p95:6.1f} ms", f"{m.p95 / BUDGET_MS:5.2f}  "
             f"{m.p95 / ceiling.p95:5.1f}x  {statistics.median(m.cpu_ms):5.1f} ms CPU  {m.queries:4.1f} q")
            for m in results]
    table("server time", rows)
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1):
        log(f"NOTE: the load average is {load:.1f} on {os.cpu_count()} CPUs: other processes slowed "
            "every page; compare the ratios and the CPU times, or run again on a quiet machine")
    over = [m for m in results if m.p95 > BUDGET_MS]
    log(f"\n{len(results) - len(over)} of {len(results)} pages within {BUDGET_MS:.0f} ms at p95"
        + (": over: " + "; ".join(f"{m.name.strip()} [{m.who}] {m.p95:.0f} ms" for m in over) if over else ""))
    explain(db_url, big_id, merchant_id)
    return 0


def check(answer, status: int, path: str) -> None:
    if answer.status_code != status:
        raise BenchError(f"GET {path} answered {answer.status_code}, not {status}:\n"
                         f"{answer.get_data(as_text=True)[:800]}")


def signed_in(app, email: str):
    client = app.test_client()
    form = client.get("/admin/sign-in").get_data(as_text=True)
    token = _TOKEN.search(form).group(1)
    answer = client.post("/admin/sign-in", data={"email": email, "password": PASSWORD, "csrf_token": token})
    if answer.status_code != 302:
        raise BenchError(f"signing in as {email} answered {answer.status_code}")
    return client


def explain(db_url: str, campaign_id: str, merchant_id: str) -> None:
    """How PostgreSQL reads the figures that are slowest to count."""
    queries = {
        "a campaign's redemptions by hour, store, reversed (campaign_stats)":
            ("SELECT store_id, reversed_at IS NULL, count(*), sum(uses) FROM redemptions "
             "WHERE campaign_id = %s GROUP BY 1, 2", (campaign_id,)),
        "a merchant's 31 days of redemptions (dashboard)":
            ("SELECT count(*) FROM redemptions WHERE merchant_id = %s AND "
             "redeemed_at >= now() - interval '31 days' AND reversed_at IS NULL", (merchant_id,)),
    }
    log("\n== plans")
    with psycopg.connect(db_url) as conn:
        for name, (sql, params) in queries.items():
            plan = [row[0] for row in conn.execute(f"EXPLAIN (ANALYZE, BUFFERS OFF) {sql}", params)]
            scan = next((line.strip() for line in plan if "Scan" in line), plan[0])
            took = next((line.strip() for line in plan if line.startswith("Execution Time")), "")
            log(f"  {name}: {scan[:110]}; {took}")


if __name__ == "__main__":
    sys.exit(run(bench, parse_args(None)))
