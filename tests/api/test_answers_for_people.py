"""Answers a person at a till can act on (issue 9): what a refusal says and carries, in
English or Chinese by `Accept-Language`; stock short but not gone; one validate answer
for a store not allowed; a time without an offset; the effective reversal window."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta

import pytest

from couponsvc import codes
from couponsvc.timeutil import utcnow
from tests.factories import Shop, problem

ZH = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}


def _redeemed_twice(client, headers=None):
    shop = Shop(client)
    code = shop.coupon()["code"]
    first = client.ok(shop.redeem(code), 201)
    again = client.post("redemptions", {"code": code, "store_id": shop.other_store["id"]},
                        key=shop.roaming_scanner, headers=headers)
    return shop, first, problem(again, 409, "coupon_already_redeemed"), again


# -- 1. refusal details ---------------------------------------------------------------------


def test_already_redeemed_names_the_store_and_the_merchants_local_time(client):
    shop, first, body, answer = _redeemed_twice(client)
    store_name = shop.store["name"]
    local = datetime.fromisoformat(body["redeemed_at_local"])
    assert local.utcoffset() == timedelta(hours=8)  # the merchant's Asia/Shanghai
    assert local == datetime.fromisoformat(first["redeemed_at"])
    assert (body["store_id"], body["store_name"], body["redemption_id"]) == (
        shop.store["id"], store_name, first["id"])
    assert store_name in body["detail"] and local.strftime("%H:%M") in body["detail"]
    assert answer.headers["Content-Language"] == "en"  # nothing asked: English


def test_already_redeemed_in_chinese_when_asked(client):
    shop, _, english, _ = _redeemed_twice(client)
    code = shop.coupon()["code"]
    client.ok(shop.redeem(code), 201)
    answer = client.post("redemptions", {"code": code, "store_id": shop.other_store["id"]},
                         key=shop.roaming_scanner, headers=ZH)
    body = problem(answer, 409, "coupon_already_redeemed")
    assert answer.headers["Content-Language"] == "zh"
    assert shop.store["name"] in body["detail"] and "使用" in body["detail"]
    assert body["detail"] != english["detail"].replace(english["store_name"], body["store_name"])
    assert body["title"] == "此券已被使用"
    assert body["store_name"] == shop.store["name"]  # members are the same in every language


def test_a_voided_coupon_says_why(client):
    shop = Shop(client)
    code = shop.coupon()["code"]
    client.ok(client.post(f"coupons/{code}/void", {"reason": "refunded at the counter"}))
    body = problem(shop.redeem(code), 422, "coupon_voided")
    assert body["reason"] == "refunded at the counter"
    assert "refunded at the counter" in body["detail"]
    zh = problem(client.post("redemptions", {"code": code}, key=shop.scanner, headers=ZH),
                 422, "coupon_voided")
    assert "refunded at the counter" in zh["detail"] and "作废" in zh["detail"]


def test_a_coupon_of_a_cancelled_deal_says_so(client):
    shop = Shop(client)
    code = shop.coupon()["code"]
    client.ok(client.post(f"campaigns/{shop.campaign['id']}/cancel", {"reason": "x"}))
    body = problem(shop.redeem(code), 422, "coupon_voided")
    assert (body["reason"], body["detail"]) == ("campaign_cancelled", "voided: the deal was cancelled")


def test_a_pending_coupon_says_how_many_buyers_are_missing(client):
    shop = Shop(client, min_group_size=5)
    code = shop.coupons(2)[0]["code"]
    body = problem(shop.redeem(code), 422, "coupon_pending")
    assert body["missing"] == 3
    assert "3 more buyers" in body["detail"]
    client.order(shop.campaign["id"], 2)
    body = problem(shop.redeem(code), 422, "coupon_pending")
    assert body["missing"] == 1 and "1 more buyer " in body["detail"]
    zh = problem(client.post("redemptions", {"code": code}, key=shop.scanner, headers=ZH),
                 422, "coupon_pending")
    assert "还差 1 人" in zh["detail"]


def test_forbidden_names_the_roles_that_may(client):
    shop = Shop(client)
    answer = client.post("merchants", {"name": "x", "city": "y"}, key=shop.manager)
    body = problem(answer, 403, "forbidden")
    assert body["roles"] == ["platform"]
    assert "platform" in body["detail"]
    zh = problem(client.post("merchants", {"name": "x", "city": "y"}, key=shop.manager,
                             headers={"Accept-Language": "zh"}), 403, "forbidden")
    assert zh["roles"] == ["platform"] and zh["detail"] != body["detail"]


def test_a_scanner_revoking_a_key_is_told_who_may(client):
    shop = Shop(client)
    victim = client.ok(client.get(f"merchants/{shop.merchant['id']}/api-keys"))["data"][0]
    body = problem(client.delete(f"api-keys/{victim['id']}", key=shop.scanner), 403, "forbidden")
    assert body["roles"] == ["platform", "manager"]


def test_every_problem_names_its_language(client):
    for headers, language in ((None, "en"), ({"Accept-Language": "zh"}, "zh"),
                              ({"Accept-Language": "fr, de;q=0.5"}, "en"),
                              ({"Accept-Language": "zh-TW"}, "zh")):
        answer = client.get("campaigns", key=None, headers=headers)
        problem(answer, 401, "unauthenticated")
        assert answer.headers["Content-Language"] == language, headers


# -- 2. inventory ---------------------------------------------------------------------------


def test_stock_short_but_not_gone_has_its_own_answer(client):
    shop = Shop(client, max_coupons=5)
    path = f"campaigns/{shop.campaign['id']}/orders"
    client.order(shop.campaign["id"], 3)
    body = problem(client.post(path, {"customer_ref": "c", "quantity": 3}), 409, "insufficient_stock")
    assert (body["remaining"], body["asked"]) == (2, 3)
    assert body["detail"] == "2 coupons left, 3 asked"
    client.order(shop.campaign["id"], 1)
    body = problem(client.post(path, {"customer_ref": "d", "quantity": 2}), 409, "insufficient_stock")
    assert body["remaining"] == 1 and body["detail"] == "1 coupon left, 2 asked"
    client.order(shop.campaign["id"], 1)
    body = problem(client.post(path, {"customer_ref": "e"}), 409, "sold_out")
    assert body["remaining"] == 0


def test_bulk_short_of_stock_says_what_is_left(client):
    shop = Shop(client, max_coupons=10)
    shop.coupons(9)
    body = problem(client.post(f"campaigns/{shop.campaign['id']}/coupons/bulk", {"count": 2},
                               key=shop.manager), 409, "insufficient_stock")
    assert body["remaining"] == 1


def test_customer_limit_has_bought_and_limit_and_good_grammar(client):
    shop = Shop(client, per_customer_limit=1)
    path = f"campaigns/{shop.campaign['id']}/orders"
    client.ok(client.post(path, {"customer_ref": "ann"}), 201)
    body = problem(client.post(path, {"customer_ref": "ann"}), 409, "customer_limit_reached")
    assert (body["bought"], body["limit"]) == (1, 1)
    assert body["detail"] == "this customer has bought 1 of at most 1 coupon"


def test_no_article_built_from_a_status(client):
    shop = Shop(client)
    client.ok(client.post(f"campaigns/{shop.campaign['id']}/cancel", {"reason": "x"}))
    body = problem(client.post(f"campaigns/{shop.campaign['id']}/coupons/bulk", {"count": 1},
                               key=shop.manager), 422, "campaign_not_on_sale")
    assert " a c" not in body["detail"] and "cancelled" in body["detail"]


def test_invalid_state_builds_no_article_from_a_status(client):
    shop = Shop(client)
    body = problem(client.post(f"campaigns/{shop.campaign['id']}/publish"), 409, "invalid_state")
    assert "a active" not in body["detail"] and "active" in body["detail"]
    code = shop.coupon()["code"]
    client.ok(client.post(f"coupons/{code}/void"))
    body = problem(client.post(f"coupons/{code}/void"), 409, "invalid_state")
    assert body["detail"] == "a coupon that is voided cannot be voided"


@pytest.mark.config(MAX_INTEGRATIONS_PER_MERCHANT=1, ALLOW_PRIVATE_WEBHOOK_TARGETS=True)
def test_one_integration_is_singular(client):
    shop = Shop(client)
    path, body = f"merchants/{shop.merchant['id']}/integrations", {
        "adapter": "webhook", "config": {"url": "http://127.0.0.1:9/hook"}}
    client.ok(client.post(path, body, key=shop.manager), 201)
    refused = problem(client.post(path, body, key=shop.manager), 409, "too_many_integrations")
    assert refused["detail"].startswith("this merchant has 1 integration, ")


def test_a_single_use_left_is_singular(client):
    shop = Shop(client, uses_per_coupon=2)
    code = shop.coupon()["code"]
    client.ok(shop.redeem(code), 201)
    body = problem(shop.redeem(code, uses=2), 422, "insufficient_uses")
    assert body["detail"] == "1 use left, 2 asked"


# -- 3. validate: one shape for one situation -----------------------------------------------


def test_validate_answers_store_not_allowed_the_same_for_a_pinned_key(client):
    shop = Shop(client, publish=False)
    campaign = client.campaign(shop.merchant["id"], store_ids=[shop.store["id"]])
    code = client.order(campaign["id"])["coupons"][0]["code"]
    roaming = client.ok(client.post("redemptions/validate",
                                    {"code": code, "store_id": shop.other_store["id"]},
                                    key=shop.roaming_scanner))
    pinned = client.ok(client.post("redemptions/validate",
                                   {"code": code, "store_id": shop.other_store["id"]},
                                   key=shop.scanner))
    for answer in (roaming, pinned):
        assert (answer["ok"], answer["code"]) == (False, "store_not_allowed"), answer
        assert answer["coupon"]["code"] == code and "redemptions" in answer["coupon"]
    problem(shop.redeem(code, store_id=shop.other_store["id"]), 422, "store_not_allowed")


# -- 4. a time without an offset ------------------------------------------------------------


def test_a_time_without_an_offset_is_refused_with_a_sentence(client):
    shop = Shop(client)
    naive = (utcnow() + timedelta(days=1)).replace(tzinfo=None).isoformat(timespec="seconds")
    body = problem(client.patch(f"campaigns/{shop.campaign['id']}", {"sales_end": naive}),
                   422, "validation_error")
    assert body["errors"]["sales_end"] == [
        "This time has no UTC offset: add a UTC offset, e.g. +08:00 (2026-12-01T09:00:00+08:00)."]
    zh = problem(client.patch(f"campaigns/{shop.campaign['id']}", {"sales_end": naive},
                              headers={"Accept-Language": "zh"}), 422, "validation_error")
    assert "+08:00" in zh["errors"]["sales_end"][0] and zh["errors"] != body["errors"]


# -- 5. the effective reversal window -------------------------------------------------------


def test_merchant_answers_show_the_effective_reversal_window(client):
    merchant = client.merchant()
    assert (merchant["reversal_window"], merchant["reversal_window_is_default"]) == (600, True)
    changed = client.ok(client.patch(f"merchants/{merchant['id']}", {"reversal_window": 120}))
    assert (changed["reversal_window"], changed["reversal_window_is_default"]) == (120, False)
    back = client.ok(client.patch(f"merchants/{merchant['id']}", {"reversal_window": None}))
    assert (back["reversal_window"], back["reversal_window_is_default"]) == (600, True)
    listed = client.ok(client.get("merchants"))["data"]
    assert all(isinstance(m["reversal_window"], int) for m in listed)




@pytest.mark.config(LOOKUP_LIMIT_PER_KEY="2/minute")
def test_what_a_till_reads_is_in_chinese_when_asked(client):
    """A typo, a reversal too late and a key over its budget: the words a cashier reads, in
    Chinese, each different from the English."""
    shop = Shop(client)
    typo = codes.display(shop.coupon()["code"])
    typo = typo[:-1] + ("A" if typo[-1] != "A" else "B")
    english = problem(shop.redeem(typo), 400, "invalid_code")
    chinese = problem(client.post("redemptions", {"code": typo}, key=shop.scanner, headers=ZH),
                      400, "invalid_code")
    assert "输错" in chinese["detail"] and chinese["detail"] != english["detail"]

    chinese = problem(client.post("redemptions", {"code": codes.generate()}, key=shop.scanner,
                                  headers=ZH), 429, "rate_limited")
    assert "秒后重试" in chinese["detail"], chinese

    code = shop.coupon()["code"]
    redemption = client.ok(shop.redeem(code, key=shop.roaming_scanner, store_id=shop.store["id"]), 201)
    window = client.ok(client.get(f"merchants/{shop.merchant['id']}"))["reversal_window"]
    later = utcnow() + timedelta(seconds=window + 1)
    reverse_module = sys.modules["couponsvc.redeem.reverse"]
    original = reverse_module.utcnow
    reverse_module.utcnow = lambda: later
    try:
        chinese = problem(client.post(f"redemptions/{redemption['id']}/reverse", {"reason": "x"},
                                      key=shop.manager, headers=ZH), 409, "reversal_window_closed")
    finally:
        reverse_module.utcnow = original
    assert f"{window} 秒内可撤销" in chinese["detail"], chinese
