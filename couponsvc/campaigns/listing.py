"""Which campaigns a list shows: `GET /campaigns` and the admin's campaign list."""

from __future__ import annotations

from sqlalchemy import Select, select

from ..models import Campaign


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
