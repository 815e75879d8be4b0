"""Writing new coupons: unique random codes, retried on the rare collision."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from . import codes
from .models import Campaign, Coupon

_COUPONS = Coupon.__table__


def coupon_insert(session: Session):
    """INSERT ... ON CONFLICT (code) DO NOTHING for the session's dialect."""
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(_COUPONS).on_conflict_do_nothing(index_elements=["code"])


def coupon_row(campaign: Campaign, *, status: str, order_id: str | None, now: datetime) -> dict:
    """Every column of a new coupon of `campaign` but its code."""
    return {
        "campaign_id": campaign.id, "merchant_id": campaign.merchant_id, "order_id": order_id,
        "status": status, "uses_total": campaign.uses_per_coupon,
        "uses_left": campaign.uses_per_coupon, "valid_from": campaign.valid_from,
        "valid_until": campaign.valid_until, "seq": 1, "created_at": now, "voided_at": None,
    }


def insert_coupons(session: Session, template: dict, count: int) -> list[str]:
    """Insert `count` coupons built from `template`; return their codes in order."""
    inserted: list[str] = []
    statement = coupon_insert(session).returning(_COUPONS.c.code)
    while len(inserted) < count:
        batch = codes.generate_many(count - len(inserted))
        result = session.execute(statement, [{**template, "code": code} for code in batch])
        inserted.extend(result.scalars().all())
    return inserted
