"""Selling a deal: codes, signed QR payloads, limits, events, Chinese text."""

from __future__ import annotations

import base64
import re
from datetime import datetime

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from couponsvc import codes
from tests.factories import Shop, problem

DISPLAY = re.compile(rf"^[{codes.ALPHABET}]{{4}}-[{codes.ALPHABET}]{{4}}-[{codes.ALPHABET}]{{4}}$")


def b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_keys(client) -> list[Ed25519PublicKey]:
    response = client.get("qr-keys", key=None)
    jwks = client.ok(response)
    assert jwks["keys"], "at least one public key"
    keys = []
    for jwk in jwks["keys"]:
        assert jwk["alg"] == "Ed25519" and jwk["kid"]
        keys.append(Ed25519PublicKey.from_public_bytes(b64url(jwk["x"])))
    return keys


def verifies(keys: list[Ed25519PublicKey], qr: str) -> bool:
    """The contract: Ed25519 over everything before the last dot, base64url without padding."""
    body, _, signature = qr.rpartition(".")
    assert "=" not in signature
    for key in keys:
        try:
            key.verify(b64url(signature), body.encode("utf-8"))
        except InvalidSignature:
            continue
        return True
    return False


def test_an_order_of_100_issues_100_unique_valid_codes(client):
    shop = Shop(client)
    order = client.order(shop.campaign["id"], 100)
    assert order["status"] == "confirmed"
    coupons = order["coupons"]
    assert len(coupons) == 100
    assert len({c["code"] for c in coupons}) == 100
    for coupon in coupons:
        code = coupon["code"]
        assert codes.is_valid(code), code
        assert codes.canonical(code) == code
        assert DISPLAY.match(coupon["display"]), coupon["display"]
        assert coupon["display"].replace("-", "") == code
        assert coupon["status"] == "active"
        assert f"/api/v1/coupons/{code}/qr.png?token=" in coupon["qr_url"]
    fetched = client.ok(client.get(f"orders/{order['id']}"))
    assert sorted(c["code"] for c in fetched["coupons"]) == sorted(c["code"] for c in coupons)
    campaign = client.ok(client.get(f"campaigns/{shop.campaign['id']}"))
    assert (campaign["sold"], campaign["issued"]) == (100, 100)


def test_codes_of_many_orders_never_repeat(client):
    shop = Shop(client)
    seen = [c["code"] for _ in range(5) for c in client.order(shop.campaign["id"], 40)["coupons"]]
    assert len(set(seen)) == len(seen) == 200


def test_qr_payload_verifies_against_the_published_keys(client):
    shop = Shop(client)
    keys = public_keys(client)
    valid_until = int(datetime.fromisoformat(shop.campaign["valid_until"]).timestamp())
    for coupon in shop.coupons(5):
        qr = coupon["qr_payload"]
        prefix, code, campaign_id, unix, signature = qr.split(".")
        assert (prefix, code, campaign_id) == ("CPN1", coupon["code"], shop.campaign["id"])
        assert int(unix) == valid_until
        assert verifies(keys, qr), qr
        # The same check refuses an altered payload, so it does prove something.
        other = codes.generate()
        assert not verifies(keys, qr.replace(code, other))
        assert not verifies(keys, f"CPN1.{code}.{campaign_id}.{int(unix) + 86400}.{signature}")
        assert client.ok(client.get(f"coupons/{code}"))["qr_payload"] == qr


def test_qr_keys_are_public_and_cacheable(client):
    response = client.get("qr-keys", key=None)
    assert response.status_code == 200
    assert "max-age" in response.headers.get("Cache-Control", "")


def test_an_order_writes_coupon_issued_and_order_confirmed(client):
    shop = Shop(client)
    order = client.order(shop.campaign["id"], 3)
    issued = client.events(type="coupon.issued")
    assert len(issued) == 1
    data = issued[0]["data"]
    assert issued[0]["merchant_id"] == shop.merchant["id"]
    assert data["order_id"] == order["id"]
    assert data["campaign_id"] == shop.campaign["id"]
    assert sorted(c["code"] for c in data["coupons"]) == sorted(c["code"] for c in order["coupons"])
    confirmed = client.events(type="order.confirmed")
    assert [e["data"]["order"]["id"] for e in confirmed] == [order["id"]]
    assert confirmed[0]["data"]["order"]["quantity"] == 3


