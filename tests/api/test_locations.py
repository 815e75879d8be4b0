"""Every 201 (and the bulk 202) says where the new resource lives, and that URL answers it."""

from __future__ import annotations

from urllib.parse import urlsplit

from tests.factories import Shop, problem


def _follow(client, response, key="platform"):
    location = response.headers.get("Location")
    assert location, (response.status_code, dict(response.headers))
    parts = urlsplit(location)
    assert parts.scheme in ("http", "https") and parts.netloc, location
    assert parts.path.startswith("/api/v1/"), location
    return client.ok(client.get(parts.path, key=key))


def test_each_created_resource_is_found_at_its_location(client):
    merchant = client.post("merchants", {"name": "面馆", "city": "赣州"})
    assert merchant.status_code == 201
    merchant_id = merchant.get_json()["id"]
    assert _follow(client, merchant)["id"] == merchant_id

    store = client.post(f"merchants/{merchant_id}/stores", {"name": "文清路店", "address": "文清路 1 号"})
    assert _follow(client, store)["id"] == store.get_json()["id"]

    key = client.post(f"merchants/{merchant_id}/api-keys", {"role": "manager", "label": "till"})
    shown = _follow(client, key)
    assert shown["id"] == key.get_json()["id"]
    assert "key" not in shown  # the secret is answered once, by the 201 alone

    shop = Shop(client)
    campaign = client.post("campaigns", {**{k: shop.campaign[k] for k in (
        "merchant_id", "title", "price", "list_price", "sales_start", "sales_end", "valid_from",
        "valid_until")}})
    assert _follow(client, campaign)["id"] == campaign.get_json()["id"]

    order = client.post(f"campaigns/{shop.campaign['id']}/orders", {"customer_ref": "alice"})
    assert _follow(client, order)["id"] == order.get_json()["id"]

    redemption = shop.redeem(order.get_json()["coupons"][0]["code"])
    assert redemption.status_code == 201
    found = _follow(client, redemption, key=shop.scanner)
    assert (found["id"], found["store_id"]) == (redemption.get_json()["id"], shop.store["id"])


def test_a_redemption_is_hidden_from_another_store_and_merchant(client):
    shop, other = Shop(client), Shop(client)
    code = shop.coupon()["code"]
    redemption_id = client.ok(shop.redeem(code, store_id=shop.store["id"]), 201)["id"]
    pinned_elsewhere = client.key(shop.merchant["id"], "scanner", store_id=shop.other_store["id"])
    for key in (pinned_elsewhere, other.scanner, other.manager):
        problem(client.get(f"redemptions/{redemption_id}", key=key), 404, "redemption_not_found")
    assert client.ok(client.get(f"redemptions/{redemption_id}", key=shop.manager))["id"] == redemption_id


def test_another_merchants_store_and_key_are_not_found(client):
    shop, other = Shop(client), Shop(client)
    problem(client.get(f"stores/{other.store['id']}", key=shop.manager), 404, "not_found")
    key_id = client.ok(client.get(f"merchants/{other.merchant['id']}/api-keys"))["data"][0]["id"]
    problem(client.get(f"api-keys/{key_id}", key=shop.manager), 404, "not_found")
