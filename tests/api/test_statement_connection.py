"""The PostgreSQL redeem runs its one statement on a pooled connection lent in autocommit
(`unit_of_work.statement_connection`); the pool must get it back as it lent it, or the
next request's transaction on it would commit statement by statement."""

from __future__ import annotations

import pytest

from couponsvc.extensions import db
from tests.factories import Shop, problem

pytestmark = pytest.mark.postgresql


def _pooled_autocommit(app) -> list[bool]:
    """The autocommit flag of every connection the pool holds."""
    with app.app_context():
        pool = db.engine.pool
        lent = [db.engine.raw_connection() for _ in range(pool.checkedin())]
        try:
            return [connection.driver_connection.autocommit for connection in lent]
        finally:
            for connection in lent:
                connection.close()


def _redeem(client, shop: Shop, code: str, key: str | None = None):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post("redemptions", {"code": code}, key=shop.scanner, headers=headers)


def test_the_connection_goes_back_to_the_pool_out_of_autocommit(app, client):
    shop = Shop(client)
    first, second = shop.coupons(2)
    client.ok(_redeem(client, shop, first["code"]), 201)
    client.ok(_redeem(client, shop, second["code"], "till-1"), 201)
    problem(_redeem(client, shop, first["code"]), 409, "coupon_already_redeemed")
    problem(_redeem(client, shop, "U447K3JJ456K", "till-2"), 404, "coupon_not_found")
    flags = _pooled_autocommit(app)
    assert flags and not any(flags)
