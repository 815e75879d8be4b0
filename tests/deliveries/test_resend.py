"""Sending a delivery again by hand, and a delivery that waits for its next try saying so.

Real Redis and RQ (a burst SimpleWorker in this process), a real HTTP receiver on 127.0.0.1.
"""

from __future__ import annotations

import pytest
from rq import Queue, SimpleWorker

from couponsvc.jobs import runner
from tests.factories import Shop, problem
from tests.integrations.receiver import Receiver

pytestmark = pytest.mark.config(ALLOW_PRIVATE_WEBHOOK_TARGETS=True)


def work_off(app):
    connection = runner(app).redis()
    with app.app_context():
        SimpleWorker([Queue("deliveries", connection=connection)], connection=connection).work(burst=True)


def hook(client, shop, receiver) -> dict:
    return client.ok(client.post(f"merchants/{shop.merchant['id']}/integrations",
                                 {"adapter": "webhook", "config": {"url": receiver.url + "/hook"},
                                  "events": ["coupon.redeemed"]}, key=shop.manager), 201)


def only_delivery(client, shop, integration, **query) -> dict:
    [delivery] = client.ok(client.get(f"integrations/{integration['id']}/deliveries", key=shop.manager,
                                      query_string=query))["data"]
    return delivery


def test_a_succeeded_delivery_is_sent_again_with_the_same_webhook_id(client, app):
    shop = Shop(client)
    with Receiver() as receiver:
        integration = hook(client, shop, receiver)
        client.ok(shop.redeem(shop.coupon()["code"]), 201)
        work_off(app)
        delivered = only_delivery(client, shop, integration)
        assert delivered["status"] == "succeeded" and len(receiver.requests) == 1

        again = client.ok(client.post(f"deliveries/{delivered['id']}/retry", key=shop.manager), 202)
        assert again["id"] == delivered["id"] and again["status"] == "pending"
        work_off(app)

        first, second = receiver.requests
        assert second.headers["webhook-id"] == first.headers["webhook-id"] == delivered["event_id"]
        assert second.body == first.body
        after = client.ok(client.get(f"deliveries/{delivered['id']}", key=shop.manager))
        assert after["status"] == "succeeded" and after["attempts"] == 2
        assert [a["outcome"] for a in after["attempt_log"]] == ["succeeded", "succeeded"]


def test_a_held_delivery_is_not_sent_by_hand(client, app):
    shop = Shop(client)
    with Receiver() as receiver:
        integration = hook(client, shop, receiver)
        client.ok(client.patch(f"integrations/{integration['id']}", {"status": "disabled"}, key=shop.manager))
        client.ok(shop.redeem(shop.coupon()["code"]), 201)
        held = only_delivery(client, shop, integration)
        assert held["status"] == "held"
        problem(client.post(f"deliveries/{held['id']}/retry", key=shop.manager), 409, "invalid_state")
        work_off(app)
        assert receiver.requests == []


def test_a_delivery_waiting_for_its_next_try_is_retrying_and_failed_still_finds_it(client, app):
    shop = Shop(client)
    with Receiver() as receiver:
        integration = hook(client, shop, receiver)
        receiver.answer(500, "down for a moment")
        client.ok(shop.redeem(shop.coupon()["code"]), 201)
        work_off(app)
        waiting = only_delivery(client, shop, integration)
        assert waiting["status"] == "retrying", waiting
        assert waiting["next_attempt_at"] is not None and waiting["attempts"] == 1
        assert only_delivery(client, shop, integration, status="retrying")["id"] == waiting["id"]
        assert only_delivery(client, shop, integration, status="failed")["id"] == waiting["id"]  # its former name
        assert client.ok(client.get(f"integrations/{integration['id']}/deliveries", key=shop.manager,
                                    query_string={"status": "pending"}))["data"] == []

        client.ok(client.post(f"deliveries/{waiting['id']}/retry", key=shop.manager), 202)
        work_off(app)
        assert only_delivery(client, shop, integration)["status"] == "succeeded"
