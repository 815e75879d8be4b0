"""Speed of what promotes a deal, through the real stack: the share poster (drawn cold, then
from its cache, then 304 by ETag) and the public deal page, against the thinnest Flask app
that reads the same rows and answers the same bytes, and, for the drawing, Pillow alone.
A benchmark, not a test: it prints.

    .venv/bin/python scripts/bench_promotion.py
    .venv/bin/python scripts/bench_promotion.py --duration 5 --posters 10

What it measures, how, and the figures of record: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from bench.common import (
    BenchError,
    Client,
    Meter,
    Processes,
    Server,
    add_common_args,
    log,
    make_fixture,
    open_run,
    pct,
    postgres_pids,
    problems,
    run,
    setup_database,
    start_gunicorn,
    table,
)
from psycopg.conninfo import conninfo_to_dict

from couponsvc.promotion import poster
from couponsvc.promotion.fonts import find_fonts
from couponsvc.promotion.poster import PosterText

WRK_THREADS, WRK_CONNECTIONS = 2, 16


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, float, dict]:
    """One GET on a fresh connection: (status, body, seconds, headers)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    started = time.perf_counter()
    conn.request("GET", path, headers=headers or {})
    answer = conn.getresponse()
    body = answer.read()
    seconds = time.perf_counter() - started
    conn.close()
    return answer.status, body, seconds, dict(answer.getheaders())


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def ms(values: list[float]) -> str:
    return f"p50 {pct(values, .5) * 1000:.1f} ms, max {max(values) * 1000:.1f} ms"


@dataclass
class WrkRun:
    label: str
    rate: float
    p50: float
    p99: float
    non_2xx: int
    meter: Meter


def wrk(server: Server, path: str, seconds: int, label: str, db_url: str, out: Path,
        headers: dict[str, str] | None = None) -> WrkRun:
    """wrk -t2 -c16 --latency on one URL; requests/s, p50/p99 (ms) and CPU, printed."""
    exe = shutil.which("wrk")
    if exe is None:
        raise BenchError("wrk is not installed (apt-get install -y wrk)")
    argv = [exe, f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{seconds}s", "--latency",
            "--timeout", "10s"]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    dbname = conninfo_to_dict(db_url).get("dbname")
    with Meter({"app": server.pids,
                "PostgreSQL": lambda: [(p, False) for p in postgres_pids(dbname)]}, own="wrk") as meter:
        done = subprocess.run([*argv, f"{server.url}{path}"], capture_output=True, text=True,
                              timeout=seconds + 120, check=False)
    (out / f"wrk-{label}.txt").write_text(done.stdout + done.stderr)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    if done.returncode != 0 or not rate:
        raise BenchError(f"wrk ({label}) exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", done.stdout)
    result = WrkRun(label, float(rate.group(1)), _latency(done.stdout, "50%"),
                    _latency(done.stdout, "99%"), int(non_2xx.group(1)) if non_2xx else 0, meter)
    log(f"  {label}: {result.rate:,.0f} answers/s, p50 {result.p50:.1f} ms, p99 {result.p99:.1f} ms"
        + (f", NON-2xx/3xx {result.non_2xx}" if result.non_2xx else ""))
    log(f"    {meter.describe()}")
    return result


def _latency(text: str, percent: str) -> float:
    match = re.search(rf"^\s+{re.escape(percent)}\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if not match:
        return float("nan")
    return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]


def campaigns(client: Client, merchant_id: str, count: int, tag: str) -> list[dict]:
    """`count` published deals of a realistic size (a long title, a list price, tipping at 10)."""
    now = datetime.now(UTC)
    made = []
    for number in range(count):
        campaign = client.call("POST", "/api/v1/campaigns", {
            "merchant_id": merchant_id, "price": 3990, "list_price": 8800, "min_group_size": 10,
            "title": f"双人牛肉面套餐 {tag}-{number}：招牌牛肉面两碗＋卤蛋两个＋凉菜一份，周末节假日通用",
            "description": "招牌牛肉面两碗\n卤蛋两个\n凉菜一份", "currency": "CNY",
            "sales_start": (now - timedelta(hours=1)).isoformat(),
            "sales_end": (now + timedelta(days=3)).isoformat(),
            "valid_from": (now - timedelta(hours=1)).isoformat(),
            "valid_until": (now + timedelta(days=30)).isoformat()})
        made.append(client.call("POST", f"/api/v1/campaigns/{campaign['id']}/publish", {}))
    return made


