"""Undoing a redemption at the till, within the merchant's reversal window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, update
from sqlalchemy.orm import Session

from ..domain_error import DomainError, say, say_n
from ..merchants import reversal_window
from ..models import Coupon, Merchant, Redemption
from ..outbox import payload
from ..outbox.emit import emit
from ..principal import Principal
from ..timeutil import utcnow
from .find import find_redemption


@dataclass(frozen=True)
class Reversed:
    redemption: Redemption
    coupon: Coupon


def reverse(session: Session, principal: Principal, redemption_id: str, reason: str, *,
            default_window: int, max_window: int) -> Reversed:
    """Undo a redemption within its merchant's window (`merchants.reversal_window`, from the
    operator's `default_window` and `max_window`)."""
    redemption = find_redemption(session, principal, redemption_id)
    now = utcnow()
    window = reversal_window(session.get(Merchant, redemption.merchant_id), default=default_window,
                             ceiling=max_window)
    done = session.execute(
        update(Redemption)
        .where(Redemption.id == redemption_id, Redemption.reversed_at.is_(None),
               Redemption.redeemed_at > now - timedelta(seconds=window))
        .values(reversed_at=now, reversal_reason=reason, reversed_by_key_id=principal.key_id)
        .returning(Redemption.uses)
        .execution_options(synchronize_session=False)
    ).first()
    if done is None:
        session.refresh(redemption)
        if redemption.reversed_at is not None:
            raise DomainError("redemption_already_reversed",
                              say("reversed at %(time)s", time=redemption.reversed_at.isoformat()))
        raise DomainError("reversal_window_closed",
                          say_n("a redemption can be reversed for %(num)d second; this one was at "
                                "%(time)s", "a redemption can be reversed for %(num)d seconds; this "
                                "one was at %(time)s", window, time=redemption.redeemed_at.isoformat()),
                          window=window)
    c = Coupon.__table__.c
    restored = session.execute(
        update(Coupon.__table__)
        .where(c.code == redemption.coupon_code)
        .values(uses_left=c.uses_left + done.uses,
                status=case((c.status == "redeemed", "active"), else_=c.status),
                seq=c.seq + 1)
        .returning(c.seq, c.uses_left, c.status)
    ).one()
    session.refresh(redemption)
    coupon = session.get(Coupon, redemption.coupon_code, populate_existing=True)
    emit(session, "coupon.redemption_reversed", merchant_id=redemption.merchant_id,
         coupon_code=coupon.code, coupon_seq=restored.seq, data={
             "merchant_id": redemption.merchant_id,
             "coupon": payload.coupon(code=coupon.code, campaign_id=coupon.campaign_id,
                                      order_id=coupon.order_id, uses_left=restored.uses_left,
                                      seq=restored.seq),
             "redemption": {"id": redemption.id, "store_id": redemption.store_id,
                            "uses": redemption.uses, "redeemed_at": _iso(redemption.redeemed_at),
                            "reversed_at": _iso(now), "reason": reason},
         })
    return Reversed(redemption=redemption, coupon=coupon)


def _iso(value: datetime) -> str:
    return value.isoformat()
