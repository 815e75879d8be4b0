"""Why a coupon cannot be redeemed right now: one reason code, or None.

Used by validate, and by redeem to explain a conditional UPDATE that matched no row.
The order is the one a cashier needs: the most final reason first.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from ..errors import DomainError
from ..models import Coupon, Redemption, Store, campaign_stores


def why_not(session: Session, coupon: Coupon, store_id: str, uses: int,
            now: datetime) -> DomainError | None:
    if coupon.status == "voided":
        return DomainError("coupon_voided", voided_at=_iso(coupon.voided_at))
    if coupon.status == "redeemed":
        return already_redeemed(session, coupon.code)
    if now >= coupon.valid_until:
        return DomainError("coupon_expired", f"valid until {coupon.valid_until.isoformat()}",
                           valid_until=coupon.valid_until.isoformat())
    if coupon.status == "pending":
        return DomainError("coupon_pending", "the deal has not reached its tipping point yet")
    if now < coupon.valid_from:
        return DomainError("coupon_not_yet_valid", f"valid from {coupon.valid_from.isoformat()}",
                           valid_from=coupon.valid_from.isoformat())
    if not store_allowed(session, coupon, store_id):
        return DomainError("store_not_allowed", "this coupon is not honoured at this store")
    if coupon.uses_left < uses:
        return DomainError("insufficient_uses", f"{coupon.uses_left} uses left, {uses} asked",
                           uses_left=coupon.uses_left)
    return None


def store_allowed(session: Session, coupon: Coupon, store_id: str) -> bool:
    ours = session.execute(select(exists().where(
        Store.id == store_id, Store.merchant_id == coupon.merchant_id))).scalar()
    if not ours:
        return False
    listed = select(campaign_stores.c.store_id).where(
        campaign_stores.c.campaign_id == coupon.campaign_id)
    stores = set(session.execute(listed).scalars())
    return not stores or store_id in stores


def already_redeemed(session: Session, code: str) -> DomainError:
    last = session.execute(
        select(Redemption.id, Redemption.redeemed_at, Redemption.store_id)
        .where(Redemption.coupon_code == code, Redemption.reversed_at.is_(None))
        .order_by(Redemption.redeemed_at.desc()).limit(1)
    ).first()
    if last is None:
        return DomainError("coupon_already_redeemed")
    return DomainError(
        "coupon_already_redeemed",
        f"used at {last.redeemed_at.isoformat()} in store {last.store_id}",
        redeemed_at=last.redeemed_at.isoformat(), store_id=last.store_id, redemption_id=last.id,
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
