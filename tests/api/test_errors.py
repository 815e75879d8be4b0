"""Every error code of the contract, provoked once through HTTP, as RFC 9457 problem+json."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from couponsvc import codes
from couponsvc.models import Coupon, Redemption
from couponsvc.qr import payload
from couponsvc.qr.keyring import KeyRing
from couponsvc.timeutil import utcnow
from tests.factories import Shop, in_db, iso, now, problem

# -- authentication and scope ---------------------------------------------------------------


def test_no_key_is_unauthenticated(client):
    problem(client.get("campaigns", key=None), 401, "unauthenticated")


@pytest.mark.parametrize("header", [
    "Bearer nonsense",
    "Bearer cpn_platform_" + "x" * 43,
    "Basic dXNlcjpwYXNz",
    "Bearer ",
])
def test_a_bad_key_is_unauthenticated(client, header):
    response = client.get("campaigns", key=None, headers={"Authorization": header})
    problem(response, 401, "unauthenticated")


def test_a_revoked_key_is_unauthenticated(client):
    merchant = client.merchant()
    created = client.ok(client.post(f"merchants/{merchant['id']}/api-keys",
                                     {"role": "manager", "label": "till"}), 201)
    client.ok(client.get(f"merchants/{merchant['id']}", key=created["key"]))
    client.ok(client.delete(f"api-keys/{created['id']}"))
    problem(client.get(f"merchants/{merchant['id']}", key=created["key"]), 401, "unauthenticated")


def test_scanner_creating_a_campaign_is_forbidden(client):
    shop = Shop(client)
    body = {"merchant_id": shop.merchant["id"], "title": "t", "price": 100,
            "sales_start": iso(now()), "sales_end": iso(now() + timedelta(days=1)),
            "valid_from": iso(now()), "valid_until": iso(now() + timedelta(days=2))}
    problem(client.post("campaigns", body, key=shop.scanner), 403, "forbidden")


def test_manager_creating_a_merchant_is_forbidden(client):
    shop = Shop(client)
    problem(client.post("merchants", {"name": "x", "city": "y"}, key=shop.manager), 403, "forbidden")


def test_another_merchants_objects_are_not_found(client):
    mine, theirs = Shop(client), Shop(client)
    coupon = theirs.coupon()
    for path in (f"campaigns/{theirs.campaign['id']}", f"merchants/{theirs.merchant['id']}",
                 f"campaigns/{theirs.campaign['id']}/stats"):
        problem(client.get(path, key=mine.manager), 404, "not_found")
    problem(client.get(f"coupons/{coupon['code']}", key=mine.manager), 404, "coupon_not_found")


# -- selling --------------------------------------------------------------------------------


def test_sold_out(client):
    shop = Shop(client, max_coupons=2)
    shop.coupons(2)
    response = client.post(f"campaigns/{shop.campaign['id']}/orders", {"customer_ref": "late"})
    problem(response, 409, "sold_out")


def test_customer_limit_reached_compares_retyped_refs(client):
    shop = Shop(client, per_customer_limit=1)
    path = f"campaigns/{shop.campaign['id']}/orders"
    client.ok(client.post(path, {"customer_ref": " Alice@X.cn "}), 201)
    problem(client.post(path, {"customer_ref": "alice@x.cn"}), 409, "customer_limit_reached")
    problem(client.post(path, {"customer_ref": "ALICE@x.CN  "}), 409, "customer_limit_reached")
    client.ok(client.post(path, {"customer_ref": "bob@x.cn"}), 201)


def test_customer_limit_reached_by_one_big_order(client):
    shop = Shop(client, per_customer_limit=2)
    path = f"campaigns/{shop.campaign['id']}/orders"
    body = problem(client.post(path, {"customer_ref": "carol", "quantity": 3}), 409,
                   "customer_limit_reached")
    assert (body["bought"], body["limit"]) == (0, 2)
    client.ok(client.post(path, {"customer_ref": "carol"}), 201)
    body = problem(client.post(path, {"customer_ref": "carol", "quantity": 3}), 409,
                   "customer_limit_reached")
    assert (body["bought"], body["limit"]) == (1, 2)


def test_a_draft_is_not_on_sale(client):
    merchant = client.merchant()
    campaign = client.campaign(merchant["id"], publish=False)
    response = client.post(f"campaigns/{campaign['id']}/orders", {"customer_ref": "a"})
    problem(response, 422, "campaign_not_on_sale")


def test_a_paused_campaign_is_not_on_sale(client):
    shop = Shop(client)
    client.ok(client.post(f"campaigns/{shop.campaign['id']}/pause"))
    response = client.post(f"campaigns/{shop.campaign['id']}/orders", {"customer_ref": "a"})
    problem(response, 422, "campaign_not_on_sale")


def test_a_campaign_before_its_sales_start_is_not_on_sale(client):
    shop = Shop(client, sales_start=iso(now() + timedelta(days=1)))
    response = client.post(f"campaigns/{shop.campaign['id']}/orders", {"customer_ref": "a"})
    problem(response, 422, "campaign_not_on_sale")


# -- redemption -----------------------------------------------------------------------------


def test_coupon_not_found(client):
    shop = Shop(client)
    problem(shop.redeem(codes.generate()), 404, "coupon_not_found")


def test_garbage_is_an_invalid_qr(client):
    shop = Shop(client)
    problem(shop.redeem(qr="hello, world"), 400, "invalid_qr")


def test_a_tampered_signature_is_an_invalid_qr(client):
    shop = Shop(client)
    qr = shop.coupon()["qr_payload"]
    body, signature = qr.rsplit(".", 1)
    middle = len(signature) // 2
    swapped = "A" if signature[middle] != "A" else "B"
    tampered = f"{body}.{signature[:middle]}{swapped}{signature[middle + 1:]}"
    problem(shop.redeem(qr=tampered), 400, "invalid_qr")


def test_a_qr_signed_by_an_unknown_key_is_invalid(client):
    shop = Shop(client)
    coupon = shop.coupon()
    code, campaign_id = coupon["qr_payload"].split(".")[1:3]
    stranger = KeyRing([Ed25519PrivateKey.generate()])
    forged = payload.build(stranger, code, campaign_id, now() + timedelta(days=30))
    problem(shop.redeem(qr=forged), 400, "invalid_qr")


def test_one_mistyped_character_is_an_invalid_code(client):
    shop = Shop(client)
    code = shop.coupon()["code"]
    wrong = codes.ALPHABET[(codes.ALPHABET.index(code[3]) + 1) % len(codes.ALPHABET)]
    problem(shop.redeem(code[:3] + wrong + code[4:]), 400, "invalid_code")


def test_coupon_already_redeemed_names_the_earlier_redemption(client):
    shop = Shop(client)
    code = shop.coupon()["code"]
    first = client.ok(shop.redeem(code), 201)
    body = problem(shop.redeem(code, key=shop.roaming_scanner, store_id=shop.other_store["id"]),
                   409, "coupon_already_redeemed")
    assert body["store_id"] == shop.store["id"]
    assert _same_instant(body["redeemed_at"], first["redeemed_at"])


def test_a_coupon_of_an_untipped_deal_is_pending(client):
    shop = Shop(client, min_group_size=3)
    coupon = shop.coupon()
    assert coupon["status"] == "pending"
    problem(shop.redeem(coupon["code"]), 422, "coupon_pending")


def test_a_voided_coupon_is_refused(client):
    shop = Shop(client)
    code = shop.coupon()["code"]
    client.ok(client.post(f"coupons/{code}/void", {"reason": "refunded"}))
    problem(shop.redeem(code), 422, "coupon_voided")


def test_an_expired_coupon_is_refused(client):
    shop = Shop(client)
    code = shop.coupon()["code"]
    in_db(client.app, update(Coupon).where(Coupon.code == code)
          .values(valid_until=utcnow() - timedelta(minutes=1)))
    problem(shop.redeem(code), 422, "coupon_expired")
    assert client.ok(client.get(f"coupons/{code}"))["status"] == "expired"


def test_an_expired_coupon_is_refused_after_waiting(client):
    shop = Shop(client)
    start = now()
    brief = client.campaign(shop.merchant["id"], valid_until=iso(start + timedelta(seconds=2)),
                            sales_end=iso(start + timedelta(seconds=2)))
    code = client.order(brief["id"])["coupons"][0]["code"]
    time.sleep(max(0.0, (start + timedelta(seconds=2.2) - now()).total_seconds()))
    problem(shop.redeem(code), 422, "coupon_expired")


def test_a_coupon_before_its_valid_from_is_not_yet_valid(client):
    shop = Shop(client, valid_from=iso(now() + timedelta(days=1)))
    problem(shop.redeem(shop.coupon()["code"]), 422, "coupon_not_yet_valid")


def test_a_store_outside_the_campaign_is_not_allowed(client):
    shop = Shop(client, publish=False)
    campaign = client.campaign(shop.merchant["id"], store_ids=[shop.other_store["id"]])
    code = client.order(campaign["id"])["coupons"][0]["code"]
    problem(shop.redeem(code), 422, "store_not_allowed")


def test_insufficient_uses(client):
    shop = Shop(client, uses_per_coupon=2)
    problem(shop.redeem(shop.coupon()["code"], uses=3), 422, "insufficient_uses")


def test_reversal_window_closed_with_a_zero_window(client):
    shop = Shop(client)
    client.ok(client.patch(f"merchants/{shop.merchant['id']}", {"reversal_window": 0}))
    redemption = client.ok(shop.redeem(shop.coupon()["code"]), 201)
    response = client.post(f"redemptions/{redemption['id']}/reverse", {"reason": "oops"},
                           key=shop.scanner)
    problem(response, 409, "reversal_window_closed")


def test_reversal_window_closed_after_the_default_window(client):
    shop = Shop(client)
    redemption = client.ok(shop.redeem(shop.coupon()["code"]), 201)
    in_db(client.app, update(Redemption).where(Redemption.id == redemption["id"])
          .values(redeemed_at=utcnow() - timedelta(hours=2)))
    response = client.post(f"redemptions/{redemption['id']}/reverse", {"reason": "oops"},
                           key=shop.scanner)
    problem(response, 409, "reversal_window_closed")


def test_idempotency_key_reused(client):
    shop = Shop(client)
    path = f"campaigns/{shop.campaign['id']}/orders"
    headers = {"Idempotency-Key": "order-1"}
    client.ok(client.post(path, {"customer_ref": "a"}, headers=headers), 201)
    problem(client.post(path, {"customer_ref": "b"}, headers=headers), 409, "idempotency_key_reused")


@pytest.mark.config(LOOKUP_LIMIT_PER_KEY="3/hour")  # an hour: a window boundary mid-test is unlikely
def test_failed_lookups_are_rate_limited(client):
    shop = Shop(client)
    for _ in range(3):
        problem(shop.redeem(codes.generate()), 404, "coupon_not_found")
    response = shop.redeem(codes.generate())
    problem(response, 429, "rate_limited")
    retry_after = response.headers.get("Retry-After")
    assert retry_after is not None and retry_after.isdigit() and 1 <= int(retry_after) <= 3600
    # The limit is per key: another key of the same shop still looks up.
    problem(shop.redeem(codes.generate(), key=shop.roaming_scanner, store_id=shop.store["id"]),
            404, "coupon_not_found")


@pytest.mark.config(LOOKUP_LIMIT_PER_KEY="3/minute")
def test_successful_lookups_are_not_rate_limited(client):
    shop = Shop(client, uses_per_coupon=10)
    code = shop.coupon()["code"]
    for _ in range(6):
        client.ok(shop.redeem(code), 201)


# -- malformed requests ---------------------------------------------------------------------


def test_validation_error_names_every_bad_field(client):
    merchant = client.merchant()
    body = {"merchant_id": merchant["id"], "title": "t", "price": "abc", "surprise": 1,
            "sales_start": iso(now()), "sales_end": iso(now() + timedelta(days=1)),
            "valid_from": iso(now()), "valid_until": iso(now() + timedelta(days=2))}
    errors = problem(client.post("campaigns", body), 422, "validation_error")["errors"]
    assert set(errors) == {"price", "surprise"}
    assert all(isinstance(messages, list) and messages for messages in errors.values())


def test_quantity_zero_is_a_validation_error(client):
    shop = Shop(client)
    response = client.post(f"campaigns/{shop.campaign['id']}/orders",
                           {"customer_ref": "a", "quantity": 0})
    errors = problem(response, 422, "validation_error")["errors"]
    assert list(errors) == ["quantity"]


def test_malformed_json(client):
    response = client.post("campaigns", data='{"a":', headers={"Content-Type": "application/json"})
    problem(response, 400, "malformed_json")


def test_malformed_json_on_a_redeem(client):
    shop = Shop(client)
    response = client.post("redemptions", data='{"code": "', key=shop.scanner,
                           headers={"Content-Type": "application/json"})
    problem(response, 400, "malformed_json")


def test_a_wrong_method_is_a_problem(client):
    response = client.request("PUT", "campaigns", json={})
    problem(response, 405, "method_not_allowed")
    assert "GET" in response.headers.get("Allow", "")


@pytest.mark.parametrize("path", ["/api/v1/no-such-thing", "/nowhere", "/api/v1/campaigns/x/y/z"])
def test_an_unknown_route_is_a_problem(client, path):
    problem(client.get(path), 404, "not_found")


def test_a_huge_body_is_too_large(client):
    merchant = client.merchant()
    huge = json.dumps({"merchant_id": merchant["id"], "title": "x" * (3 * 1024 * 1024)})
    response = client.post("campaigns", data=huge, headers={"Content-Type": "application/json"})
    problem(response, 413, "payload_too_large")


# -- no input causes a 500 ------------------------------------------------------------------

# Strings a database may choke on: NUL (PostgreSQL text refuses it), lone surrogates (not
# encodable as UTF-8), huge or odd numbers as text, look-alikes of real input.
nasty_strings = st.sampled_from([
    "", " ", "\x00", "a\x00b", "\ud800", "x\udfffy", "\u202e", "🍜" * 50, "x" * 5000,
    "9" * 400, "-1", "NaN", "CPN1....", "CPN1.a.b.c.d", "2222-2222-2222", "null",
])
json_scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                | st.text() | nasty_strings)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def mutated(base: dict):
    """`base` with some fields replaced by, or joined by, arbitrary JSON values."""
    values = nasty_strings | st.text() | json_values
    changes = st.dictionaries(st.sampled_from(sorted(base)), values, min_size=1, max_size=3)
    extra = st.just({}) | st.dictionaries(st.text(max_size=10), json_values, min_size=1, max_size=1)
    return st.tuples(changes, extra).map(lambda drawn: {**base, **drawn[0], **drawn[1]})


def post_json(client, path: str, body, key: str | None = "platform"):
    """POST `body` as JSON written by the standard library (\\u escapes, so lone surrogates pass)."""
    return client.post(path, data=json.dumps(body), key=key,
                       headers={"Content-Type": "application/json"})


def assert_no_server_error(response) -> None:
    text = response.get_data(as_text=True)
    assert response.status_code < 500, (response.status_code, text[:2000])
    if response.status_code >= 400:
        assert response.mimetype == "application/problem+json", (response.status_code, text[:500])
        assert response.get_json()["status"] == response.status_code


@pytest.mark.parametrize("text", ["a\x00b", "a\ud800b"], ids=["nul", "lone-surrogate"])
@pytest.mark.parametrize("target", ["campaign title", "order customer_ref", "redeem code",
                                    "redeem store_id", "redeem device_id", "validate qr"])
def test_unstorable_characters_never_cause_a_500(client, target, text):
    shop = Shop(client)
    scan = {"code": shop.coupon()["code"], "store_id": shop.store["id"]}
    path, body, key = {
        "campaign title": ("campaigns", {**_campaign_body(shop), "title": text}, "platform"),
        "order customer_ref": (f"campaigns/{shop.campaign['id']}/orders",
                               {"customer_ref": text}, "platform"),
        "redeem code": ("redemptions", {**scan, "code": text}, shop.roaming_scanner),
        "redeem store_id": ("redemptions", {**scan, "store_id": text}, shop.roaming_scanner),
        "redeem device_id": ("redemptions", {**scan, "device_id": text}, shop.roaming_scanner),
        "validate qr": ("redemptions/validate", {"qr": text, "store_id": shop.store["id"]},
                        shop.roaming_scanner),
    }[target]
    assert_no_server_error(post_json(client, path, body, key=key))


@pytest.mark.parametrize("method, path", [
    ("GET", "campaigns/a%00"), ("GET", "campaigns/%00/stats"), ("GET", "campaigns/%00/coupons.csv"),
    ("GET", "campaigns?city=%00"), ("GET", "campaigns?merchant_id=%00"), ("GET", "campaigns?after=%00"),
    ("GET", "orders/%00"), ("GET", "merchants/%00"), ("GET", "merchants/%00/stores"),
    ("GET", "merchants?after=%00"), ("GET", "jobs/%00"), ("GET", "coupons/%00"),
    ("GET", "redemptions?store_id=%00"), ("GET", "redemptions?after=%00"),
    ("GET", "redemption-attempts?code=a%00"), ("GET", "redemption-attempts?store_id=%00"),
    ("GET", "events?after=%00"), ("GET", "revocations?after=%00"),
    ("POST", "campaigns/%00/publish"), ("POST", "campaigns/%00/cancel"),
    ("POST", "redemptions/%00/reverse"), ("POST", "coupons/%00/void"),
    ("POST", "campaigns/%00/orders"), ("POST", "campaigns/%00/coupons/bulk"),
    ("PATCH", "campaigns/%00"), ("DELETE", "api-keys/%00"),
])
def test_nul_in_a_path_or_query_never_causes_a_500(client, method, path):
    body = {"reason": "x", "count": 1, "customer_ref": "a", "title": "x"}
    assert_no_server_error(client.request(method, path, json=None if method == "GET" else body))


@pytest.mark.parametrize("field, value", [
    ("timezone", "Asia/\x00"), ("name", "a\x00"), ("reversal_window", 0),
])
def test_nul_in_a_merchant_never_causes_a_500(client, field, value):
    merchant = client.merchant()
    assert_no_server_error(post_json(client, "merchants", {"name": "n", "city": "c", field: value}))
    assert_no_server_error(client.patch(f"merchants/{merchant['id']}", {field: value}))


def test_nul_in_a_store_id_of_a_new_key_never_causes_a_500(client):
    merchant = client.merchant()
    body = {"role": "scanner", "store_id": "\x00", "label": "x"}
    assert_no_server_error(post_json(client, f"merchants/{merchant['id']}/api-keys", body))


def test_nul_in_an_idempotency_key_never_causes_a_500(client):
    shop = Shop(client)
    response = client.post(f"campaigns/{shop.campaign['id']}/orders", {"customer_ref": "a"},
                           headers={"Idempotency-Key": "a\x00b"})
    assert_no_server_error(response)


@pytest.mark.parametrize("scan", ["code", "garbage"])
def test_an_overlong_store_id_never_causes_a_500(client, scan):
    shop = Shop(client)
    body = {"code": shop.coupon()["code"]} if scan == "code" else {"qr": "CPN1.x.y.1.z"}
    response = shop.redeem(key=shop.roaming_scanner, store_id="s" * 200, **body)
    assert_no_server_error(response)
    assert list(problem(response, 422, "validation_error")["errors"]) == ["store_id"]


@pytest.mark.parametrize("limit", [None, 2])
def test_a_customer_ref_that_grows_when_normalised_never_causes_a_500(client, limit):
    """NFKC turns U+FDFA into 18 characters: 200 of them become 3,600."""
    shop = Shop(client, per_customer_limit=limit)
    response = client.post(f"campaigns/{shop.campaign['id']}/orders",
                           {"customer_ref": "\ufdfa" * 200})
    assert_no_server_error(response)


def _campaign_body(shop: Shop) -> dict:
    start = now()
    return {"merchant_id": shop.merchant["id"], "title": "套餐", "price": 100, "list_price": 200,
            "sales_start": iso(start), "sales_end": iso(start + timedelta(days=1)),
            "valid_from": iso(start), "valid_until": iso(start + timedelta(days=2)),
            "min_group_size": 1, "store_ids": [shop.store["id"]], "city": "赣州"}


@pytest.fixture
def fuzz_shop(client):
    return Shop(client)


@FUZZ
@given(body=json_values | st.just(None))
def test_random_json_never_breaks_redemptions(client, fuzz_shop, body):
    for path in ("redemptions", "redemptions/validate"):
        assert_no_server_error(post_json(client, path, body, key=fuzz_shop.roaming_scanner))


@FUZZ
@given(data=st.data())
def test_random_scans_never_break_redemptions(client, fuzz_shop, data):
    base = {"code": fuzz_shop.coupon()["code"], "store_id": fuzz_shop.store["id"], "uses": 1,
            "device_id": "till-1"}
    body = data.draw(mutated(base) | mutated({"qr": "CPN1.x.y.1.z", "store_id": "s"}))
    assert_no_server_error(post_json(client, "redemptions", body, key=fuzz_shop.roaming_scanner))


@FUZZ
@given(shape=json_values, data=st.data())
def test_random_json_never_breaks_campaigns(client, fuzz_shop, shape, data):
    assert_no_server_error(post_json(client, "campaigns", shape))
    body = data.draw(mutated(_campaign_body(fuzz_shop)))
    assert_no_server_error(post_json(client, "campaigns", body))


@FUZZ
@given(shape=json_values, data=st.data())
def test_random_json_never_breaks_orders(client, fuzz_shop, shape, data):
    path = f"campaigns/{fuzz_shop.campaign['id']}/orders"
    assert_no_server_error(post_json(client, path, shape))
    body = data.draw(mutated({"customer_ref": "dora", "quantity": 1, "payment_ref": "p-1"}))
    assert_no_server_error(post_json(client, path, body))


@FUZZ
@given(code=st.text(max_size=80) | nasty_strings)
def test_random_coupon_codes_never_break_the_lookup(client, code):
    assert_no_server_error(client.get(f"coupons/{quote(code, safe='', errors='surrogatepass')}"))


def _same_instant(a: str, b: str) -> bool:
    from datetime import datetime

    return datetime.fromisoformat(a) == datetime.fromisoformat(b)


def test_a_body_is_parsed_once_for_the_view(client, monkeypatch):
    """The view's schema reads the body that `check_body` parsed (Flask's cache), not the
    raw bytes again; a body that does not parse is still 400 malformed_json."""
    from webargs import core

    parsed = []
    real = core.parse_json
    monkeypatch.setattr(core, "parse_json", lambda *a, **k: parsed.append(a) or real(*a, **k))
    client.ok(client.post("merchants", {"name": "一次", "city": "临沂", "timezone": "Asia/Shanghai"}), 201)
    assert parsed == []  # webargs' own parse never ran
    problem(client.request("POST", "merchants", data=b'{"name": ', content_type="application/json"),
            400, "malformed_json")
    assert parsed  # ... read by webargs, which answers for it
