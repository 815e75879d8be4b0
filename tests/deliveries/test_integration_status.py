"""A merchant switches an integration off and on: the event that says so, and what waited."""

from __future__ import annotations

import pytest
from rq import Queue, SimpleWorker

from couponsvc.jobs import runner
from tests.factories import Shop
from tests.integrations.receiver import Receiver

pytestmark = pytest.mark.config(ALLOW_PRIVATE_WEBHOOK_TARGETS=True)


def work_off(app):
    connection = runner(app).redis()
    with app.app_context():
        SimpleWorker([Queue("deliveries", connection=connection)], connection=connection).work(burst=True)


def test_switched_off_by_the_merchant_says_so_and_on_again_sends_what_waited(client, app):
    shop = Shop(client)
    with Receiver() as receiver:
        hook = client.ok(client.post(f"merchants/{shop.merchant['id']}/integrations",
                                     {"adapter": "webhook", "config": {"url": receiver.url + "/hook"},
                                      "events": ["coupon.redeemed"]}, key=shop.manager), 201)
        off = client.ok(client.patch(f"integrations/{hook['id']}", {"status": "disabled"}, key=shop.manager))
        assert off["status"] == "disabled"
        seen = client.events()
        disabled = [e for e in seen if e["type"] == "integration.disabled"]
        assert len(disabled) == 1, [e["type"] for e in seen]
        event = disabled[0]
        assert event["data"]["integration"] == {"id": hook["id"], "adapter": "webhook",
                                                "disabled_at": event["data"]["integration"]["disabled_at"],
                                                "reason": "disabled by the merchant"}
        client.ok(client.patch(f"integrations/{hook['id']}", {"status": "disabled"}, key=shop.manager))
        assert len([e for e in client.events() if e["type"] == "integration.disabled"]) == 1  # no news

        # redeemed while on, but switched off before any worker ran: it is held, and goes
        # out when the integration is switched on again (no sweep involved)
        client.ok(client.patch(f"integrations/{hook['id']}", {"status": "active"}, key=shop.manager))
        redemption = client.ok(shop.redeem(shop.coupon()["code"]), 201)
        client.ok(client.patch(f"integrations/{hook['id']}", {"status": "disabled"}, key=shop.manager))
        work_off(app)  # the drain queued at the redeem finds the integration off
        assert receiver.requests == []
        [waiting] = client.ok(client.get(f"integrations/{hook['id']}/deliveries", key=shop.manager))["data"]
        assert waiting["status"] == "held" and waiting["attempts"] == 0
        client.ok(client.patch(f"integrations/{hook['id']}", {"status": "active"}, key=shop.manager))
        work_off(app)
        [sent] = receiver.requests
        assert sent.json()["data"]["redemption"]["id"] == redemption["id"]


def test_events_raised_while_disabled_are_held_and_sent_in_order_once_enabled(client, app):
    shop = Shop(client)
    coupons = shop.coupons(6)
    with Receiver() as receiver:
        hook = client.ok(client.post(f"merchants/{shop.merchant['id']}/integrations",
                                     {"adapter": "webhook", "config": {"url": receiver.url + "/hook"},
                                      "events": ["coupon.voided", "coupon.redemption_reversed"]},
                                     key=shop.manager), 201)
        client.ok(client.patch(f"integrations/{hook['id']}", {"status": "disabled"}, key=shop.manager))
        for coupon in coupons[:5]:
            client.ok(client.post(f"coupons/{coupon['code']}/void", {"reason": "test"}, key=shop.manager))
        redemption = client.ok(shop.redeem(coupons[5]["code"]), 201)
        client.ok(client.post(f"redemptions/{redemption['id']}/reverse", {"reason": "test"}, key=shop.manager))
        work_off(app)
        assert receiver.requests == []

        held = client.ok(client.get(f"integrations/{hook['id']}/deliveries", key=shop.manager,
                                    query_string={"status": "held"}))["data"]
        assert len(held) == 6 and {d["status"] for d in held} == {"held"}
        assert client.ok(client.get(f"integrations/{hook['id']}/deliveries", key=shop.manager,
                                    query_string={"status": "pending"}))["data"] == []
        retried = client.post(f"deliveries/{held[0]['id']}/retry", key=shop.manager)
        assert retried.status_code == 409 and retried.get_json()["code"] == "invalid_state"

        client.ok(client.patch(f"integrations/{hook['id']}", {"status": "active"}, key=shop.manager))
        work_off(app)
        raised = [e["id"] for e in client.events(key=shop.manager)
                  if e["type"] in ("coupon.voided", "coupon.redemption_reversed")]
        assert len(raised) == 6
        assert [r.headers["webhook-id"] for r in receiver.requests] == raised  # each once, in order
        assert [r.json()["data"]["coupon"]["code"] for r in receiver.requests] == [
            c["code"] for c in coupons]
        assert {d["status"] for d in client.ok(client.get(
            f"integrations/{hook['id']}/deliveries", key=shop.manager))["data"]} == {"succeeded"}