def pillow_alone(samples: int) -> list[float]:
    """The drawing alone, in this process: the poster of a deal like the benchmark's."""
    fonts = find_fonts(os.environ.get("COUPONSVC_POSTER_FONT") or None)
    if fonts is None:
        raise BenchError("no CJK font found (apt-get install fonts-noto-cjk)")
    text = PosterText(
        merchant="Bench 商户", title="双人牛肉面套餐：招牌牛肉面两碗＋卤蛋两个＋凉菜一份，周末节假日通用",
        price="¥39.90", list_price="¥88", progress="还差 10 人成团", progress_fraction=0.0,
        badge=None, stores_heading="适用门店", stores=("Bench store · 上海 南京西路 1 号",),
        sales_end="截止 2026-05-08 22:00", caption="扫码查看团购",
        link="http://couponsvc-bench.localhost/d/cmp_01JD8Y3K2Q9V7M4T6X0A5B8C1D")
    poster.render(text, fonts)  # fonts loaded, glyph checks cached: as in a warm process
    times = []
    for number in range(samples):
        started = time.perf_counter()
        poster.render(PosterText(**{**text.__dict__, "progress": f"还差 {number + 1} 人成团"}), fonts)
        times.append(time.perf_counter() - started)
    return times


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds of each wrk run")
    parser.add_argument("--posters", type=int, default=20, help="deals whose posters are drawn cold")
    add_common_args(parser, workers=3)
    return parser.parse_args(argv)


