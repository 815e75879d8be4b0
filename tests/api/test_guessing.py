"""Guessing must not pay: over budget, nothing is answered; QR images need a token or a key."""

from __future__ import annotations

import pytest

from couponsvc import codes
from tests.factories import Shop, problem


def _exhaust(shop: Shop, key: str, misses: int = 3) -> None:
    for _ in range(misses):
        problem(shop.redeem(codes.generate(), key=key), 404, "coupon_not_found")


def _refused(response) -> None:
    problem(response, 429, "rate_limited")
    retry_after = response.headers.get("Retry-After", "")
    assert retry_after.isdigit() and int(retry_after) >= 1


@pytest.mark.config(LOOKUP_LIMIT_PER_KEY="3/hour")  # an hour: a window boundary mid-test is unlikely
def test_a_key_over_budget_gets_no_answer_even_for_a_real_code(client):
    shop = Shop(client)
    real = shop.coupon()["code"]
    _exhaust(shop, shop.scanner)
    _refused(client.post("redemptions/validate", {"code": real}, key=shop.scanner))
    _refused(shop.redeem(real, key=shop.scanner))
    _refused(client.get(f"coupons/{real}", key=shop.scanner))
    # Nothing was redeemed by the refused attempt, and another key still works.
    coupon = client.ok(client.get(f"coupons/{real}", key=shop.manager))
    assert coupon["uses_left"] == coupon["uses_total"]
    client.ok(shop.redeem(real, key=shop.roaming_scanner, store_id=shop.store["id"]), 201)


@pytest.mark.config(LOOKUP_LIMIT_PER_ADDRESS="3/hour")
def test_an_address_over_budget_gets_no_answer_even_for_a_real_code(client):
    shop = Shop(client)
    real = shop.coupon()["code"]
    _exhaust(shop, shop.scanner)
    # Another key from the same address is refused too: the address is over budget.
    _refused(client.get(f"coupons/{real}", key=shop.manager))
    _refused(shop.redeem(real, key=shop.roaming_scanner, store_id=shop.store["id"]))
