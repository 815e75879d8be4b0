"""Voiding a campaign's unused coupons and marking its orders for refund.

Used when a campaign is cancelled and when it closes untipped (`failed`). Every coupon
voided gets its revocation and its `coupon.voided` event, each written by one
INSERT … SELECT whatever the number of coupons.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert, literal, select, update
from sqlalchemy.orm import Session

from ..coupons import lock_revocations
from ..models import Campaign, Coupon, Order, Revocation
from ..outbox import payload
from ..outbox.emit import emit_from, emit_many
from ..timeutil import utcnow

UNUSED = ("pending", "active")


@dataclass(frozen=True)
class Settled:
    coupons_voided: int
    orders: int


def void_and_refund(session: Session, campaign: Campaign, reason: str) -> Settled:
    now = utcnow()
    voided = session.execute(
        update(Coupon)
        .where(Coupon.campaign_id == campaign.id, Coupon.status.in_(UNUSED))
        .values(status="voided", voided_at=now, void_reason=reason, seq=Coupon.seq + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    # the coupons this UPDATE voided (not one a till redeemed meanwhile): a revocation and
    # a `coupon.voided` event for each
    c = Coupon.__table__.c
    just_voided = (c.campaign_id == campaign.id, c.status == "voided", c.voided_at == now)
    lock_revocations(session)
    session.execute(insert(Revocation).from_select(
        ["code", "merchant_id", "reason", "created_at"],
        select(c.code, c.merchant_id, literal(reason), literal(now, Revocation.created_at.type))
        .where(*just_voided).order_by(c.code)))
    emit_from(session, "coupon.voided", select(
        c.merchant_id, c.code.label("coupon_code"), c.seq.label("coupon_seq"),
        payload.voided_sql(c, reason=reason).label("data"),
    ).where(*just_voided).order_by(c.code), now)
    orders = session.execute(
        update(Order)
        .where(Order.campaign_id == campaign.id, Order.status.in_(("pending", "confirmed")))
        .values(status="refund_pending")
        .returning(Order.id, Order.customer_ref, Order.quantity, Order.payment_ref)
        .execution_options(synchronize_session=False)
    ).all()
    emit_many(session, [
        {"type": "order.refund_pending", "merchant_id": campaign.merchant_id, "data": {
            "order": {"id": row.id, "campaign_id": campaign.id, "customer_ref": row.customer_ref,
                      "quantity": row.quantity, "payment_ref": row.payment_ref,
                      "status": "refund_pending"},
            "reason": reason,
        }}
        for row in orders
    ])
    return Settled(coupons_voided=voided, orders=len(orders))
