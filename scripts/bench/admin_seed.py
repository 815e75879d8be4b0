"""The admin benchmark's data, written set-based (INSERT … SELECT generate_series) into a
migrated PostgreSQL database: merchants with stores, campaigns in every status, orders
and their coupons, one large distribution campaign of bulk codes, redemptions over the
last 90 days, integrations with succeeded and dead deliveries. What it holds and why:
docs/benchmarks.md."""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
SCRAMBLE = 1_000_000_007  # coprime with 31: i -> i * SCRAMBLE mod 31**11 is one-to-one


@dataclass(frozen=True)
class Scale:
    merchants: int = 200
    campaigns: int = 10_000
    coupons: int = 1_000_000
    bulk: int = 200_000  # of the coupons, the large distribution campaign's
    redeemed_percent: int = 30
    deliveries: int = 100_000


def code_sql(n: str) -> str:
    """A valid coupon code (`couponsvc.codes`: 11 symbols and the check symbol) made from the
    integer SQL expression `n`, different for every n below 31**11 / SCRAMBLE's order."""
    x = f"(({n})::bigint * {SCRAMBLE} % {31 ** 11})"
    digits = [f"({x} / {31 ** p} % 31)" for p in range(11)]
    symbols = " || ".join(f"substr('{ALPHABET}', {d}::int + 1, 1)" for d in digits)
    weighted = " + ".join(f"{p + 1} * {d}" for p, d in enumerate(digits))
    check = f"substr('{ALPHABET}', ((((-13 * ({weighted})) % 31) + 31) % 31)::int + 1, 1)"
    return f"({symbols} || {check})"


def ulid_sql(prefix: str, at: str, n: str) -> str:
    """An id shaped like `couponsvc.ids.new_id` (26 Crockford symbols after the prefix),
    ordered by the time `at` and then by `n`; hex digits are Crockford symbols too."""
    return (f"'{prefix}_' || lpad(upper(to_hex((extract(epoch from {at}) * 1000)::bigint)), 12, '0')"
            f" || lpad(upper(to_hex(({n})::bigint)), 14, '0')")


