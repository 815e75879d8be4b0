"""The redeem and GET /events on a database holding a year of a city's deals (10,000,000
rows in `redemptions` and in `events`, over 12 monthly partitions) against the same on an
empty database, measured in the same run, in the same process. A benchmark, not a test:
it prints.

    .venv/bin/python scripts/bench_partitions.py                 # 10,000,000 rows
    .venv/bin/python scripts/bench_partitions.py --rows 1000000 --rounds 3
    .venv/bin/python scripts/bench_partitions.py --plain          # the same rows, no partitions

What it measures, how, and the figures of record: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

import psycopg
from bench.common import BenchError, log, prepare_database, run, run_keys, settle, table
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from couponsvc import create_app
from couponsvc.api.pagination import number_token
from couponsvc.extensions import db
from couponsvc.ids import new_id
from couponsvc.outbox.positions import assign_positions
from couponsvc.partitions import Report, add_months, create_partition, month_of
from couponsvc.principal import create_key
from couponsvc.redeem.write import Write, write

SERVER = "postgresql://postgres@127.0.0.1:5432/"
ORDER = 100  # coupons per order
REDIS_URL = "redis://127.0.0.1:6379/10"  # of its own (scripts/test uses 13; bench_* 11, 12, 14, 15)
MERCHANTS = 97  # the generated rows' other merchants; one row in 100 is the measured one's


class Database:
    """One scratch database and couponsvc in this process on it, with a merchant, a store, a
    scanner key, a campaign and its coupons, made through the API (the Flask test client)."""

    def __init__(self, name: str, coupons: int) -> None:
        self.name, self.url = name, SERVER + name
        prepare_database(self.url, recreate=True)
        keys = run_keys(name)
        self.app = create_app({
            "SQLALCHEMY_DATABASE_URI": self.url, "SECRET_KEY": keys["SECRET_KEY"],
            "QR_SIGNING_KEYS": [keys["COUPONSVC_QR_SIGNING_KEYS"]],
            "DATA_KEYS": [keys["COUPONSVC_DATA_KEYS"]], "PUBLIC_URL": keys["COUPONSVC_PUBLIC_URL"],
            # with Redis, as a web node runs: its jobs go to RQ (none here), no ticker in this process
            "REDIS_URL": REDIS_URL, "RATELIMIT_STORAGE_URI": "memory://", "ACCESS_LOG": False,
            "METRICS": False, "LOG_LEVEL": "WARNING"})
        from flask_migrate import upgrade

        with self.app.app_context():
            upgrade()
            self.platform = create_key(db.session, role="platform", label="bench").secret
            db.session.commit()
        self.http = self.app.test_client()
        merchant = self.call("POST", "merchants", {"name": "Bench 商户", "city": "上海"})
        self.merchant_id = merchant["id"]
        self.store_id = self.call("POST", f"merchants/{self.merchant_id}/stores",
                                  {"name": "Bench store", "address": "南京西路 1 号"})["id"]
        scanner = self.call("POST", f"merchants/{self.merchant_id}/api-keys",
                            {"role": "scanner", "label": "bench scanner", "store_id": self.store_id})
        manager = self.call("POST", f"merchants/{self.merchant_id}/api-keys",
                            {"role": "manager", "label": "bench manager"})
        self.scanner, self.scanner_id, self.manager = scanner["key"], scanner["id"], manager["key"]
        now = datetime.now(UTC)
        campaign = self.call("POST", "campaigns", {
            "merchant_id": self.merchant_id, "title": "Bench deal", "price": 3990,
            "sales_start": (now - timedelta(hours=1)).isoformat(),
            "sales_end": (now + timedelta(days=1)).isoformat(), "min_group_size": 1,
            "valid_from": (now - timedelta(hours=1)).isoformat(),
            "valid_until": (now + timedelta(days=30)).isoformat()})
        self.call("POST", f"campaigns/{campaign['id']}/publish")
        self.codes = []
        for n in range(-(-(coupons + 1) // ORDER)):
            order = self.call("POST", f"campaigns/{campaign['id']}/orders", {
                "customer_ref": f"c-{n}", "quantity": ORDER, "payment_ref": f"p-{n}"})
            self.codes += [c["code"] for c in order["coupons"]]
        self.call("POST", "redemptions", {"code": self.codes.pop()}, key=self.scanner)  # a model event
        self.number()

    def call(self, method: str, path: str, body=None, key: str | None = None, expect=(200, 201)):
        answer = self.http.open(f"/api/v1/{path}", method=method, json=body,
                                headers={"Authorization": f"Bearer {key or self.platform}"})
        if answer.status_code not in expect:
            raise BenchError(f"{self.name}: {method} {path} -> {answer.status_code}: {answer.get_data()[:300]}")
        return answer.get_json()

    def number(self) -> None:
        with self.app.app_context():
            assign_positions(db.session)
            db.session.commit()

    def positions(self, type_: str) -> tuple[int, int]:
        """The first position of an event of `type_`, and the last position."""
        with psycopg.connect(self.url) as conn:
            return conn.execute(
                "SELECT (SELECT position FROM events WHERE type = %s AND position IS NOT NULL "
                "ORDER BY position LIMIT 1), (SELECT max(position) FROM events)", (type_,)).fetchone()

    def drop(self) -> None:
        with psycopg.connect(make_conninfo(**{**conninfo_to_dict(self.url), "dbname": "postgres"}),
                             autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name)))


def chunks(rows: int, size: int = 250_000) -> list[tuple[int, int]]:
    """1..rows in ranges of `size`: each INSERT commits on its own (autocommit), so that no
    long writing transaction holds back the numbering of events in the whole cluster
    (`outbox/positions.py`: other databases' relays wait for the oldest running one)."""
    return [(low, min(rows, low + size - 1)) for low in range(1, rows + 1, size)]


def fill(database: Database, rows: int, plain: bool) -> None:
    """`rows` events and `rows` redemptions over the 12 months before this one, in SQL; into
    plain tables (revision 0014) when `plain`, for comparison."""
    now = datetime.now(UTC)
    with database.app.app_context():
        if plain:
            from flask_migrate import downgrade

            downgrade(revision="0014")
        else:
            report = Report()
            for n in range(1, 13):
                for table_name in ("redemptions", "redemption_attempts", "events", "deliveries"):
                    create_partition(db.session, table_name, add_months(month_of(now), -n), report)
            db.session.commit()
    year_ago = datetime.combine(add_months(month_of(now), -12), datetime.min.time(), UTC)
    span = (datetime.combine(month_of(now), datetime.min.time(), UTC) - year_ago).total_seconds()
    started = time.perf_counter()
    with psycopg.connect(database.url, autocommit=True) as conn:
        base = conn.execute("SELECT coalesce(max(position), 0) FROM events").fetchone()[0]
        # each one a copy of the fixture's coupon.redeemed (its payload, of a real size), so
        # that a page of 100 weighs the same on both databases
        conn.cursor().executemany(
            "INSERT INTO events (id, type, merchant_id, coupon_code, coupon_seq, data, created_at, position) "
            "SELECT 'evt_gen' || g, model.type, "
            "CASE WHEN mod(g, 100) = 0 THEN %(merchant)s ELSE 'mer_gen' || mod(g, %(merchants)s) END, "
            "model.coupon_code, 1, model.data, %(start)s + make_interval(secs => g * %(step)s), %(base)s + g "
            "FROM generate_series(%(low)s::bigint, %(high)s::bigint) g, "
            "(SELECT type, coupon_code, data FROM events WHERE type = 'coupon.redeemed' LIMIT 1) model",
            [{"merchant": database.merchant_id, "merchants": MERCHANTS, "start": year_ago,
              "step": span / rows, "base": base, "low": low, "high": high} for low, high in chunks(rows)])
        conn.execute("SELECT setval('events_position_seq', %s)", (base + rows,))
        log(f"  {rows:,} events in {time.perf_counter() - started:.0f} s")
        started = time.perf_counter()
        codes = database.codes[: min(len(database.codes), 1000)]
        conn.cursor().executemany(
            "INSERT INTO redemptions (id, coupon_code, campaign_id, merchant_id, store_id, api_key_id, uses, "
            "redeemed_at, scanned_at) "
            "SELECT 'red_gen' || g, (%(codes)s::text[])[1 + mod(g, %(ncodes)s)], 'cmp_gen', "
            "CASE WHEN mod(g, 100) = 0 THEN %(merchant)s ELSE 'mer_gen' || mod(g, %(merchants)s) END, "
            "'sto_gen', 'key_gen', 1, t, t FROM generate_series(%(low)s::bigint, %(high)s::bigint) g, "
            "LATERAL (SELECT %(start)s + make_interval(secs => g * %(step)s) AS t) moment",
            [{"codes": codes, "ncodes": len(codes), "merchant": database.merchant_id,
              "merchants": MERCHANTS, "start": year_ago, "step": span / rows, "low": low, "high": high}
             for low, high in chunks(rows)])
        log(f"  {rows:,} redemptions in {time.perf_counter() - started:.0f} s")
    log(f"  {settle(database.url, ('events', 'redemptions'))}")  # nothing of the filling measured


def timed(fn, n: int) -> list[float]:
    out = []
    for i in range(n):
        started = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - started)
    return out


