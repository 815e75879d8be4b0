"""Bad input is a clear problem+json answer, never a 500 nor an empty page."""

from __future__ import annotations

import pytest

from couponsvc.ids import new_id
from tests.factories import Shop, problem

pytestmark = pytest.mark.config(ALLOW_PRIVATE_WEBHOOK_TARGETS=True)

DEEP = "[" * 50_000 + "]" * 50_000


@pytest.mark.parametrize("path", ["merchants", "redemptions", "redemptions/validate", "campaigns"])
def test_json_nested_50000_deep_is_a_400(client, path):
    response = client.post(path, data=DEEP, headers={"Content-Type": "application/json"})
    problem(response, 400, "malformed_json")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/xml", None])
def test_a_body_that_is_not_json_is_a_415(client, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("merchants", data='{"name": "面馆", "city": "赣州"}', headers=headers)
    problem(response, 415, "unsupported_media_type")


def test_json_with_a_charset_and_bodyless_posts_are_fine(client):
    shop = Shop(client)
    client.ok(client.post("merchants", data='{"name": "面馆", "city": "赣州"}',
                          headers={"Content-Type": "application/json; charset=utf-8"}), 201)
    code = shop.coupon()["code"]
    client.ok(client.post(f"coupons/{code}/void", key=shop.manager))


def _lists(client) -> tuple[Shop, dict[str, str]]:
    """Every list of the API, each with at least one row."""
    shop = Shop(client)
    code = shop.coupon()["code"]
    client.ok(shop.redeem(code), 201)
    problem(shop.redeem(code), 409, "coupon_already_redeemed")  # a refused attempt
    client.ok(client.post(f"coupons/{shop.coupon()['code']}/void", key=shop.manager))  # a revocation
    hook = client.ok(client.post(f"merchants/{shop.merchant['id']}/integrations",
                                 {"adapter": "webhook", "config": {"url": "http://127.0.0.1:9/"}},
                                 key=shop.manager), 201)
    client.ok(client.post(f"integrations/{hook['id']}/test", key=shop.manager), 202)
    assert client.events()  # numbered by the relay sweep's step, so that /events lists them
    merchant = shop.merchant["id"]
    return shop, {
        "merchants": "mer", f"merchants/{merchant}/stores": "sto", f"merchants/{merchant}/api-keys": "key",
        "campaigns": "cmp", "redemptions": "red", "redemption-attempts": "",
        "revocations": "", "events": "", f"merchants/{merchant}/integrations": "int",
        f"integrations/{hook['id']}/deliveries": "dlv_",
    }


def test_every_list_refuses_a_cursor_it_never_gave(client):
    shop, lists = _lists(client)
    for path, kind in lists.items():
        first = client.ok(client.get(path, query_string={"limit": 1}))
        assert first["data"], path
        numeric = kind in ("", "dlv_")
        foreign = new_id("zzz") if numeric else (new_id("evt") if kind != "evt" else new_id("mer"))
        for after in ["9" * 40, "zzz", "-1", " 1", "١٢", foreign, "%00",
                      *([] if numeric else ["1", "9" * 18, kind + "_x"])]:
            response = client.get(path, query_string={"after": after})
            problem(response, 422, "validation_error")
            assert "after" in response.get_json()["errors"], (path, after)


def test_every_list_accepts_the_cursors_it_gives(client):
    shop, lists = _lists(client)
    for path in lists:
        seen, after = [], None
        while True:
            page = client.ok(client.get(path, query_string={"limit": 1, **({"after": after} if after else {})}))
            seen.extend(page["data"])
            if not page["next"] or not page["data"]:
                break
            after = page["next"]
        assert seen, path



@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+08:00", "9999-12-31T23:00:00-08:00",
                                    "1000-06-01T00:00:00+00:00"])
def test_a_time_outside_the_storable_years_is_422_not_500(client, moment):
    merchant = client.merchant()
    body = {"merchant_id": merchant["id"], "title": "远", "price": 990, "sales_start": moment}
    answer = problem(client.post("campaigns", body), 422, "validation_error")
    assert "out of range" in str(answer["errors"])
