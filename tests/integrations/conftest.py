"""Library tests for `integrations/`: no app, no database; a local receiver instead."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from functools import cache

import pytest
from PIL import Image

from integrations.adapter import Context, Event

from .receiver import Receiver

CAMPAIGN = {
    "id": "cmp_1", "merchant_id": "mer_1", "title": "赣州老字号双人套餐", "city": "赣州",
    "price": 3990, "list_price": 6800, "currency": "CNY", "status": "active", "sold": 8,
    "min_group_size": 10, "max_coupons": 100, "tipped": False,
    "sales_end": "2030-01-31T16:00:00+00:00",
}
REDEEMED = {
    "merchant_id": "mer_1",
    "coupon": {"code": "K7QM3XPA9RT2", "campaign_id": "cmp_1", "order_id": "ord_1",
               "uses_left": 0},
    "redemption": {"id": "red_1", "store_id": "sto_1", "uses": 1,
                   "redeemed_at": "2030-01-05T04:30:00+00:00", "device_id": "till-2"},
    "campaign": {"id": "cmp_1", "title": "赣州老字号双人套餐", "price": 3990,
                 "currency": "CNY"},
}


def make_event(type_: str = "ping", data: dict | None = None, id_: str = "evt_1") -> Event:
    return Event(id=id_, type=type_, created_at=datetime(2030, 1, 5, 4, 30, tzinfo=UTC),
                 data={} if data is None else data, merchant_id="mer_1")


def campaign_event(type_: str, **changes) -> Event:
    return make_event(type_, {"campaign": {**CAMPAIGN, **changes}})


def issued_event(**changes) -> Event:
    return make_event("coupon.issued", {
        "campaign_id": "cmp_1", "order_id": "ord_1", "count": 1,
        "coupons": [{"code": "K7QM3XPA9RT2", "status": "pending"}],
        "campaign": {**CAMPAIGN, **changes}})


@pytest.fixture(autouse=True)
def allow_private_targets(monkeypatch):
    monkeypatch.setenv("COUPONSVC_ALLOW_PRIVATE_WEBHOOK_TARGETS", "1")


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


@pytest.fixture
def context():
    return Context(timeout=5.0)


@cache
def sample_png() -> bytes:
    """A small poster-shaped PNG."""
    buffer = io.BytesIO()
    Image.new("RGB", (108, 192), (214, 48, 39)).save(buffer, format="PNG")
    return buffer.getvalue()
