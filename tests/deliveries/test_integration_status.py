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

        client.ok(shop.redeem(shop.coupon()["code"]), 201)  # while off: no delivery is made for it
        work_off(app)
        assert receiver.requests == []
        assert client.ok(client.get(f"integrations/{hook['id']}/deliveries", key=shop.manager))["data"] == []

        # redeemed while on, but switched off before any worker ran: it waits, and goes
        # out when the integration is switched on again (no sweep involved)
        client.ok(client.patch(f"integrations/{hook['id']}", {"status": "active"}, key=shop.manager))
        redemption = client.ok(shop.redeem(shop.coupon()["code"]), 201)
        client.ok(client.patch(f"integrations/{hook['id']}", {"status": "disabled"}, key=shop.manager))
        work_off(app)  # the drain queued at the redeem finds the integration off
        assert receiver.requests == []
        [waiting] = client.ok(client.get(f"integrations/{hook['id']}/deliveries", key=shop.manager))["data"]
        assert waiting["status"] == "pending" and waiting["attempts"] == 0
        client.ok(client.patch(f"integrations/{hook['id']}", {"status": "active"}, key=shop.manager))
        work_off(app)
        [sent] = receiver.requests
        assert sent.json()["data"]["redemption"]["id"] == redemption["id"]
