"""Which campaigns a list shows (`GET /campaigns`, the admin's campaign list), and the
merchants such a list names."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Row, Select, select
from sqlalchemy.orm import Session

from ..models import Campaign, Merchant


def campaigns_query(merchant_scope: str | None, *, merchant_id: str | None = None,
                    status: str | None = None, city: str | None = None) -> Select:
    """The campaigns of `merchant_scope` (None: every merchant's, for the platform) with
    these exact values; the caller orders and pages it by `Campaign.id`."""
    query = select(Campaign)
    if merchant_scope is not None:
        query = query.where(Campaign.merchant_id == merchant_scope)
    if merchant_id:
        query = query.where(Campaign.merchant_id == merchant_id)
    if status:
        query = query.where(Campaign.status == status)
    if city:
        query = query.where(Campaign.city == city)
    return query


def merchants_named(session: Session, merchant_scope: str | None, *,
                    ids: Iterable[str] | None = None, limit: int = 1000) -> dict[str, Row]:
    """id -> (name, timezone) of the merchants a list names or filters by: those of `ids`,
    else every one in scope (by name, at most `limit`)."""
    query = select(Merchant.id, Merchant.name, Merchant.timezone)
    if merchant_scope is not None:
        query = query.where(Merchant.id == merchant_scope)
    if ids is not None:
        wanted = set(ids)
        if not wanted:
            return {}
        query = query.where(Merchant.id.in_(wanted))
    rows = session.execute(query.order_by(Merchant.name, Merchant.id).limit(limit)).all()
    return {row.id: row for row in rows}
