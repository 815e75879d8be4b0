"""Why a coupon cannot be redeemed right now: one reason code, or None.

Used by validate, and by redeem to explain a conditional UPDATE that matched no row.
The order is the one a cashier needs: the most final reason first. Each refusal says
what a cashier can act on (where and when, in the merchant's time, a coupon was used;
why it was voided; how many buyers a deal still misses), in words (`say`, translated
when the answer is rendered) and as members for programs.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from ..domain_error import DomainError, say, say_n
from ..models import Campaign, Coupon, Merchant, Redemption, Store, campaign_stores


def why_not(session: Session, coupon: Coupon, store_id: str, uses: int,
            now: datetime) -> DomainError | None:
    if coupon.status == "voided":
        return voided(coupon)
    if coupon.status == "redeemed":
        return already_redeemed(session, coupon.code)
    if now >= coupon.valid_until:
        return DomainError("coupon_expired",
                           say("valid until %(time)s", time=coupon.valid_until.isoformat()),
                           valid_until=coupon.valid_until.isoformat())
    if coupon.status == "pending":
        return pending(session, coupon)
    if now < coupon.valid_from:
        return DomainError("coupon_not_yet_valid",
                           say("valid from %(time)s", time=coupon.valid_from.isoformat()),
                           valid_from=coupon.valid_from.isoformat())
    if not store_allowed(session, coupon, store_id):
        return DomainError("store_not_allowed", say("this coupon is not honoured at this store"))
    if coupon.uses_left < uses:
        return DomainError("insufficient_uses",
                           say_n("%(num)d use left, %(asked)d asked",
                                 "%(num)d uses left, %(asked)d asked", coupon.uses_left, asked=uses),
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
    """Where and when (in the merchant's own time) the coupon was used; the ids and the
    UTC time stay members."""
    last = session.execute(
        select(Redemption.id, Redemption.redeemed_at, Redemption.store_id,
               Store.name.label("store_name"), Merchant.timezone)
        .join(Store, Store.id == Redemption.store_id)
        .join(Merchant, Merchant.id == Store.merchant_id)
        .where(Redemption.coupon_code == code, Redemption.reversed_at.is_(None))
        .order_by(Redemption.redeemed_at.desc()).limit(1)
    ).first()
    if last is None:
        return DomainError("coupon_already_redeemed")
    local = last.redeemed_at.astimezone(ZoneInfo(last.timezone))
    return DomainError(
        "coupon_already_redeemed",
        say("used at %(store)s on %(time)s (%(zone)s)", store=last.store_name,
            time=local.strftime("%Y-%m-%d %H:%M"), zone=last.timezone),
        redeemed_at=last.redeemed_at.isoformat(), redeemed_at_local=local.isoformat(),
        store_id=last.store_id, store_name=last.store_name, redemption_id=last.id,
    )


def voided(coupon: Coupon) -> DomainError:
    """Why: the reason a manager gave, or what happened to the deal (`campaigns/settle.py`)."""
    reason = coupon.void_reason
    if reason in _DEAL_ENDED:
        detail = _DEAL_ENDED[reason]
    elif reason:
        detail = say("voided: %(reason)s", reason=reason)
    else:
        detail = say("the coupon was voided")
    return DomainError("coupon_voided", detail, voided_at=_iso(coupon.voided_at), reason=reason)


_DEAL_ENDED = {
    "campaign_cancelled": say("voided: the deal was cancelled"),
    "campaign_failed": say("voided: the deal did not reach its group size"),
}


def pending(session: Session, coupon: Coupon) -> DomainError:
    """How many more buyers the deal needs before its coupons can be used."""
    needed, sold = session.execute(select(Campaign.min_group_size, Campaign.sold)
                                   .where(Campaign.id == coupon.campaign_id)).one()
    missing = max(needed - sold, 0)
    return DomainError("coupon_pending",
                       say_n("the deal needs %(num)d more buyer before it can be used",
                             "the deal needs %(num)d more buyers before it can be used", missing),
                       missing=missing)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
