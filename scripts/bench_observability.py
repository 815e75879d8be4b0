"""What seeing what the service does costs a redeem, measured in one process: counting
(prometheus_client writing its multiprocess files, as under gunicorn) and the JSON access
line, against neither. A benchmark, not a test: it prints.

    .venv/bin/python scripts/bench_observability.py [--redeems 3000]

Every redeem goes through the whole app (Flask's test client, PostgreSQL's one statement,
Redis for the look-up budget); the variant changes from one redeem to the next (bare,
metrics, metrics and access log, in turn), and each redeem's CPU time in this thread is
measured (`time.thread_time`: another process's load does not count in it, as it does in
wall time and in wrk's rates, though it still slows everything a little). A load that
comes and goes thus weighs on the three variants alike. What is printed: each variant's
mean (with its standard error) and median, and its mean's difference from bare. The
figures of record: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import BenchError, log, prepare_database, run, run_cli, run_keys, table
from psycopg.conninfo import conninfo_to_dict

DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/couponsvc_bench_observability"
DEFAULT_REDIS = "redis://127.0.0.1:6379/11"
VARIANTS = ("bare", "metrics", "metrics + access log")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redeems", type=int, default=3000, help="redeems of each variant")
    parser.add_argument("--warmup", type=int, default=600, help="redeems before the first block")
    parser.add_argument("--out", type=Path, default=None, help="directory for instance files and logs")
    return parser.parse_args(argv)


def bench(args: argparse.Namespace, _procs) -> int:
    out = args.out or Path(tempfile.mkdtemp(prefix="couponsvc-bench-observability-"))
    out.mkdir(parents=True, exist_ok=True)
    db_url = os.environ.get("DATABASE_URL") or DEFAULT_DB
    dbname = conninfo_to_dict(db_url)["dbname"]
    prepare_database(db_url, recreate=not os.environ.get("DATABASE_URL"))
    env = {**run_keys(dbname), **os.environ, "DATABASE_URL": db_url,
           "REDIS_URL": os.environ.get("REDIS_URL") or DEFAULT_REDIS,
           "COUPONSVC_INSTANCE_PATH": str(out / "instance"),
           # as under couponsvc's gunicorn config: counts go to memory-mapped files
           "PROMETHEUS_MULTIPROC_DIR": str(out / "prometheus"), "COUPONSVC_LOG_FORMAT": "json"}
    (out / "prometheus").mkdir(exist_ok=True)
    run_cli(["db", "upgrade"], env)
    platform = run_cli(["create-key", "--role", "platform"], env).strip().splitlines()[-1]
    os.environ.update(env)

    from prometheus_client import values

    from couponsvc import create_app
    from couponsvc.metrics.switch import set_counting

    if "MultiProcess" not in values.ValueClass.__qualname__:
        raise BenchError("prometheus_client is not in multiprocess mode")
    app = create_app()
    http = app.test_client()
    scanner, store_id, codes = _fixture(http, platform, args.warmup + args.redeems * len(VARIANTS))
    log(f"{len(codes):,} coupons; {os.cpu_count()} CPUs; logs in {out / 'app.log'}")

    access = logging.getLogger("couponsvc.access")
    headers = {"Authorization": f"Bearer {scanner}"}
    per_redeem: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    stderr = sys.stderr
    with open(out / "app.log", "w") as app_log:
        sys.stderr = app_log  # where the access lines go, as gunicorn's log file
        try:
            for code in codes[:args.warmup]:
                _redeem(http, headers, code, store_id)
            for n, code in enumerate(codes[args.warmup:]):
                variant = VARIANTS[n % len(VARIANTS)]
                set_counting(variant != "bare")
                access.disabled = variant != "metrics + access log"
                started = time.thread_time()
                _redeem(http, headers, code, store_id)
                per_redeem[variant].append((time.thread_time() - started) * 1e6)
        finally:
            sys.stderr = stderr
            access.disabled = False
            set_counting(True)
    bare = statistics.fmean(per_redeem["bare"])
    rows = []
    for variant in VARIANTS:
        found = per_redeem[variant]
        mean, error = statistics.fmean(found), statistics.stdev(found) / len(found) ** 0.5
        rows.append((f"{variant}: CPU per redeem, {len(found):,} redeems",
                     f"mean {mean:.0f} ± {error:.0f} µs ({mean - bare:+.0f} µs, "
                     f"{(mean / bare - 1) * 100:+.1f} %)", f"median {statistics.median(found):.0f} µs"))
    table(f"in process, Flask test client, PostgreSQL, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}", rows)
    return 0


def _redeem(http, headers: dict[str, str], code: str, store_id: str) -> None:
    answer = http.post("/api/v1/redemptions", json={"code": code, "store_id": store_id},
                       headers=headers)
    if answer.status_code != 201:
        raise BenchError(f"redeem {answer.status_code}: {answer.get_data(as_text=True)[:300]}")


def _fixture(http, platform: str, count: int) -> tuple[str, str, list[str]]:
    """A merchant, its store and scanner key, a live deal, and `count` coupons of it."""

    def call(path: str, body: dict, status: int = 201) -> dict:
        answer = http.post(f"/api/v1/{path}", json=body, headers={"Authorization": f"Bearer {platform}"})
        if answer.status_code != status:
            raise BenchError(f"POST {path}: {answer.status_code} {answer.get_data(as_text=True)[:300]}")
        return answer.get_json()

    now = datetime.now(UTC)
    merchant = call("merchants", {"name": "Bench 商户", "city": "上海", "timezone": "Asia/Shanghai"})
    store = call(f"merchants/{merchant['id']}/stores", {"name": "Bench store", "address": "南京西路 1 号"})
    scanner = call(f"merchants/{merchant['id']}/api-keys", {"role": "scanner", "label": "bench"})["key"]
    campaign = call("campaigns", {
        "merchant_id": merchant["id"], "title": "Bench deal", "price": 3990, "list_price": 8800,
        "sales_start": (now - timedelta(hours=1)).isoformat(), "min_group_size": 1,
        "sales_end": (now + timedelta(days=1)).isoformat(), "max_coupons": 10_000_000,
        "valid_from": (now - timedelta(hours=1)).isoformat(),
        "valid_until": (now + timedelta(days=30)).isoformat()})
    call(f"campaigns/{campaign['id']}/publish", {}, 200)
    codes: list[str] = []
    while len(codes) < count:
        order = call(f"campaigns/{campaign['id']}/orders",
                     {"customer_ref": f"buyer {len(codes)}", "quantity": 100})
        codes.extend(coupon["code"] for coupon in order["coupons"])
    return scanner, store["id"], codes


if __name__ == "__main__":
    sys.exit(run(bench, parse_args(None)))
