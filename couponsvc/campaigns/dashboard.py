"""What the admin's dashboard shows: live deals and how close each is to tipping, sold and
redeemed today, redemptions per day, and deliveries that need a person.

Days are the merchant's calendar days (`Merchant.timezone`). A platform-wide view adds
each merchant's own days: a redemption counts on the date it had where it happened.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import Campaign, Delivery, Merchant, Order, Redemption
from ..timeutil import utcnow
from .stats import hour_bucket, local_day

LIVE_SHOWN = 20
CHART_DAYS = 30


@dataclass(frozen=True)
class LiveDeal:
    id: str
    title: str
    merchant_id: str
    merchant_name: str
    timezone: str
    sold: int
    min_group_size: int
    max_coupons: int | None
    tipped: bool
    sales_end: datetime
    price: int
    currency: str

    @property
    def progress(self) -> float:
        """How far sales are toward the tipping point, 0 to 1 (1 once tipped)."""
        if self.tipped:
            return 1.0
        return min(1.0, self.sold / self.min_group_size) if self.min_group_size else 1.0

    @property
    def to_tip(self) -> int:
        """Coupons still to sell before the deal tips."""
        return 0 if self.tipped else max(0, self.min_group_size - self.sold)


@dataclass(frozen=True)
class Activity:
    days: list[tuple[str, int]]  # (local date, redemptions kept), oldest first
    sold_today: int
    redeemed_today: int
    today: str


def _scoped(query, column, merchant_scope: str | None, merchant_id: str | None):
    for wanted in (merchant_scope, merchant_id):
        if wanted:
            query = query.where(column == wanted)
    return query


def live_deals(session: Session, merchant_scope: str | None, *, merchant_id: str | None = None,
               limit: int = LIVE_SHOWN) -> tuple[list[LiveDeal], int]:
    """The active deals closing first (up to `limit`), and how many are active in all."""
    query = _scoped(
        select(Campaign.id, Campaign.title, Campaign.merchant_id, Merchant.name, Merchant.timezone,
               Campaign.sold, Campaign.min_group_size, Campaign.max_coupons, Campaign.tipped_at,
               Campaign.sales_end, Campaign.price, Campaign.currency)
        .join(Merchant, Merchant.id == Campaign.merchant_id)
        .where(Campaign.status == "active"),
        Campaign.merchant_id, merchant_scope, merchant_id)
    rows = session.execute(query.order_by(Campaign.sales_end, Campaign.id).limit(limit)).all()
    total = session.execute(_scoped(
        select(func.count()).select_from(Campaign).where(Campaign.status == "active"),
        Campaign.merchant_id, merchant_scope, merchant_id)).scalar_one()
    deals = [LiveDeal(id=r.id, title=r.title, merchant_id=r.merchant_id, merchant_name=r.name,
                      timezone=r.timezone, sold=r.sold, min_group_size=r.min_group_size,
                      max_coupons=r.max_coupons, tipped=r.tipped_at is not None,
                      sales_end=r.sales_end, price=r.price, currency=r.currency) for r in rows]
    return deals, total


def activity(session: Session, merchant_scope: str | None, *, merchant_id: str | None = None,
             now: datetime | None = None, days: int = CHART_DAYS) -> Activity:
    """Redemptions (not reversed) per local day over the last `days` days, and what was
    sold and redeemed today, each merchant's today in its own time zone."""
    now = now or utcnow()
    since = now - timedelta(days=days + 1)  # a day more: covers every time zone's window
    hour = hour_bucket(session, Redemption.redeemed_at)
    redeemed = session.execute(_scoped(
        select(Merchant.timezone, hour.label("hour"), func.count().label("n"))
        .join(Merchant, Merchant.id == Redemption.merchant_id)
        .where(Redemption.redeemed_at >= since, Redemption.reversed_at.is_(None))
        .group_by(Merchant.timezone, "hour"),
        Redemption.merchant_id, merchant_scope, merchant_id)).all()
    hour = hour_bucket(session, Order.created_at)
    sold = session.execute(_scoped(
        select(Merchant.timezone, hour.label("hour"), func.sum(Order.quantity).label("n"))
        .join(Merchant, Merchant.id == Order.merchant_id)
        .where(Order.created_at >= now - timedelta(days=2))
        .group_by(Merchant.timezone, "hour"),
        Order.merchant_id, merchant_scope, merchant_id)).all()

    zones: dict[str, ZoneInfo] = {}

    def today_in(name: str) -> date:
        zone = zones.setdefault(name, ZoneInfo(name))
        return now.astimezone(zone).date()

    names = {row.timezone for row in (*redeemed, *sold)} or {_zone_of_scope(session, merchant_scope or merchant_id)}
    last = max(today_in(name) for name in names)
    axis = [(last - timedelta(days=back)).isoformat() for back in range(days - 1, -1, -1)]
    per_day: dict[str, int] = defaultdict(int)
    redeemed_today = 0
    for row in redeemed:
        day = local_day(row.hour, zones.setdefault(row.timezone, ZoneInfo(row.timezone)))
        per_day[day] += row.n
        if day == today_in(row.timezone).isoformat():
            redeemed_today += row.n
    sold_today = sum(int(row.n or 0) for row in sold
                     if local_day(row.hour, zones.setdefault(row.timezone, ZoneInfo(row.timezone)))
                     == today_in(row.timezone).isoformat())
    return Activity(days=[(day, per_day.get(day, 0)) for day in axis], sold_today=sold_today,
                    redeemed_today=redeemed_today, today=last.isoformat())


def _zone_of_scope(session: Session, merchant_id: str | None) -> str:
    """The time zone of the merchant shown (else the default one) when nothing happened."""
    if merchant_id:
        found = session.get(Merchant, merchant_id)
        if found is not None:
            return found.timezone
    return Merchant.timezone.default.arg


def deliveries_needing_attention(session: Session, merchant_scope: str | None, *,
                                 merchant_id: str | None = None) -> dict[str, int]:
    """Deliveries given up on (`dead`) and still retrying after a failure (`retrying`)."""
    counts = dict(session.execute(_scoped(
        select(Delivery.status, func.count()).where(Delivery.status.in_(("dead", "failed")))
        .group_by(Delivery.status),
        Delivery.merchant_id, merchant_scope, merchant_id)).all())
    return {"dead": counts.get("dead", 0), "retrying": counts.get("failed", 0)}
