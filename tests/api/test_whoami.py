"""GET /whoami: a key learns its merchant, its store or stores, and the deals it scans."""

from __future__ import annotations

import time
from datetime import timedelta

from tests.factories import Shop, iso, now, problem


def test_a_pinned_scanner_key_learns_its_store_and_deals(client):
    shop = Shop(client, uses_per_coupon=3)
    shop.coupon()  # the first buyer tips a deal of group size 1
    me = client.ok(client.get("whoami", key=shop.scanner))
    assert me["key"]["role"] == "scanner" and me["key"]["store_id"] == shop.store["id"]
    assert "key_hash" not in me["key"] and "key" not in me["key"]
    assert me["merchant"]["id"] == shop.merchant["id"]
    assert me["merchant"]["reversal_window"] == 600
    assert me["store"]["id"] == shop.store["id"]
    assert [s["id"] for s in me["stores"]] == [shop.store["id"]]
    [deal] = me["deals"]
    assert deal["id"] == shop.campaign["id"] and deal["title"] == "双人牛肉面套餐"
    assert (deal["uses_per_coupon"], deal["tipped"], deal["store_ids"]) == (3, True, [])


def test_a_roaming_scanner_key_chooses_among_the_merchants_stores(client):
    shop = Shop(client)
    me = client.ok(client.get("whoami", key=shop.roaming_scanner))
    assert me["store"] is None
    assert {s["id"] for s in me["stores"]} == {shop.store["id"], shop.other_store["id"]}


def test_deals_whose_coupons_cannot_be_used_are_left_out(client):
    shop = Shop(client, min_group_size=5)
    merchant = shop.merchant["id"]
    client.campaign(merchant, publish=False, title="draft")
    cancelled = client.campaign(merchant, title="cancelled")
    client.ok(client.post(f"campaigns/{cancelled['id']}/cancel", {"reason": "closed"}))
    client.campaign(merchant, title="past", valid_from=iso(now() - timedelta(days=9)),
                    valid_until=iso(now() + timedelta(seconds=1)))
    stranger = client.merchant()
    client.campaign(stranger["id"], title="another merchant's")
    time.sleep(1.1)  # the "past" deal's validity ends
    deals = client.ok(client.get("whoami", key=shop.manager))["deals"]
    assert [(d["id"], d["tipped"]) for d in deals] == [(shop.campaign["id"], False)]


def test_a_platform_key_has_no_merchant(client):
    me = client.ok(client.get("whoami"))
    assert me["key"]["role"] == "platform"
    assert (me["merchant"], me["store"], me["stores"], me["deals"]) == (None, None, [], [])


def test_without_a_valid_key_it_is_401(client):
    problem(client.get("whoami", key=None), 401, "unauthenticated")
    problem(client.get("whoami", key="cpn_scanner_nope"), 401, "unauthenticated")
    shop = Shop(client)
    key_id = client.ok(client.get("whoami", key=shop.scanner))["key"]["id"]
    client.ok(client.delete(f"api-keys/{key_id}"))
    problem(client.get("whoami", key=shop.scanner), 401, "unauthenticated")
