"""Real answers against the OpenAPI document: every operation at least once, succeeding and refusing.

The `answers` fixture (tests/api/conftest.py) records each answer and, when a test ends,
validates it against the schema the document gives for its operation and status; so these
tests pass only if the document describes every answer below, refusals and their members
included.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from couponsvc.extensions import api
from tests.api.conftest import Answer, undescribed
from tests.factories import Shop, iso, now, problem

METHODS = {"get", "post", "put", "patch", "delete"}


def _document(app) -> dict:
    with app.app_context():
        return api.spec.to_dict()


@pytest.mark.config(ALLOW_PRIVATE_WEBHOOK_TARGETS=True)  # the webhook's URL is local and unreached
def test_every_operation_answers_as_its_document_says(client, app, answers):
    shop = Shop(client, per_customer_limit=2, max_coupons=10)
    manager, scanner = shop.manager, shop.scanner
    merchant_id, campaign_id = shop.merchant["id"], shop.campaign["id"]

    # merchants, stores, keys
    client.ok(client.get("merchants"))
    problem(client.post("merchants", {"name": ""}), 422, "validation_error")
    client.ok(client.get(f"merchants/{merchant_id}", key=manager))
    problem(client.get("merchants/mer_nope"), 404, "not_found")
    client.ok(client.patch(f"merchants/{merchant_id}", {"name": "面馆"}))
    client.ok(client.get(f"merchants/{merchant_id}/stores", key=manager))
    client.ok(client.get(f"stores/{shop.store['id']}", key=manager))
    keys = client.ok(client.get(f"merchants/{merchant_id}/api-keys", key=manager))
    client.ok(client.get(f"api-keys/{keys['data'][0]['id']}", key=manager))
    spare = client.ok(client.post(f"merchants/{merchant_id}/api-keys", {"role": "scanner", "label": "x"}), 201)
    client.ok(client.delete(f"api-keys/{spare['id']}", key=manager))
    problem(client.delete(f"api-keys/{spare['id']}", key=scanner), 403, "forbidden")
    problem(client.get("merchants", key=None), 401, "unauthenticated")
    problem(client.get("merchants", key=manager), 403, "forbidden")

    # campaigns
    client.ok(client.get("campaigns", key=manager))
    client.ok(client.get(f"campaigns/{campaign_id}", key=manager))
    client.ok(client.get(f"campaigns/{campaign_id}/stats", key=manager))
    assert client.get(f"campaigns/{campaign_id}/poster.png", key=manager).status_code == 200
    draft = client.campaign(merchant_id, publish=False)
    client.ok(client.patch(f"campaigns/{draft['id']}", {"title": "三人套餐"}, key=manager))
    problem(client.post(f"campaigns/{draft['id']}/pause", key=manager), 409, "invalid_state")
    client.ok(client.post(f"campaigns/{draft['id']}/publish", key=manager))
    client.ok(client.post(f"campaigns/{draft['id']}/pause", key=manager))
    client.ok(client.post(f"campaigns/{draft['id']}/resume", key=manager))
    client.ok(client.post(f"campaigns/{draft['id']}/cancel", {"reason": "closed"}, key=manager))
    problem(client.post("campaigns", {"merchant_id": merchant_id, "title": "x", "price": 1,
                                      "sales_start": "2026-01-01T10:00:00"}), 422, "validation_error")

    # orders and bulk issuance
    order = client.order(campaign_id, quantity=2, customer_ref="ann")
    limited = problem(client.post(f"campaigns/{campaign_id}/orders",
                                  {"customer_ref": "ann", "quantity": 1, "payment_ref": "p"}),
                      409, "customer_limit_reached")
    assert {"bought", "limit"} <= set(limited)
    problem(client.post(f"campaigns/{draft['id']}/orders",
                        {"customer_ref": "bob", "quantity": 1, "payment_ref": "p"}), 422, "campaign_not_on_sale")
    client.ok(client.get(f"orders/{order['id']}", key=manager))
    client.ok(client.get("orders", query_string={"campaign_id": campaign_id}))
    job = client.ok(client.post(f"campaigns/{campaign_id}/coupons/bulk", {"count": 2}, key=manager), 202)
    client.app.extensions["couponsvc.jobs"].wait_idle()
    client.ok(client.get(f"jobs/{job['id']}", key=manager))
    assert client.get(f"campaigns/{campaign_id}/coupons.csv", key=manager).status_code == 200

    # coupons
    code, other = order["coupons"][0]["code"], order["coupons"][1]["code"]
    coupon = client.ok(client.get(f"coupons/{code}", key=scanner))
    problem(client.get("coupons/K7QM-3XPA-9RT2", key=scanner), 400, "invalid_code")
    assert client.get(f"coupons/{code}/qr.png", key=scanner).status_code == 200
    assert client.get(f"coupons/{code}/qr.svg", key=scanner).status_code == 200
    problem(client.get(f"coupons/{code}/qr.svg", key=None), 404, "coupon_not_found")
    assert "keys" in client.ok(client.get("qr-keys", key=None))
    client.ok(client.post(f"coupons/{other}/void", {"reason": "refund"}, key=manager))
    client.ok(client.get("revocations", key=scanner))
    client.ok(client.get("whoami", key=scanner))
    assert coupon["code"] == code

    # the till
    client.ok(client.post("redemptions/validate", {"code": code}, key=scanner))
    refusal = client.ok(client.post("redemptions/validate", {"code": other}, key=scanner))
    assert refusal["ok"] is False
    problem(client.post("redemptions", {"qr": "not a qr"}, key=scanner), 400, "invalid_qr")
    redeemed = client.ok(shop.redeem(code), 201)
    used = problem(shop.redeem(code), 409, "coupon_already_redeemed")
    assert "redeemed_at" in used
    problem(shop.redeem(other), 422, "coupon_voided")
    client.ok(client.get("redemptions", key=scanner))
    client.ok(client.get(f"redemptions/{redeemed['id']}", key=scanner))
    client.ok(client.post(f"redemptions/{redeemed['id']}/reverse", {"reason": "wrong dish"}, key=manager))
    problem(client.post(f"redemptions/{redeemed['id']}/reverse", {"reason": "again"}, key=manager),
            409, "redemption_already_reversed")
    client.ok(client.get("redemption-attempts", key=manager))
    offline = {"qr": coupon["qr_payload"], "scanned_at": iso(now()), "device_id": "till", "nonce": "1"}
    uploaded = client.ok(client.post("redemptions/batch", {"items": [offline, offline]}, key=scanner))
    assert [item["status"] for item in uploaded["items"]] == ["accepted", "duplicate"]  # reversed above
    problem(client.post("redemptions/batch", {"items": []}, key=scanner), 422, "validation_error")
    problem(client.request("POST", "redemptions", key=scanner, data=b"{", content_type="application/json"),
            400, "malformed_json")
    problem(client.request("POST", "redemptions", key=scanner, data="code=x",
                           content_type="application/x-www-form-urlencoded"), 415, "unsupported_media_type")

    # events and integrations
    client.events(key=manager)
    client.ok(client.get("adapters", key=manager))
    hook = client.ok(client.post(f"merchants/{merchant_id}/integrations",
                                 {"adapter": "webhook", "config": {"url": "http://127.0.0.1:9/hook"}},
                                 key=manager), 201)
    client.ok(client.get(f"merchants/{merchant_id}/integrations", key=manager))
    client.ok(client.get(f"integrations/{hook['id']}", key=manager))
    client.ok(client.patch(f"integrations/{hook['id']}", {"timeout": 5}, key=manager))
    ping = client.ok(client.post(f"integrations/{hook['id']}/test", key=manager), 202)
    client.ok(client.get(f"integrations/{hook['id']}/deliveries", key=manager))
    client.ok(client.get(f"deliveries/{ping['id']}", key=manager))
    client.ok(client.post(f"deliveries/{ping['id']}/retry", key=manager), 202)
    client.ok(client.patch(f"integrations/{hook['id']}", {"status": "disabled"}, key=manager))
    problem(client.post(f"integrations/{hook['id']}/test", key=manager), 409, "invalid_state")

    document = _document(app)
    documented = {(method, path) for path, item in document["paths"].items() for method in set(item) & METHODS}
    assert documented - answers.operations() == set(), "operations this test did not call"
    assert all(answer.status < 500 for answer in answers)
    assert {answer.status for answer in answers} >= {200, 201, 202, 400, 401, 403, 404, 409, 415, 422}


def test_an_answer_the_document_does_not_describe_is_named(client, app):
    """The check the fixture runs fails on what it should: an unlisted code, a refused member,
    an undocumented status."""
    document = _document(app)
    redeem = "/api/v1/redemptions"
    problem_body = {"type": "t", "title": "t", "status": 409, "detail": "d", "code": "sold_out"}
    wrong = undescribed(document, [
        Answer("post", redeem, 409, "application/problem+json", problem_body),
        Answer("post", redeem, 409, "application/problem+json",
               {**problem_body, "code": "coupon_already_redeemed", "bought": "two"}),
        Answer("post", redeem, 418, "application/problem+json", problem_body),
        Answer("post", redeem, 201, "application/json", {"id": 7}),
    ])
    assert len(wrong) == 4, wrong
    fine = {**problem_body, "code": "coupon_already_redeemed", "redeemed_at": iso(now() - timedelta(1)),
            "anything": "else"}
    assert undescribed(document, [Answer("post", redeem, 409, "application/problem+json", fine)]) == []
