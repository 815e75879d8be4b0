"""A campaign's figures: sold, issued, redeemed, reversed; by local day and by store."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import Campaign, Coupon, Merchant, Redemption


def campaign_stats(session: Session, campaign: Campaign) -> dict[str, Any]:
    zone = ZoneInfo(session.get(Merchant, campaign.merchant_id).timezone)
    by_status = dict(session.execute(
        select(Coupon.status, func.count()).where(Coupon.campaign_id == campaign.id)
        .group_by(Coupon.status)
    ).all())
    hour = hour_bucket(session, Redemption.redeemed_at)
    rows = session.execute(
        select(hour.label("hour"), Redemption.store_id, Redemption.reversed_at.is_(None).label("kept"),
               func.count().label("n"), func.coalesce(func.sum(Redemption.uses), 0).label("uses"))
        .where(Redemption.campaign_id == campaign.id)
        .group_by("hour", Redemption.store_id, "kept")
    ).all()
    by_day: dict[str, dict[str, int]] = defaultdict(lambda: {"redemptions": 0, "uses": 0, "reversed": 0})
    by_store: dict[str, dict[str, int]] = defaultdict(lambda: {"redemptions": 0, "uses": 0, "reversed": 0})
    redeemed = reversed_ = uses = 0
    days: dict[Any, str] = {}  # an hour's day, worked out once for its stores and reversals
    for row in rows:
        day = days.get(row.hour) or days.setdefault(row.hour, local_day(row.hour, zone))
        for bucket in (by_day[day], by_store[row.store_id]):
            if row.kept:
                bucket["redemptions"] += row.n
                bucket["uses"] += row.uses
            else:
                bucket["reversed"] += row.n
        if row.kept:
            redeemed += row.n
            uses += row.uses
        else:
            reversed_ += row.n
    return {
        "campaign_id": campaign.id,
        "status": campaign.status,
        "sold": campaign.sold,
        "issued": campaign.issued,
        "tipped": campaign.tipped_at is not None,
        "coupons": {status: by_status.get(status, 0) for status in Coupon.STORED_STATUSES},
        "redeemed": redeemed,
        "uses_redeemed": uses,
        "reversed": reversed_,
        "timezone": zone.key,
        "by_day": [{"date": day, **figures} for day, figures in sorted(by_day.items())],
        "by_store": [{"store_id": store, **figures} for store, figures in sorted(by_store.items())],
    }


def hour_bucket(session: Session, column):
    """A time column truncated to the UTC hour: a timestamp without zone on PostgreSQL
    (no text formatting per row: the grouping reads hundreds of thousands of rows for a
    large campaign), `YYYY-MM-DD HH:00:00` text on SQLite; `local_day` takes either."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date_trunc("hour", func.timezone("UTC", column))
    return func.strftime("%Y-%m-%d %H:00:00", column)


def local_day(hour: str | datetime, zone: ZoneInfo) -> str:
    """The merchant's calendar day of a UTC hour (exact for whole-hour offsets such as China's)."""
    if isinstance(hour, str):
        hour = datetime.strptime(hour, "%Y-%m-%d %H:%M:%S")
    return hour.replace(tzinfo=UTC).astimezone(zone).date().isoformat()
