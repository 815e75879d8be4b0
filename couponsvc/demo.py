"""Demo data for `./scripts/serve`: a merchant in a small city, two stores, a live deal.

The demo's first coupon is `K7QM-3XPA-9RTM` (README_CODE), the code the README's example
checks; the others are random. It is given that code right after its order is placed, in
the same transaction, before anything could have been sent about it: no integration
exists yet, so no delivery carries the random code it was drawn with.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from . import campaigns, codes, merchants, people
from .models import Campaign, Coupon, Event, Merchant, Store
from .orders import place_order
from .principal import PLATFORM, Principal, create_key
from .timeutil import utcnow

DEMO_MERCHANT = "老街牛肉面 (demo)"
README_CODE = "K7QM3XPA9RTM"  # the README's example code: shown as K7QM-3XPA-9RTM
DEMO_OPERATOR = "operator@demo.example"
DEMO_MANAGER = "manager@demo.example"


def load_demo(session: Session, *, public_url: str | None, max_window: int, qr_kid: str) -> list[str]:
    """Create the demo merchant once; every call prints fresh keys, and fresh passwords of
    the demo's operator and manager of the admin pages. Returns printable lines."""
    operator = Principal(key_id="demo", role=PLATFORM, merchant_id=None, store_id=None)
    merchant = session.execute(select(Merchant).where(Merchant.name == DEMO_MERCHANT)).scalar_one_or_none()
    if merchant is None:
        merchant = merchants.create_merchant(session, name=DEMO_MERCHANT, city="赣州",
                                             max_window=max_window)
        main = merchants.create_store(session, merchant, name="章贡店", address="赣州市章贡区文清路 88 号")
        merchants.create_store(session, merchant, name="南康店", address="赣州市南康区蓉江路 12 号")
        now = utcnow()
        deal = campaigns.create_campaign(session, operator, {
            "merchant_id": merchant.id, "title": "双人牛肉面套餐", "description": "两碗招牌牛肉面 + 两份小菜",
            "price": 3990, "list_price": 6800, "currency": "CNY",
            "sales_start": now - timedelta(hours=1), "sales_end": now + timedelta(days=7),
            "min_group_size": 3, "max_coupons": 500, "per_customer_limit": 5,
            "valid_from": now - timedelta(hours=1), "valid_until": now + timedelta(days=60),
            "store_ids": [main.id],
        })
        campaigns.publish(session, deal, qr_kid)
        session.flush()
        first = place_order(session, deal.id, customer_ref="demo-buyer-1", quantity=2,
                            payment_ref="demo-pay-1")
        _recode(session, first.order.id, first.codes[0], README_CODE)
        place_order(session, deal.id, customer_ref="demo-buyer-2", quantity=1, payment_ref="demo-pay-2")
    deal = session.execute(select(Campaign).where(Campaign.merchant_id == merchant.id)).scalars().first()
    stores = deal.stores or session.execute(select(Store).where(Store.merchant_id == merchant.id)).scalars().all()
    platform = create_key(session, role="platform", label="demo platform")
    manager = create_key(session, role="manager", merchant_id=merchant.id, label="demo manager")
    scanner = create_key(session, role="scanner", merchant_id=merchant.id, store_id=stores[0].id,
                         label="demo till")
    _, operator_password = people.demo_person(session, email=DEMO_OPERATOR, role=people.OPERATOR,
                                              name="演示运营")
    _, manager_password = people.demo_person(session, email=DEMO_MANAGER, role=people.MANAGER,
                                             merchant_id=merchant.id, name="演示店长")
    session.commit()
    base = public_url or "http://127.0.0.1:5000"
    sample = session.execute(select(Coupon.code).where(
        Coupon.campaign_id == deal.id, Coupon.status == "active")
        .order_by(Coupon.code != README_CODE, Coupon.code)).scalars().first()
    return [
        f"merchant   {merchant.id}  {merchant.name}",
        f"store      {stores[0].id}  {stores[0].name}",
        f"campaign   {deal.id}  {deal.title}",
        f"platform key  {platform.secret}",
        f"manager key   {manager.secret}",
        f"scanner key   {scanner.secret}   (pinned to {stores[0].name})",
        f"coupon     {codes.display(sample) if sample else '(all used)'}  (type it at the till)",
        f"docs       {base}/api/v1/docs",
        f"admin      {base}/admin/  (sign in as one of these two; passwords shown once)",
        f"operator   {DEMO_OPERATOR}  password {operator_password}   (every merchant)",
        f"manager    {DEMO_MANAGER}  password {manager_password}   ({merchant.name})",
    ]


def _recode(session: Session, order_id: str, drawn: str, code: str) -> None:
    """Give the coupon drawn as `drawn` the code `code`, in its row and its issue event."""
    session.flush()
    session.execute(update(Coupon).where(Coupon.code == drawn).values(code=code)
                    .execution_options(synchronize_session=False))
    for event in session.execute(select(Event).where(Event.type == "coupon.issued")).scalars():
        if event.data.get("order_id") == order_id:
            event.data = {**event.data, "coupons": [
                {**c, "code": code if c["code"] == drawn else c["code"]} for c in event.data["coupons"]]}