class Measures:
    """The operations measured on one database, each round taking fresh coupons."""

    def __init__(self, database: Database, per_round: int, rounds: int) -> None:
        self.d, self.per_round = database, per_round
        self.statement_codes = database.codes[:per_round * rounds]
        self.http_codes = database.codes[per_round * rounds:per_round * rounds * 2]
        if len(self.http_codes) < per_round * rounds:
            raise BenchError("not enough coupons")
        self.raw = psycopg.connect(database.url, autocommit=True)
        self.rounds_paged = 0
        self.sizes: dict[tuple, list[int]] = {}  # events per page, by (key, tail)

    def statement(self, round_: int) -> list[float]:
        """The redeem's one statement (`redeem.write`) on an autocommit connection."""
        codes = self.statement_codes[round_ * self.per_round:(round_ + 1) * self.per_round]
        with self.d.app.app_context():
            def one(i: int) -> None:
                row = write(db.session, Write(
                    code=codes[i], uses=1, now=datetime.now(UTC), store_id=self.d.store_id,
                    merchant_id=self.d.merchant_id, campaign_id=None, redemption_id=new_id("red"),
                    event_id=new_id("evt"), api_key_id=self.d.scanner_id, device_id=None), self.raw)
                if row is None:
                    raise BenchError(f"{self.d.name}: {codes[i]} not redeemed")
            return timed(one, len(codes))

    def redeem(self, round_: int) -> list[float]:
        """POST /redemptions through the app (the Flask test client, no HTTP server)."""
        codes = self.http_codes[round_ * self.per_round:(round_ + 1) * self.per_round]
        return timed(lambda i: self.d.call("POST", "redemptions", {"code": codes[i]}, key=self.d.scanner),
                     len(codes))

    def pages(self, key: str | None, pages: int, tail: bool) -> list[float]:
        """GET /events?after=…&limit=100: from random positions among the coupon.redeemed
        events (what a city's year is made of; the fixture's coupon.issued, 100 coupons
        each, come before them), or near the end (a reader that keeps up)."""
        self.d.number()
        first, last = self.d.positions("coupon.redeemed")
        rng = random.Random(self.rounds_paged)
        self.rounds_paged += 1
        with self.d.app.app_context():  # the opaque cursors the API gives for these positions
            cursors = [number_token("events", last - 50 if tail else rng.randint(first, max(first, last - 150)))
                       for _ in range(pages)]
        def one(i: int) -> None:
            page = self.d.call("GET", f"events?after={cursors[i]}&limit=100", key=key)
            self.sizes.setdefault((key, tail), []).append(len(page["data"]))
        return timed(one, pages)


