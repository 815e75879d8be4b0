"""Selling, as the domain function `place_order` does it: the stock cap holds at the write.

`place_order` refuses early from what it has read of the campaign, then takes the
stock with one conditional UPDATE. The early refusal alone is not enough: another
order may sell the rest between the read and the write. This test replays that
interleaving in sequence (no threads, either backend), so the cap at the write is
tested on every run and not only by the PostgreSQL race test.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from couponsvc.errors import DomainError
from couponsvc.extensions import db
from couponsvc.models import Campaign, Coupon
from couponsvc.orders import place_order
from tests.factories import Shop


def test_stock_sold_between_the_read_and_the_write_is_refused_short(app, client):
    shop = Shop(client, max_coupons=3)
    campaign_id = shop.campaign["id"]
    with app.app_context(), Session(db.engine, expire_on_commit=False) as late:
        seen = late.get(Campaign, campaign_id)  # the late order's read: all 3 left
        late.commit()
        assert (seen.issued, seen.max_coupons) == (0, 3)

        client.order(campaign_id, 2)  # another order sells 2 of the 3 meanwhile

        with pytest.raises(DomainError) as refused:
            place_order(late, campaign_id, customer_ref="late buyer", quantity=2, payment_ref="p")
        late.rollback()
        assert (refused.value.code, refused.value.extra["remaining"]) == ("insufficient_stock", 1)
        issued = late.scalar(select(func.count()).select_from(Coupon)
                             .where(Coupon.campaign_id == campaign_id))
        assert issued == 2
    campaign = client.ok(client.get(f"campaigns/{campaign_id}"))
    assert (campaign["sold"], campaign["issued"]) == (2, 2)
    client.order(campaign_id, 1)  # the last one still sells
