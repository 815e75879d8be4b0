"""Closing campaigns whose sales have ended: `ended` when tipped, `failed` when not."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, select, update
from sqlalchemy.orm import Session

from ..models import Campaign
from ..outbox.emit import emit
from ..timeutil import utcnow
from .data import campaign_event_data
from .settle import void_and_refund


def due_campaign_ids(session: Session, now: datetime | None = None) -> list[str]:
    now = now or utcnow()
    return list(session.execute(
        select(Campaign.id).where(Campaign.status.in_(Campaign.OPEN), Campaign.sales_end <= now)
        .order_by(Campaign.sales_end)
    ).scalars())


def close_campaign(session: Session, campaign_id: str, now: datetime | None = None) -> str | None:
    """Close one due campaign; return its new status, or None if it was not due (or taken)."""
    now = now or utcnow()
    claimed = session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status.in_(Campaign.OPEN),
               Campaign.sales_end <= now)
        .values(status=case((Campaign.tipped_at.is_(None), "failed"), else_="ended"),
                closed_at=now, updated_at=now)
        .returning(Campaign.status)
        .execution_options(synchronize_session=False)
    ).first()
    if claimed is None:
        return None
    status = claimed.status
    campaign = session.get(Campaign, campaign_id, populate_existing=True)
    data = campaign_event_data(campaign)
    if status == "failed":
        settled = void_and_refund(session, campaign, "campaign_failed")
        data |= {"coupons_voided": settled.coupons_voided, "orders_refund_pending": settled.orders}
    emit(session, f"campaign.{status}", merchant_id=campaign.merchant_id, data=data)
    return status