def statements(scale: Scale) -> list[tuple[str, str]]:
    s = scale
    per_order = 2
    orders = (s.coupons - s.bulk) // per_order
    return [
        ("merchants", f"""
            INSERT INTO merchants (id, name, city, timezone, created_at)
            SELECT {ulid_sql('mer', "now() - interval '400 days'", 'i')}, '商户 ' || i,
                   (ARRAY['赣州', '上饶', '宜春', '吉安', '抚州'])[1 + i % 5],
                   CASE WHEN i % 50 = 0 THEN 'Asia/Tokyo' ELSE 'Asia/Shanghai' END,
                   now() - interval '400 days'
            FROM generate_series(1, {s.merchants}) i"""),
        ("stores", f"""
            INSERT INTO stores (id, merchant_id, name, city, address, created_at)
            SELECT {ulid_sql('sto', 'm.created_at', 'row_number() OVER ()')}, m.id,
                   m.name || ' ' || k || ' 号店', m.city, '文清路 ' || k || ' 号', m.created_at
            FROM merchants m, generate_series(1, 2) k"""),
        ("keys", """
            INSERT INTO api_keys (id, merchant_id, role, label, prefix, key_hash, created_at)
            SELECT 'key_' || substr(m.id, 5), m.id, 'scanner', 'bench scanner', 'cpn_scanner_bnch',
                   md5(m.id) || md5(m.name), m.created_at
            FROM merchants m"""),
        # campaign 1 is the large distribution campaign; the rest cycle through the statuses
        ("campaigns", f"""
            INSERT INTO campaigns (id, merchant_id, title, description, city, price, list_price,
                currency, sales_start, sales_end, min_group_size, max_coupons, per_customer_limit,
                uses_per_coupon, valid_from, valid_until, status, sold, issued, tipped_at, qr_kid,
                created_at, updated_at, published_at, closed_at)
            SELECT {ulid_sql('cmp', 'c.created', 'c.i')}, m.id,
                   CASE WHEN c.i = 1 THEN '全城派券：满 100 减 20' ELSE '双人牛肉面套餐 #' || c.i END,
                   '', m.city, 3990 + (c.i % 50) * 100, 6800 + (c.i % 50) * 100, 'CNY',
                   c.created, c.created + c.span, 10, NULL, NULL, 1, c.created,
                   c.created + c.span + interval '60 days', c.status, 0, 0, NULL, NULL,
                   c.created, c.created,
                   CASE WHEN c.status <> 'draft' THEN c.created END,
                   CASE WHEN c.status IN ('ended', 'failed', 'cancelled') THEN c.created + c.span END
            FROM (
                SELECT i,
                       CASE WHEN i = 1 THEN 'active'
                            ELSE (ARRAY['active','active','active','active','active','active',
                                        'paused','draft','draft','ended','ended','ended','ended',
                                        'ended','ended','ended','ended','failed','failed',
                                        'cancelled'])[1 + i % 20] END AS status,
                       now() - make_interval(days => ({s.campaigns} - i) * 365 / {s.campaigns})
                           - interval '1 hour' AS created,
                       CASE WHEN i = 1 OR i % 20 IN (0, 1, 2, 3, 4, 5, 6, 7, 8)
                            THEN make_interval(days => 30 + ({s.campaigns} - i) * 365 / {s.campaigns})
                            ELSE interval '20 days' END AS span
                FROM generate_series(1, {s.campaigns}) i
            ) c
            JOIN (SELECT id, city, row_number() OVER (ORDER BY id) - 1 AS k FROM merchants) m
              ON m.k = c.i % {s.merchants}"""),
        ("selling campaigns", """
            CREATE TEMP TABLE selling AS
            SELECT row_number() OVER (ORDER BY id) AS rn, id, merchant_id, created_at, sales_end
            FROM campaigns WHERE status <> 'draft' AND title NOT LIKE '全城派券%'"""),
        ("orders", f"""
            INSERT INTO orders (id, campaign_id, merchant_id, customer_ref, quantity, payment_ref,
                                status, created_at)
            SELECT {ulid_sql('ord', 'o.at', 'o.j')}, c.id, c.merchant_id, 'buyer-' || o.j,
                   {per_order}, 'pay-' || o.j, 'confirmed', o.at
            FROM (SELECT j, 1 + j % (SELECT count(*) FROM selling) AS rn,
                         now() - make_interval(secs => (j::bigint * 7919 % (90 * 86400))) AS at
                  FROM generate_series(1, {orders}) j) o
            JOIN selling c ON c.rn = o.rn"""),
        ("coupons sold", f"""
            INSERT INTO coupons (code, campaign_id, merchant_id, order_id, status, uses_total,
                                 uses_left, valid_from, valid_until, seq, created_at)
            SELECT {code_sql('row_number() OVER ()')}, o.campaign_id, o.merchant_id, o.id,
                   'active', 1, 1, c.valid_from, c.valid_until, 1, o.created_at
            FROM orders o JOIN campaigns c ON c.id = o.campaign_id, generate_series(1, {per_order}) k"""),
        ("coupons bulk", f"""
            INSERT INTO coupons (code, campaign_id, merchant_id, order_id, status, uses_total,
                                 uses_left, valid_from, valid_until, seq, created_at)
            SELECT {code_sql(f'{s.coupons} + i')}, c.id, c.merchant_id, NULL, 'active', 1, 1,
                   c.valid_from, c.valid_until, 1, c.created_at
            FROM campaigns c, generate_series(1, {s.bulk}) i WHERE c.title LIKE '全城派券%'"""),
        ("bulk job", f"""
            INSERT INTO jobs (id, kind, merchant_id, campaign_id, status, requested, done, claims,
                              created_at, started_at, finished_at)
            SELECT {ulid_sql('job', 'c.created_at', '1')}, 'bulk_issue', c.merchant_id, c.id,
                   'succeeded', {s.bulk}, {s.bulk}, 1, c.created_at, c.created_at, c.created_at
            FROM campaigns c WHERE c.title LIKE '全城派券%'"""),
        ("redemptions", f"""
            INSERT INTO redemptions (id, coupon_code, campaign_id, merchant_id, store_id, api_key_id,
                                     device_id, uses, redeemed_at, scanned_at, reversed_at)
            SELECT {ulid_sql('red', 'r.at', 'r.n')}, r.code, r.campaign_id, r.merchant_id,
                   s.id,
                   'key_' || substr(r.merchant_id, 5), 'till-' || (r.n % 7), 1, r.at, r.at,
                   CASE WHEN r.n % 20 = 0 THEN r.at + interval '5 minutes' END
            FROM (SELECT code, campaign_id, merchant_id, row_number() OVER () AS n,
                         now() - make_interval(secs => (hashtext(code)::bigint & 2147483647)
                                                      % (90 * 86400)) AS at
                  FROM coupons WHERE (hashtext(code) & 2147483647) % 100 < {s.redeemed_percent}) r
            JOIN (SELECT id, merchant_id, row_number() OVER (PARTITION BY merchant_id ORDER BY id) - 1 AS k
                  FROM stores) s ON s.merchant_id = r.merchant_id AND s.k = r.n % 2"""),
        ("coupons redeemed", """
            UPDATE coupons c SET status = 'redeemed', uses_left = 0, seq = 2
            FROM redemptions r WHERE r.coupon_code = c.code AND r.reversed_at IS NULL"""),
        ("campaign counts", """
            UPDATE campaigns c SET sold = t.sold, issued = t.issued,
                   tipped_at = CASE WHEN t.issued >= c.min_group_size THEN c.created_at + interval '1 day' END
            FROM (SELECT campaign_id, count(*) FILTER (WHERE order_id IS NOT NULL) AS sold,
                         count(*) AS issued FROM coupons GROUP BY campaign_id) t
            WHERE t.campaign_id = c.id"""),
        ("integrations", """
            INSERT INTO integrations (id, merchant_id, adapter, config, events, status, timeout,
                                      created_at, updated_at)
            SELECT 'int_' || substr(m.id, 5), m.id, 'webhook',
                   '{"url": "https://erp.example/hook"}'::json, '["coupon.redeemed"]'::json,
                   'active', 15, m.created_at, m.created_at
            FROM merchants m"""),
        ("events", f"""
            INSERT INTO events (id, type, merchant_id, coupon_code, coupon_seq, data, created_at, position)
            SELECT 'evt_' || lpad(upper(to_hex(i)), 26, '0'), 'coupon.redeemed', r.merchant_id,
                   r.coupon_code, 2, '{{}}'::json, r.redeemed_at, i
            FROM (SELECT row_number() OVER (ORDER BY redeemed_at) AS i, * FROM redemptions
                  ORDER BY redeemed_at LIMIT {s.deliveries}) r"""),
        ("deliveries", """
            INSERT INTO deliveries (event_seq, integration_id, merchant_id, status, attempts,
                                    next_attempt_at, created_at, updated_at, succeeded_at)
            SELECT e.seq, 'int_' || substr(e.merchant_id, 5), e.merchant_id,
                   CASE WHEN e.seq % 5000 = 0 THEN 'dead' WHEN e.seq % 3000 = 0 THEN 'failed'
                        ELSE 'succeeded' END,
                   CASE WHEN e.seq % 3000 = 0 OR e.seq % 5000 = 0 THEN 12 ELSE 1 END,
                   e.created_at, e.created_at, e.created_at,
                   CASE WHEN e.seq % 3000 <> 0 AND e.seq % 5000 <> 0 THEN e.created_at END
            FROM events e"""),
    ]


def seed(db_url: str, scale: Scale, log) -> None:
    with psycopg.connect(db_url) as conn:
        # no foreign-key triggers while seeding (the rows are consistent by construction):
        # a row-by-row check would take most of the time
        conn.execute("SET session_replication_role = replica")
        for name, statement in statements(scale):
            started = time.perf_counter()
            rows = conn.execute(statement).rowcount
            log(f"  {name}: {rows:,} rows in {time.perf_counter() - started:.1f} s")
        conn.commit()
    with psycopg.connect(db_url, autocommit=True) as conn:
        started = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        log(f"  VACUUM ANALYZE in {time.perf_counter() - started:.1f} s")


def seeded(db_url: str, scale: Scale) -> bool:
    with psycopg.connect(db_url) as conn:
        return conn.execute("SELECT count(*) FROM campaigns").fetchone()[0] >= scale.campaigns