def test_max_coupons_is_never_exceeded(client):
    shop = Shop(client, max_coupons=5)
    path = f"campaigns/{shop.campaign['id']}/orders"
    client.order(shop.campaign["id"], 2)
    client.order(shop.campaign["id"], 2)
    problem(client.post(path, {"customer_ref": "c", "quantity": 2}), 409, "insufficient_stock")
    client.order(shop.campaign["id"], 1)
    problem(client.post(path, {"customer_ref": "d"}), 409, "sold_out")
    campaign = client.ok(client.get(f"campaigns/{shop.campaign['id']}"))
    assert (campaign["sold"], campaign["issued"]) == (5, 5)
    assert len(client.events(type="coupon.issued")) == 3


def test_an_order_larger_than_the_whole_deal_is_short_of_stock(client):
    shop = Shop(client, max_coupons=3)
    body = problem(client.post(f"campaigns/{shop.campaign['id']}/orders",
                               {"customer_ref": "a", "quantity": 4}), 409, "insufficient_stock")
    assert body["remaining"] == 3
    assert client.ok(client.get(f"campaigns/{shop.campaign['id']}"))["sold"] == 0


@pytest.mark.parametrize("retyped", ["alice@x.cn", "ALICE@X.CN", "  alice@x.cn\t", "ａｌｉｃｅ@ｘ.ｃｎ"])
def test_the_per_customer_limit_compares_normalised_refs(client, retyped):
    shop = Shop(client, per_customer_limit=2)
    path = f"campaigns/{shop.campaign['id']}/orders"
    client.ok(client.post(path, {"customer_ref": " Alice@X.cn "}), 201)
    client.ok(client.post(path, {"customer_ref": retyped}), 201)
    problem(client.post(path, {"customer_ref": retyped}), 409, "customer_limit_reached")
    problem(client.post(path, {"customer_ref": " Alice@X.cn "}), 409, "customer_limit_reached")
    client.ok(client.post(path, {"customer_ref": "alice@y.cn", "quantity": 2}), 201)
    assert client.ok(client.get(f"campaigns/{shop.campaign['id']}"))["sold"] == 4


def test_a_refused_order_does_not_use_up_the_customer_limit(client):
    shop = Shop(client, per_customer_limit=2, max_coupons=3)
    path = f"campaigns/{shop.campaign['id']}/orders"
    client.ok(client.post(path, {"customer_ref": "bob", "quantity": 2}), 201)
    problem(client.post(path, {"customer_ref": "carol", "quantity": 2}), 409, "insufficient_stock")
    client.ok(client.post(path, {"customer_ref": "Carol", "quantity": 1}), 201)


def test_a_blank_customer_ref_is_a_validation_error(client):
    shop = Shop(client)
    for ref in ("", "   "):
        problem(client.post(f"campaigns/{shop.campaign['id']}/orders", {"customer_ref": ref}),
                422, "validation_error")


def test_only_the_platform_sells(client):
    shop = Shop(client)
    for key in (shop.manager, shop.scanner):
        problem(client.post(f"campaigns/{shop.campaign['id']}/orders", {"customer_ref": "a"},
                            key=key), 403, "forbidden")


def test_an_order_of_an_unknown_campaign_is_not_found(client):
    problem(client.post("campaigns/cmp_nope/orders", {"customer_ref": "a"}), 404, "not_found")


def test_chinese_text_round_trips(client):
    merchant = client.merchant(name="老王牛肉面（文清路店）", city="赣州")
    assert (merchant["name"], merchant["city"]) == ("老王牛肉面（文清路店）", "赣州")
    store = client.store(merchant["id"], name="章贡区分店", address="江西省赣州市章贡区文清路 88 号 🍜")
    assert store["address"] == "江西省赣州市章贡区文清路 88 号 🍜"
    text = {"title": "双人牛肉面套餐 · 限时 5 折", "description": "含两碗面、两杯豆浆；周末通用。",
            "city": "赣州"}
    campaign = client.campaign(merchant["id"], **text)
    fetched = client.ok(client.get(f"campaigns/{campaign['id']}"))
    assert {name: fetched[name] for name in text} == text
    listed = client.ok(client.get("campaigns", query_string={"city": "赣州"}))["data"]
    assert [c["id"] for c in listed] == [campaign["id"]]
    assert client.ok(client.get("campaigns", query_string={"city": "南昌"}))["data"] == []
    order = client.ok(client.post(f"campaigns/{campaign['id']}/orders", {
        "customer_ref": "张三 13800000000", "payment_ref": "微信支付-001"}), 201)
    assert client.ok(client.get(f"orders/{order['id']}"))["payment_ref"] == "微信支付-001"
    fetched_store = client.ok(client.get(f"merchants/{merchant['id']}/stores"))["data"][0]
    assert fetched_store["name"] == "章贡区分店"
    event = client.events(type="campaign.published")[0]
    assert event["data"]["campaign"]["title"] == text["title"]
