"""Reversing a redemption: who may (the store a scanner is pinned to) and until when (the window)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.factories import Shop, problem


@pytest.fixture
def shop(client):
    return Shop(client)



def _reverse(client, redemption: dict, key: str):
    return client.post(f"redemptions/{redemption['id']}/reverse", {"reason": "wrong table"}, key=key)


def _coupon(client, code: str) -> dict:
    return client.ok(client.get(f"coupons/{code}"))


# -- the store a scanner is pinned to ------------------------------------------------------


def test_a_scanner_pinned_to_one_store_cannot_reverse_another_stores_redemption(client, shop):
    code = shop.coupon()["code"]
    elsewhere = client.ok(shop.redeem(code, key=shop.roaming_scanner,
                                      store_id=shop.other_store["id"]), 201)
    problem(_reverse(client, elsewhere, shop.scanner), 404, "redemption_not_found")
    coupon = _coupon(client, code)
    assert (coupon["status"], coupon["uses_left"]) == ("redeemed", 0)
    assert [r["reversed_at"] for r in coupon["redemptions"]] == [None]
    assert client.events(type="coupon.redemption_reversed") == []

    pinned_there = client.key(shop.merchant["id"], "scanner", store_id=shop.other_store["id"])
    reversal = client.ok(_reverse(client, elsewhere, pinned_there))
    assert (reversal["id"], reversal["store_id"]) == (elsewhere["id"], shop.other_store["id"])
    assert _coupon(client, code)["uses_left"] == 1


def test_a_roaming_scanner_reverses_at_any_store_of_its_merchant(client, shop):
    code = shop.coupon()["code"]
    at_home = client.ok(shop.redeem(code), 201)
    client.ok(_reverse(client, at_home, shop.roaming_scanner))
    assert _coupon(client, code)["uses_left"] == 1


# -- the window: open while redeemed_at > now - window, closed at the boundary itself --------


@pytest.mark.parametrize("window", [60, None], ids=["merchant-window", "default-window"])
def test_the_reversal_window_closes_at_exactly_its_length(client, shop, clock, window):
    if window is not None:
        client.ok(client.patch(f"merchants/{shop.merchant['id']}", {"reversal_window": window}))
    seconds = window or client.app.config["DEFAULT_REVERSAL_WINDOW"]
    code = shop.coupon()["code"]
    redemption = client.ok(shop.redeem(code), 201)
    redeemed_at = datetime.fromisoformat(redemption["redeemed_at"])
    boundary = redeemed_at + timedelta(seconds=seconds)

    clock.stopped_at = boundary
    closed = problem(_reverse(client, redemption, shop.scanner), 409, "reversal_window_closed")
    assert closed["window"] == seconds
    assert _coupon(client, code)["uses_left"] == 0

    clock.stopped_at = boundary - timedelta(microseconds=1)
    reversal = client.ok(_reverse(client, redemption, shop.scanner))
    assert datetime.fromisoformat(reversal["reversed_at"]) == boundary - timedelta(microseconds=1)
    assert _coupon(client, code)["uses_left"] == 1
