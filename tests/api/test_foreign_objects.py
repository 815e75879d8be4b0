"""Another merchant's integrations, deliveries, orders and jobs are absent to a manager.

Each object is first shown to its own merchant's manager, so a 404 below means
"not yours", never "no such id".
"""

from __future__ import annotations

import pytest

from tests.factories import Shop, problem

pytestmark = pytest.mark.config(ALLOW_PRIVATE_WEBHOOK_TARGETS=True)


@pytest.fixture
def shops(client):
    return Shop(client), Shop(client)


def _integration(client, shop: Shop) -> dict:
    body = {"adapter": "webhook", "config": {"url": "http://127.0.0.1:9/hook"}}
    return client.ok(client.post(f"merchants/{shop.merchant['id']}/integrations", body,
                                 key=shop.manager), 201)


def test_a_manager_cannot_read_or_use_another_merchants_integration(client, shops):
    mine, theirs = shops
    _integration(client, mine)
    hook = _integration(client, theirs)
    ping = client.ok(client.post(f"integrations/{hook['id']}/test", key=theirs.manager), 202)
    assert client.ok(client.get(f"integrations/{hook['id']}", key=theirs.manager))["id"] == hook["id"]
    assert client.ok(client.get(f"deliveries/{ping['id']}", key=theirs.manager))["id"] == ping["id"]

    for path in (f"integrations/{hook['id']}", f"integrations/{hook['id']}/deliveries",
                 f"deliveries/{ping['id']}", f"merchants/{theirs.merchant['id']}/integrations"):
        problem(client.get(path, key=mine.manager), 404, "not_found")
    problem(client.patch(f"integrations/{hook['id']}", {"status": "disabled"}, key=mine.manager),
            404, "not_found")
    problem(client.post(f"integrations/{hook['id']}/test", key=mine.manager), 404, "not_found")
    problem(client.post(f"deliveries/{ping['id']}/retry", key=mine.manager), 404, "not_found")

    kept = client.ok(client.get(f"integrations/{hook['id']}", key=theirs.manager))
    assert (kept["status"], kept["disabled_reason"]) == ("active", None)
    listed = client.ok(client.get(f"integrations/{hook['id']}/deliveries", key=theirs.manager))
    assert [d["id"] for d in listed["data"]] == [ping["id"]]


def test_a_managers_list_of_integrations_is_its_merchants_only(client, shops):
    mine, theirs = shops
    own = _integration(client, mine)
    _integration(client, theirs)
    listed = client.ok(client.get(f"merchants/{mine.merchant['id']}/integrations", key=mine.manager))
    assert [i["id"] for i in listed["data"]] == [own["id"]]
    deliveries = client.ok(client.get(f"integrations/{own['id']}/deliveries", key=mine.manager))
    assert deliveries["data"] == []


def test_a_manager_cannot_read_another_merchants_order(client, shops):
    mine, theirs = shops
    order = client.order(theirs.campaign["id"])
    assert client.ok(client.get(f"orders/{order['id']}", key=theirs.manager))["id"] == order["id"]
    problem(client.get(f"orders/{order['id']}", key=mine.manager), 404, "not_found")
    problem(client.get("orders/ord_made_up", key=mine.manager), 404, "not_found")
    own = client.order(mine.campaign["id"])
    assert client.ok(client.get(f"orders/{own['id']}", key=mine.manager))["coupons"] == own["coupons"]


def test_a_manager_cannot_read_another_merchants_bulk_job(client, shops):
    mine, theirs = shops
    job = client.ok(client.post(f"campaigns/{theirs.campaign['id']}/coupons/bulk", {"count": 2},
                                key=theirs.manager), 202)
    assert client.ok(client.get(f"jobs/{job['id']}", key=theirs.manager))["id"] == job["id"]
    problem(client.get(f"jobs/{job['id']}", key=mine.manager), 404, "not_found")
    problem(client.post(f"campaigns/{theirs.campaign['id']}/coupons/bulk", {"count": 2},
                        key=mine.manager), 404, "not_found")
    problem(client.get(f"campaigns/{theirs.campaign['id']}/coupons.csv", key=mine.manager),
            404, "not_found")


def test_a_manager_cannot_read_another_merchants_coupon_or_store(client, shops):
    mine, theirs = shops
    code = theirs.coupon()["code"]
    assert client.ok(client.get(f"coupons/{code}", key=theirs.manager))["code"] == code
    assert client.ok(client.get(f"stores/{theirs.store['id']}", key=theirs.manager))["id"] == \
        theirs.store["id"]
    problem(client.get(f"coupons/{code}", key=mine.manager), 404, "coupon_not_found")
    problem(client.get(f"stores/{theirs.store['id']}", key=mine.manager), 404, "not_found")
