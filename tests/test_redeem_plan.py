"""The redeem finds its coupon by its code, whatever PostgreSQL's statistics say.

Right after a large issuance (a bulk job, a busy deal's orders), `coupons` holds many
rows of a campaign its statistics have not seen yet. The QR redeem names the campaign,
and PostgreSQL once planned it onto `ix_coupons_campaign (campaign_id, status)`, which
its stale statistics made look as cheap as the primary key: every redeem then read
every active coupon of the campaign (126,000 rows, 24 ms of PostgreSQL CPU, measured in
docs/benchmarks.md) until the next ANALYZE; on every redeem where psycopg does not
prepare (PgBouncer), on the first ones of each connection otherwise. The statement
compares the campaign in a form no index serves (`write.redeemable`), so the primary key
is the only index that can find the row."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from itertools import product

import pytest
from psycopg import ClientCursor, RawCursor
from sqlalchemy import text

from couponsvc.extensions import db
from couponsvc.ids import new_id
from couponsvc.models.idempotency import Claim
from couponsvc.redeem.write import Write, _params, _postgresql_statement
from couponsvc.timeutil import utcnow
from tests.factories import Shop

pytestmark = pytest.mark.postgresql

FRESH_COUPONS = 5000  # of a campaign the statistics have not seen


def test_the_redeem_uses_the_primary_key_when_the_statistics_are_stale(client, app):
    shop = Shop(client)
    shop.coupons(5)  # the campaign the statistics know
    fresh = client.campaign(shop.merchant["id"])
    with app.app_context():
        db.session.execute(text("ANALYZE coupons"))
        db.session.execute(text(
            "INSERT INTO coupons (code, campaign_id, merchant_id, order_id, status, uses_total,"
            " uses_left, valid_from, valid_until, seq, created_at) "
            "SELECT 'F' || lpad(g::text, 9, '0'), :campaign, merchant_id, order_id, 'active', 1, 1,"
            " valid_from, valid_until, 1, created_at "
            "FROM (SELECT * FROM coupons WHERE campaign_id = :known LIMIT 1) AS known,"
            " generate_series(1, :n) AS g"),
            {"campaign": fresh["id"], "known": shop.campaign["id"], "n": FRESH_COUPONS})
        db.session.commit()
        scanner_id = db.session.execute(text(
            "SELECT id FROM api_keys WHERE merchant_id = :m AND role = 'scanner' LIMIT 1"),
            {"m": shop.merchant["id"]}).scalar_one()
        codes = [f"F{n:09d}" for n in (1, FRESH_COUPONS // 2, FRESH_COUPONS)]
        for mode, (any_merchant, idempotent), code in product(
                ("force_custom_plan", "force_generic_plan"), product((False, True), repeat=2), codes):
            w = Write(code=code, uses=1, now=utcnow(), store_id=shop.store["id"],
                      merchant_id=None if any_merchant else shop.merchant["id"],
                      campaign_id=fresh["id"], redemption_id=new_id("red"), event_id=new_id("evt"),
                      api_key_id=scanner_id, device_id=None,
                      claim=Claim(scanner_id, str(uuid.uuid4()), "0" * 64) if idempotent else None,
                      budgets=("addr:127.0.0.1",))
            statement = _postgresql_statement(any_merchant, True, idempotent)
            values = _params(w)
            used = coupon_indexes(explain(statement.sql, [values[name] for name in statement.names], mode))
            assert used == ["coupons_pkey"], (mode, any_merchant, idempotent, code, used)
        db.session.rollback()


def explain(sql: str, params: list, plan_cache_mode: str) -> dict:
    raw = db.session.connection().connection.driver_connection
    with RawCursor(raw) as cursor:
        cursor.execute(f"SET LOCAL plan_cache_mode = {plan_cache_mode}")
        cursor.execute("PREPARE redeem_plan AS " + sql)
    try:
        with ClientCursor(raw) as cursor:  # the values as literals, for EXECUTE's arguments
            placeholders = ", ".join(["%s"] * len(params))
            return cursor.execute(f"EXPLAIN (FORMAT JSON) EXECUTE redeem_plan({placeholders})",
                                  params).fetchone()[0][0]["Plan"]
    finally:
        raw.execute("DEALLOCATE redeem_plan")


def coupon_indexes(plan: dict) -> list[str]:
    """The indexes of `coupons` the plan reads (a sequential scan counts as 'seq scan')."""
    return [node.get("Index Name", node["Node Type"].lower()) for node in nodes(plan)
            if node.get("Relation Name") == "coupons" and "Scan" in node["Node Type"]]


def nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)
