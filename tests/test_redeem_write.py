"""Both forms of the redemption writes (one CTE on PostgreSQL, three statements on
SQLite) leave the same rows and the same event; this test runs on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from couponsvc.extensions import db
from couponsvc.models import Event, Redemption
from couponsvc.redeem.write import text_array
from tests.factories import Shop


def test_redemption_rows_and_event_payload(client, app):
    shop = Shop(client, uses_per_coupon=3, title="双人套餐 · 老街", price=3990)
    coupon = shop.coupons(1, customer_ref="w")[0]
    done = client.ok(shop.redeem(coupon["code"], uses=2, device_id="till-7"), 201)
    with app.app_context():
        event = db.session.execute(select(Event).where(Event.type == "coupon.redeemed")).scalar_one()
        redemption = db.session.get(Redemption, done["id"])
        order_id = client.ok(client.get(f"coupons/{coupon['code']}"))["order_id"]
        assert event.data == {
            "merchant_id": shop.merchant["id"],
            "coupon": {"code": coupon["code"], "campaign_id": shop.campaign["id"],
                       "order_id": order_id, "uses_left": 1, "seq": 3},
            "redemption": {"id": done["id"], "store_id": shop.store["id"], "uses": 2,
                           "redeemed_at": redemption.redeemed_at.isoformat(), "device_id": "till-7",
                           "scanned_at": redemption.redeemed_at.isoformat(), "uploaded_at": None},
            "campaign": {"id": shop.campaign["id"], "title": "双人套餐 · 老街", "price": 3990,
                         "currency": "CNY"},
        }
        assert (event.coupon_code, event.merchant_id) == (coupon["code"], shop.merchant["id"])
        assert event.coupon_seq == 3  # written pending (1), activated by its tipping order (2), redeemed (3)
        assert (redemption.coupon_code, redemption.store_id, redemption.uses, redemption.device_id,
                redemption.campaign_id) == (coupon["code"], shop.store["id"], 2, "till-7", shop.campaign["id"])
        assert event.created_at == redemption.redeemed_at == redemption.scanned_at
        assert redemption.uploaded_at is None


def test_a_refused_redeem_writes_nothing(client, app):
    shop = Shop(client)
    code = shop.coupon()["code"]
    client.ok(client.post(f"coupons/{code}/void", key=shop.manager))
    assert shop.redeem(code).status_code == 422
    with app.app_context():
        assert db.session.execute(select(Redemption)).first() is None
        assert db.session.execute(select(Event).where(Event.type == "coupon.redeemed")).first() is None


@pytest.mark.postgresql
def test_budget_names_reach_postgresql_as_sent(app):
    """The statement's budget names travel as PostgreSQL's text form of an array
    (`write.text_array`): whatever a client address holds comes back element for element."""
    names = [(), ("key:key_01",), ("key:key_01", "addr:2001:db8::1"),
             ('addr:"quoted"', "addr:back\\slash", "addr:{brace},comma", "addr: space ", "addr:NULL",
              "addr:地址")]
    with app.app_context():
        for items in names:
            back = db.session.execute(text("SELECT CAST(:a AS text[])"), {"a": text_array(items)}).scalar_one()
            assert back == list(items)
