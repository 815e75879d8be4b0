"""A coupon as a person reads it: its deal, order and merchant, what happened to it, and the
refused attempts to use it.

The history is told by the rows that hold it, each read through an index by the coupon's
code: the coupon (issued, voided and why), its campaign (the tipping point that made a
pending coupon redeemable), its redemptions (where, with which key and device, how many
uses; reversed, when and why). The refused attempts are the `redemption_attempts` of the
code that the principal sees (`Principal.merchant_scope`, as `GET /redemption-attempts`).
The events table holds the same facts again for receivers, but is read by position, not by
code: reading it here would scan it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .coupons import find_coupon, redemptions_of
from .models import ApiKey, Campaign, Coupon, Merchant, Order, Redemption, RedemptionAttempt, Store
from .principal import Principal

ISSUED, ACTIVATED, REDEEMED, REVERSED, VOIDED = "issued", "activated", "redeemed", "reversed", "voided"
STEPS = (ISSUED, ACTIVATED, REDEEMED, REVERSED, VOIDED)
REFUSALS_SHOWN = 50


@dataclass(frozen=True)
class Step:
    """One thing that happened to the coupon. `redemption` is set for `redeemed` and
    `reversed`; `reason` for `reversed` and `voided`."""

    kind: str
    at: datetime
    redemption: Redemption | None = None
    reason: str | None = None


@dataclass(frozen=True)
class CouponRecord:
    coupon: Coupon
    status: str  # as clients see it (`expired` derived)
    campaign: Campaign
    merchant: Merchant
    order: Order | None
    history: list[Step]
    refused: list[RedemptionAttempt]
    # by id, the stores and keys named above that the principal sees (a platform key used on a
    # merchant's coupon is not named to its manager)
    stores: dict[str, Store] = field(default_factory=dict)
    keys: dict[str, ApiKey] = field(default_factory=dict)


def coupon_record(session: Session, principal: Principal, raw_code: str, now: datetime, *,
                  refusals: int = REFUSALS_SHOWN) -> CouponRecord:
    """The coupon typed as `raw_code` with its history and its latest `refusals` refused
    attempts; `invalid_code` (a typo, told before the database is asked) or
    `coupon_not_found` (also another merchant's coupon) as `find_coupon` says."""
    coupon = find_coupon(session, principal, raw_code)
    campaign = session.get(Campaign, coupon.campaign_id)
    merchant = session.get(Merchant, coupon.merchant_id)
    order = session.get(Order, coupon.order_id) if coupon.order_id else None
    redemptions = redemptions_of(session, coupon.code)
    refused = refused_attempts(session, principal, coupon.code, refusals)
    store_ids = {r.store_id for r in redemptions} | {a.store_id for a in refused if a.store_id}
    key_ids = ({r.api_key_id for r in redemptions} | {r.reversed_by_key_id for r in redemptions}
               | {a.api_key_id for a in refused}) - {None}
    keys = {key_id: key for key_id, key in _by_id(session, ApiKey, key_ids).items()
            if principal.sees(key.merchant_id)}  # a platform key is named to the platform only
    stores = {store_id: store for store_id, store in _by_id(session, Store, store_ids).items()
              if principal.sees(store.merchant_id)}
    return CouponRecord(
        coupon=coupon, status=coupon.public_status(now), campaign=campaign, merchant=merchant,
        order=order, history=history(coupon, campaign, redemptions), refused=refused,
        stores=stores, keys=keys)


def history(coupon: Coupon, campaign: Campaign, redemptions: list[Redemption]) -> list[Step]:
    """What happened to the coupon, oldest first."""
    steps = [Step(ISSUED, coupon.created_at)]
    if campaign.tipped_at is not None and campaign.tipped_at > coupon.created_at:
        steps.append(Step(ACTIVATED, campaign.tipped_at))  # issued pending, redeemable from here
    for redemption in redemptions:
        steps.append(Step(REDEEMED, redemption.redeemed_at, redemption=redemption))
        if redemption.reversed_at is not None:
            steps.append(Step(REVERSED, redemption.reversed_at, redemption=redemption,
                              reason=redemption.reversal_reason))
    if coupon.voided_at is not None:
        steps.append(Step(VOIDED, coupon.voided_at, reason=coupon.void_reason))
    order = {kind: index for index, kind in enumerate(STEPS)}
    return sorted(steps, key=lambda step: (step.at, order[step.kind]))


def refused_attempts(session: Session, principal: Principal, code: str, limit: int) -> list[RedemptionAttempt]:
    """The latest `limit` refused validates and redeems of the canonical `code`, newest first."""
    query = select(RedemptionAttempt).where(RedemptionAttempt.coupon_code == code)
    if principal.merchant_scope is not None:
        query = query.where(RedemptionAttempt.merchant_id == principal.merchant_scope)
    return list(session.execute(query.order_by(RedemptionAttempt.id.desc()).limit(limit)).scalars())


def _by_id(session: Session, model, ids: set[str]) -> dict:
    if not ids:
        return {}
    return {row.id: row for row in session.execute(select(model).where(model.id.in_(sorted(ids)))).scalars()}
