"""A campaign's life: draft, publish, pause, resume, cancel, edit.

The close at `sales_end` lives in `close.py`; selling in `couponsvc.orders`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..domain_error import DomainError, say
from ..models import Campaign, Merchant, Store
from ..outbox.emit import emit
from ..principal import Principal, visible
from ..timeutil import to_utc, utcnow
from .data import campaign_event_data
from .settle import void_and_refund

TEXT_FIELDS = frozenset({"title", "description", "city"})
TIME_FIELDS = ("sales_start", "sales_end", "valid_from", "valid_until")
# action -> the statuses it may start from, and the status it leads to
MOVES: dict[str, tuple[tuple[str, ...], str]] = {
    "publish": (("draft",), "active"),
    "pause": (("active",), "paused"),
    "resume": (("paused",), "active"),
    "cancel": (("draft", "active", "paused"), "cancelled"),
}
EDITABLE = ("draft", *Campaign.OPEN)  # a draft wholly; an open one only OPEN_FIELDS
OPEN_FIELDS = TEXT_FIELDS | {"sales_end"}  # sales_end only later


def possible_actions(campaign: Campaign) -> list[str]:
    """The moves a campaign's status allows now, in MOVES' order (what a page offers)."""
    return [action for action, (sources, _) in MOVES.items() if campaign.status in sources]


def figures_can_change(campaign: Campaign, now: datetime) -> bool:
    """Whether the campaign's figures may still move without an action on it: coupons sold
    while it is on sale, redeemed while they are valid (a paused or ended campaign's coupons
    are honoured until `valid_until`). A draft's, a failed or a cancelled campaign's are final."""
    if campaign.status == "active":
        return True
    return campaign.status in ("paused", "ended") and now < to_utc(campaign.valid_until)


def get_campaign(session: Session, principal: Principal, campaign_id: str, *,
                 for_update: bool = False) -> Campaign:
    return visible(session, principal, Campaign, campaign_id, name="campaign", for_update=for_update)


def create_campaign(session: Session, principal: Principal, fields: dict[str, Any]) -> Campaign:
    merchant = session.get(Merchant, fields["merchant_id"])
    if merchant is None or not principal.sees(merchant.id):
        raise DomainError("validation_error", "no such merchant",
                          errors={"merchant_id": ["No such merchant."]})
    fields = dict(fields)
    store_ids = fields.pop("store_ids", None) or []
    for name in TIME_FIELDS:
        fields[name] = to_utc(fields[name])
    fields.setdefault("city", merchant.city)
    campaign = Campaign(**fields, status="draft", sold=0, issued=0)
    _check(campaign)
    campaign.stores = _stores(session, merchant.id, store_ids)
    session.add(campaign)
    session.flush()
    return campaign


def update_campaign(session: Session, campaign: Campaign, changes: dict[str, Any]) -> Campaign:
    changes = dict(changes)
    for name in TIME_FIELDS:
        if name in changes:
            changes[name] = to_utc(changes[name])
    if campaign.status in Campaign.OPEN:
        allowed = OPEN_FIELDS
        refused = sorted(set(changes) - allowed)
        if refused:
            raise DomainError("invalid_state",
                              f"a published campaign only takes {', '.join(sorted(allowed))}; "
                              f"not {', '.join(refused)}")
        if "sales_end" in changes and changes["sales_end"] <= campaign.sales_end:
            raise DomainError("validation_error", "sales_end may only move later once published",
                              errors={"sales_end": ["Must be later than the current sales_end."]})
    elif campaign.status not in EDITABLE:
        raise DomainError("invalid_state", say("a campaign that is %(status)s cannot be edited",
                                               status=campaign.status))
    store_ids = changes.pop("store_ids", None)
    for name, value in changes.items():
        setattr(campaign, name, value)
    _check(campaign)
    if store_ids is not None:
        campaign.stores = _stores(session, campaign.merchant_id, store_ids)
    session.flush()
    return campaign


def publish(session: Session, campaign: Campaign, signing_kid: str) -> Campaign:
    now = utcnow()
    _transition(session, campaign, *MOVES["publish"])
    if campaign.sales_end <= now or campaign.valid_until <= now:
        raise DomainError("invalid_state", "the campaign's sales or validity have already ended")
    campaign.published_at = now
    campaign.qr_kid = signing_kid
    emit(session, "campaign.published", merchant_id=campaign.merchant_id,
         data=campaign_event_data(campaign))
    return campaign


def pause(session: Session, campaign: Campaign) -> Campaign:
    return _transition(session, campaign, *MOVES["pause"])


def resume(session: Session, campaign: Campaign) -> Campaign:
    return _transition(session, campaign, *MOVES["resume"])


def cancel(session: Session, campaign: Campaign, reason: str = "") -> Campaign:
    was = campaign.status
    _transition(session, campaign, *MOVES["cancel"])
    campaign.closed_at = utcnow()
    settled = void_and_refund(session, campaign, "campaign_cancelled") if was != "draft" else None
    data = campaign_event_data(campaign) | {"reason": reason}
    if settled is not None:
        data |= {"coupons_voided": settled.coupons_voided, "orders_refund_pending": settled.orders}
    emit(session, "campaign.cancelled", merchant_id=campaign.merchant_id, data=data)
    return campaign


def _transition(session: Session, campaign: Campaign, sources: tuple[str, ...], target: str) -> Campaign:
    """Move the status with a conditional UPDATE, so two racing requests cannot both win."""
    moved = session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id, Campaign.status.in_(sources))
        .values(status=target, updated_at=utcnow())
        .returning(Campaign.id)
        .execution_options(synchronize_session=False)
    ).first()
    session.refresh(campaign)
    if moved is None:
        raise DomainError("invalid_state", say("a campaign that is %(status)s cannot become "
                                               "%(target)s", status=campaign.status, target=target))
    return campaign


def _check(campaign: Campaign) -> None:
    errors: dict[str, list[str]] = {}

    def refuse(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    if campaign.list_price is not None and campaign.list_price < campaign.price:
        refuse("list_price", "Must not be lower than price.")
    if _before_or_equal(campaign.sales_end, campaign.sales_start):
        refuse("sales_end", "Must be after sales_start.")
    if _before_or_equal(campaign.valid_until, campaign.valid_from):
        refuse("valid_until", "Must be after valid_from.")
    if _before_or_equal(campaign.valid_until, campaign.sales_start):
        refuse("valid_until", "Must be after sales_start.")
    if campaign.max_coupons is not None and campaign.max_coupons < campaign.min_group_size:
        refuse("max_coupons", "Must be at least min_group_size, or the deal could never tip.")
    if errors:
        raise DomainError("validation_error", "; ".join(
            f"{field}: {' '.join(messages)}" for field, messages in errors.items()), errors=errors)


def _before_or_equal(a: datetime, b: datetime) -> bool:
    return to_utc(a) <= to_utc(b)


def _stores(session: Session, merchant_id: str, store_ids: list[str]) -> list[Store]:
    if not store_ids:
        return []
    stores = session.execute(
        select(Store).where(Store.id.in_(set(store_ids)), Store.merchant_id == merchant_id)
    ).scalars().all()
    missing = sorted(set(store_ids) - {store.id for store in stores})
    if missing:
        raise DomainError("validation_error", "unknown stores: " + ", ".join(missing),
                          errors={"store_ids": [f"No such store: {sid}." for sid in missing]})
    return list(stores)
