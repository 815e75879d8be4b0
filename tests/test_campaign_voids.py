"""A cancelled or failed campaign tells subscribers every code it voided: one
`coupon.voided` event per coupon, fanned out like any other, written set-based."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from couponsvc.campaigns import close_campaign
from couponsvc.extensions import db
from couponsvc.models import Delivery
from couponsvc.timeutil import utcnow
from tests.factories import Shop

pytestmark = pytest.mark.config(ALLOW_PRIVATE_WEBHOOK_TARGETS=True)

ORDERS, EACH = 3, 100  # a few hundred coupons


def _subscribe(client, shop: Shop, *, disabled: bool = False) -> str:
    integration = client.ok(client.post(f"merchants/{shop.merchant['id']}/integrations",
                                        {"adapter": "webhook", "config": {"url": "http://127.0.0.1:9/hook"},
                                         "events": ["coupon.voided"]}, key=shop.manager), 201)
    if disabled:
        client.ok(client.patch(f"integrations/{integration['id']}", {"status": "disabled"}, key=shop.manager))
    return integration["id"]


def _deliveries(app, integration_id: str) -> dict[str, int]:
    with app.app_context():
        found = dict(db.session.execute(
            select(Delivery.status, func.count()).where(Delivery.integration_id == integration_id)
            .group_by(Delivery.status)).all())
        db.session.remove()
    return found


def _assert_voided_events(client, shop: Shop, orders: list[dict], reason: str) -> None:
    coupons = {c["code"]: (order["id"], c) for order in orders for c in order["coupons"]}
    voided = client.events(key=shop.manager, type="coupon.voided")
    assert sorted(e["data"]["coupon"]["code"] for e in voided) == sorted(coupons)
    assert len({e["id"] for e in voided}) == len(coupons)
    for e in voided:
        code = e["data"]["coupon"]["code"]
        order_id, _ = coupons[code]
        seq = e["coupon_seq"]
        assert isinstance(seq, int) and seq > 1  # issued at 1 (or more), one more for the void
        assert e["coupon_code"] == code
        assert e["data"] == {
            "merchant_id": shop.merchant["id"],
            "coupon": {"code": code, "campaign_id": shop.campaign["id"], "order_id": order_id,
                       "status": "voided", "uses_left": 1, "seq": seq},
            "reason": reason,
        }


def test_a_cancelled_campaign_writes_coupon_voided_for_every_coupon_set_based(client, app):
    shop = Shop(client)
    active = _subscribe(client, shop)
    held = _subscribe(client, shop, disabled=True)
    orders = [client.order(shop.campaign["id"], EACH) for _ in range(ORDERS)]
    inserts: list[str] = []

    def note(conn, cursor, statement, parameters, context, executemany):
        if "INSERT INTO events" in statement:
            inserts.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        cancelled = client.ok(client.post(f"campaigns/{shop.campaign['id']}/cancel", {"reason": "no stock"},
                                          key=shop.manager))
    finally:
        event.remove(engine, "before_cursor_execute", note)
    assert cancelled["status"] == "cancelled"
    # the voided coupons', the refunds' and the campaign's events: three statements, not 300
    assert len(inserts) <= 3, len(inserts)

    _assert_voided_events(client, shop, orders, "campaign_cancelled")
    assert _deliveries(app, active) == {"pending": ORDERS * EACH}
    assert _deliveries(app, held) == {"held": ORDERS * EACH}


def test_a_failed_campaign_writes_coupon_voided_for_every_coupon(client, app):
    shop = Shop(client, min_group_size=ORDERS * EACH + 1)  # never tips: its coupons stay pending
    active = _subscribe(client, shop)
    orders = [client.order(shop.campaign["id"], EACH) for _ in range(ORDERS)]
    with app.app_context():
        assert close_campaign(db.session, shop.campaign["id"], utcnow() + timedelta(days=30)) == "failed"
        db.session.commit()
        db.session.remove()
    _assert_voided_events(client, shop, orders, "campaign_failed")
    assert _deliveries(app, active) == {"pending": ORDERS * EACH}