def bench(args: argparse.Namespace, procs: Processes) -> int:
    load = f"wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{args.duration}s; {args.posters} cold posters"
    r = open_run(args, "promotion", load,
                 default_db_url="postgresql://postgres@127.0.0.1:5432/couponsvc_bench_promotion",
                 default_redis_url="redis://127.0.0.1:6379/12")
    log("\n== setup")
    platform_key = setup_database(r.env)
    ours = start_gunicorn(procs, args, r.env, r.out, "ours")
    client = Client(ours.port, platform_key)
    fixture = make_fixture(client, r.tag, max_coupons=1000)
    deals = campaigns(client, fixture.merchant_id, args.posters, r.tag)
    log(f"  merchant {fixture.merchant_id}, {len(deals) + 1} published deals")

    log("\n== the poster, one request at a time (GET poster_url: its token, no key)")
    first = get(ours.port, path_of(deals[0]["poster_url"]))
    if first[0] != 200:
        raise BenchError(f"the poster answered {first[0]}: {first[1][:300]!r}")
    log(f"  first poster of a worker (finds the font, loads its faces): {first[2] * 1000:.0f} ms")
    cold, cached, not_modified = [], [], []
    for deal in deals[1:]:
        status, body, seconds, headers = get(ours.port, path_of(deal["poster_url"]))
        if status != 200 or not body.startswith(b"\x89PNG"):
            raise BenchError(f"poster of {deal['id']}: {status}")
        cold.append(seconds)
    for deal in deals[1:]:
        cached.append(get(ours.port, path_of(deal["poster_url"]))[2])
        etag = get(ours.port, path_of(deal["poster_url"]))[3]["ETag"]
        status, _, seconds, _ = get(ours.port, path_of(deal["poster_url"]), {"If-None-Match": etag})
        if status != 304:
            raise BenchError(f"If-None-Match answered {status}, not 304")
        not_modified.append(seconds)
    drawing = pillow_alone(len(cold))
    log(f"  drawn cold (the deal read, the words said, drawn, PNG, cached): {ms(cold)} "
        f"({len(first[1]) // 1024} KB)")
    log(f"  the drawing alone (Pillow in this process): {ms(drawing)}")
    log(f"  again, from the cache: {ms(cached)}; If-None-Match: 304 in {ms(not_modified)}")
    draw_ratio = pct(drawing, .5) / pct(cold, .5)

    log(f"\n== throughput, wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{args.duration}s")
    poster_path = path_of(deals[1]["poster_url"])
    page_path = f"/d/{deals[1]['id']}"
    status, page, _, _ = get(ours.port, page_path, {"Accept-Language": "zh-CN"})
    if status != 200:
        raise BenchError(f"the deal page answered {status}")
    poster_bytes = get(ours.port, poster_path)[1]
    (r.out / "poster.png").write_bytes(poster_bytes)
    (r.out / "page.html").write_bytes(page)
    ours_poster = wrk(ours, poster_path, args.duration, "ours-poster-cached", r.db_url, r.out)
    ours_page = wrk(ours, page_path, args.duration, "ours-deal-page", r.db_url, r.out,
                    {"Accept-Language": "zh-CN"})
    procs.stop(ours.proc)
    thin_env = {**r.env, "THIN_POOL_SIZE": str(args.threads), "THIN_PAGE": str(r.out / "page.html"),
                "THIN_POSTER": str(r.out / "poster.png")}
    thin = start_gunicorn(procs, args, thin_env, r.out, "thin", "thin_deal:create_app()")
    thin_poster = wrk(thin, f"/poster/{deals[1]['id']}", args.duration, "ceiling-poster", r.db_url,
                      r.out)
    thin_page = wrk(thin, f"/page/{deals[1]['id']}", args.duration, "ceiling-page", r.db_url, r.out)
    procs.stop(thin.proc)

    poster_ratio = ours_poster.rate / thin_poster.rate if thin_poster.rate else float("nan")
    page_ratio = ours_page.rate / thin_page.rate if thin_page.rate else float("nan")
    rows = [
        ("poster drawn cold, p50 / max", f"{pct(cold, .5) * 1000:.0f} / {max(cold) * 1000:.0f} ms",
         "< 500 ms"),
        ("the drawing alone (Pillow), p50", f"{pct(drawing, .5) * 1000:.0f} ms", ""),
        ("ratio drawing alone / cold poster", f"{draw_ratio:.2f}", ">= 0.7"),
        ("poster from the cache, p50", f"{pct(cached, .5) * 1000:.1f} ms", ""),
        ("poster 304 (If-None-Match), p50", f"{pct(not_modified, .5) * 1000:.1f} ms", ""),
        ("cached poster: answers/s ours / ceiling",
         f"{ours_poster.rate:,.0f} / {thin_poster.rate:,.0f}", ""),
        ("ratio cached poster ours/ceiling", f"{poster_ratio:.2f}", ">= 0.5"),
        ("deal page: answers/s ours / ceiling", f"{ours_page.rate:,.0f} / {thin_page.rate:,.0f}", ""),
        ("deal page p50 / p99, ours", f"{ours_page.p50:.1f} / {ours_page.p99:.1f} ms", "p99 < 100 ms"),
        ("ratio deal page ours/ceiling", f"{page_ratio:.2f}", ">= 0.5"),
        ("CPUs used by other processes (wrk runs)",
         " / ".join(f"{run.meter.others_cpus:.2f}" for run in (ours_poster, ours_page, thin_poster,
                                                               thin_page)), "~0"),
    ]
    table(f"{os.cpu_count()} CPUs; gunicorn -k gthread -w {args.workers} --threads {args.threads}; "
          f"{load}", rows)
    log(f"  sizes: the poster {len(poster_bytes) // 1024} KB, the deal page {len(page) // 1024} KB")
    problems(r.out)
    log(f"\nlogs and wrk output: {r.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run(bench, parse_args(None)))