def bench(args: argparse.Namespace, _procs) -> int:
    need = args.per_round * args.rounds * 2
    log(f"couponsvc partitions benchmark: {args.rows:,} rows in redemptions and events"
        f"{' (plain tables, revision 0014)' if args.plain else ''} vs empty; "
        f"{args.rounds} rounds of {args.per_round} redeems and {args.pages} pages each")
    empty = Database("couponsvc_bench_parts_empty", need)
    full = Database("couponsvc_bench_parts_full", need)
    try:
        log("filling couponsvc_bench_parts_full (INSERT ... SELECT generate_series)")
        fill(full, args.rows, args.plain)
        measures = {"empty": Measures(empty, args.per_round, args.rounds),
                    "full": Measures(full, args.per_round, args.rounds)}
        names = {"statement": "redeem: the one statement", "redeem": "redeem: POST /redemptions",
                 "pages": "GET /events?after=random (platform)",
                 "merchant": "GET /events?after=random (merchant)",
                 "tail": "GET /events?after=end-50 (platform)"}
        for m in measures.values():  # warm: caches, prepared statements, the app's first requests
            m.pages(None, 20, tail=False)
            m.pages(m.d.manager, 20, tail=False)
            m.sizes.clear()
        times: dict[tuple[str, str], list[float]] = {(k, op): [] for k in measures for op in names}
        for round_ in range(args.rounds):  # alternating, so a drift of the machine weighs on both
            for which in (("empty", "full") if round_ % 2 == 0 else ("full", "empty")):
                m = measures[which]
                times[which, "statement"] += m.statement(round_)
                times[which, "redeem"] += m.redeem(round_)
                times[which, "pages"] += m.pages(None, args.pages, tail=False)
                times[which, "merchant"] += m.pages(m.d.manager, args.pages, tail=False)
                times[which, "tail"] += m.pages(None, args.pages, tail=True)
            log(f"  round {round_ + 1} done")
        rows = []
        for op, title in names.items():
            e, f = statistics.median(times["empty", op]), statistics.median(times["full", op])
            rows.append((title, f"{e * 1e3:.3f} / {f * 1e3:.3f} ms = {f / e:.3f}", "<= 1.10"))
        table(f"median per operation, empty / {args.rows:,} rows = ratio to the ceiling", rows)
        for which, m in measures.items():  # what the pages held: the same on both, or no comparison
            log(f"  events per page, {which}: " + ", ".join(
                f"{'tail' if tail else 'merchant' if key else 'platform'} {min(n)}-{max(n)}"
                for (key, tail), n in m.sizes.items()))
        for m in measures.values():
            m.raw.close()
    finally:
        for database in (empty, full):
            with database.app.app_context():
                db.engine.dispose()
            if not args.keep:
                database.drop()
    return 0


def main() -> int:
    logging.getLogger("alembic").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows in redemptions and in events")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--per-round", type=int, default=300, help="redeems of each kind per round")
    parser.add_argument("--pages", type=int, default=300, help="pages of each kind per round")
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases")
    parser.add_argument("--plain", action="store_true",
                        help="the full database without partitions (migrated back to 0014): "
                             "what the rows cost without partitioning, for comparison")
    return run(bench, parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
