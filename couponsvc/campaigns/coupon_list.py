"""A campaign's coupons, a page at a time in code order, and whether it hands out codes
in bulk (distribution campaigns: coupons with no order, printed or sent out)."""

from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from .. import codes
from ..bulk import KIND as BULK_KIND
from ..domain_error import DomainError
from ..models import Campaign, Coupon, Job

UNUSED = ("pending", "active")


def coupons_page(session: Session, campaign: Campaign, *, after: str | None, limit: int,
                 bulk_only: bool = False) -> tuple[list[Coupon], str | None]:
    """Up to `limit` coupons of `campaign` after the code `after`, and the cursor of the
    next page (None on the last). `bulk_only`: the unused codes issued with no order, the
    ones a distribution campaign prints."""
    query = select(Coupon).where(Coupon.campaign_id == campaign.id)
    if bulk_only:
        query = query.where(Coupon.order_id.is_(None), Coupon.status.in_(UNUSED))
    if after:
        query = query.where(Coupon.code > _code_cursor(after))
    rows = list(session.execute(query.order_by(Coupon.code).limit(limit + 1)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1].code if more else None


def has_bulk(session: Session, campaign: Campaign) -> bool:
    """Whether codes of this campaign were ever requested in bulk."""
    return bool(session.execute(select(exists().where(
        Job.campaign_id == campaign.id, Job.kind == BULK_KIND))).scalar())


def _code_cursor(after: str) -> str:
    try:
        return codes.canonical(after)
    except codes.CodeError:
        raise DomainError("validation_error", "after is not a cursor this list gave",
                          errors={"after": ["Not a valid cursor."]}) from None
