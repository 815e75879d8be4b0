"""Who a key is, as a till needs to know it: its merchant, the store it is pinned to or
the stores it may choose from, and the deals whose coupons it scans.

The scanner page (`/scan`) asks this once when a key is typed in, and again while online:
the deals' titles name a redeemed coupon, and their uses per coupon, validity, tipping
and stores let the page check a signed QR offline (`docs/scanner.md`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import ApiKey, Campaign, Merchant, Store
from .principal import PLATFORM, Principal

# Deals whose coupons a till may still see: on sale, paused, or ended having tipped.
# Failed and cancelled deals voided their coupons (the revocation feed says so).
DEAL_STATUSES = ("active", "paused", "ended")
MAX_DEALS = 500


@dataclass(frozen=True)
class Whoami:
    key: ApiKey | None
    merchant: Merchant | None
    store: Store | None
    stores: list[Store]
    deals: list[Campaign]


def whoami(session: Session, principal: Principal, now: datetime) -> Whoami:
    """The caller's key, merchant and store(s), and the merchant's deals still valid at
    `now` (at most MAX_DEALS, those ending first first). The platform has no merchant."""
    key = session.get(ApiKey, principal.key_id) if principal.key_id else None
    if principal.role == PLATFORM or principal.merchant_id is None:
        return Whoami(key=key, merchant=None, store=None, stores=[], deals=[])
    merchant = session.get(Merchant, principal.merchant_id)
    store = session.get(Store, principal.store_id) if principal.store_id else None
    stores = [store] if store is not None else list(session.scalars(
        select(Store).where(Store.merchant_id == merchant.id).order_by(Store.id)))
    deals = list(session.scalars(
        select(Campaign)
        .where(Campaign.merchant_id == merchant.id, Campaign.status.in_(DEAL_STATUSES),
               Campaign.valid_until > now)
        .order_by(Campaign.valid_until, Campaign.id)
        .limit(MAX_DEALS)))
    return Whoami(key=key, merchant=merchant, store=store, stores=stores, deals=deals)
