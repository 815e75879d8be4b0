"""What seeing what the service does costs a redeem, measured in one process: counting
(prometheus_client writing its multiprocess files, as under gunicorn) and the JSON access
line, against neither. A benchmark, not a test: it prints.

    .venv/bin/python scripts/bench_observability.py [--blocks 12] [--block 200]

Every redeem goes through the whole app (Flask's test client, PostgreSQL's one statement,
Redis for the look-up budget), in rounds of one block of --block redeems per variant
(bare, metrics, metrics and access log; their order rotates from round to round), and a
block's CPU time of this process per redeem is what is compared (other processes' load
does not count in it as it does in wall time and in wrk's rates, though it still slows
every block). What is printed: each variant's median, and the median over the rounds of
its difference from the bare block of the same round (a load that comes and goes weighs
on the three blocks of a round alike). The figures of record: docs/benchmarks.md.
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
    parser.add_argument("--blocks", type=int, default=12, help="rounds: blocks of each variant")
    parser.add_argument("--block", type=int, default=200, help="redeems per block")
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
    scanner, store_id, codes = _fixture(http, platform, args.warmup + args.blocks * args.block * len(VARIANTS))
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
            position = args.warmup
            for round_ in range(args.blocks):
                for turn in range(len(VARIANTS)):
                    variant = VARIANTS[(round_ + turn) % len(VARIANTS)]
                    set_counting(variant != "bare")
                    access.disabled = variant != "metrics + access log"
                    batch = codes[position:position + args.block]
                    position += args.block
                    started = time.process_time()
                    for code in batch:
                        _redeem(http, headers, code, store_id)
                    per_redeem[variant].append((time.process_time() - started) / len(batch) * 1e6)
        finally:
            sys.stderr = stderr
            access.disabled = False
            set_counting(True)
    bare = statistics.median(per_redeem["bare"])
    rows = []
    for variant in VARIANTS:
        median = statistics.median(per_redeem[variant])
        paired = statistics.median([mine - theirs for mine, theirs in zip(
            per_redeem[variant], per_redeem["bare"], strict=True)])
        spread = f"{min(per_redeem[variant]):.0f} to {max(per_redeem[variant]):.0f}"
        rows.append((f"{variant}: CPU per redeem, median of {args.blocks} blocks of {args.block}",
                     f"{median:.0f} µs ({paired:+.0f} µs, {paired / bare * 100:+.1f} % against bare)",
                     f"blocks {spread} µs"))
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
