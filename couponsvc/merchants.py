"""Merchants and their stores."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session

from .domain_error import DomainError, say
from .models import Merchant, Store
from .principal import Principal, visible
from .promotion.deal_link import template_problems


def create_merchant(session: Session, *, name: str, city: str, timezone: str = "Asia/Shanghai",
                    reversal_window: int | None = None, deal_url_template: str | None = None,
                    max_window: int) -> Merchant:
    """`max_window` is the operator's ceiling on reversal windows (COUPONSVC_MAX_REVERSAL_WINDOW)."""
    _check_timezone(timezone)
    _check_window(reversal_window, max_window)
    _check_deal_url_template(deal_url_template)
    merchant = Merchant(name=name, city=city, timezone=timezone, reversal_window=reversal_window,
                        deal_url_template=deal_url_template)
    session.add(merchant)
    session.flush()
    return merchant


def update_merchant(session: Session, merchant: Merchant, changes: dict, *, max_window: int) -> Merchant:
    if "timezone" in changes:
        _check_timezone(changes["timezone"])
    if "reversal_window" in changes:
        _check_window(changes["reversal_window"], max_window)
    if "deal_url_template" in changes:
        _check_deal_url_template(changes["deal_url_template"])
    for name, value in changes.items():
        setattr(merchant, name, value)
    session.flush()
    return merchant


def get_merchant(session: Session, principal: Principal, merchant_id: str) -> Merchant:
    return visible(session, principal, Merchant, merchant_id, name="merchant")


def create_store(session: Session, merchant: Merchant, *, name: str, city: str = "",
                 address: str = "") -> Store:
    store = Store(merchant_id=merchant.id, name=name, city=city or merchant.city, address=address)
    session.add(store)
    session.flush()
    return store


def update_store(session: Session, store: Store, *, name: str, city: str = "", address: str = "") -> Store:
    """Rename or move a store (found through `visible`); an empty city is its merchant's, as
    when it was created."""
    store.name, store.address = name, address
    store.city = city or session.get(Merchant, store.merchant_id).city
    session.flush()
    return store


def reversal_window(merchant: Merchant, *, default: int, ceiling: int) -> int:
    """Seconds a redemption stays reversible: the merchant's own (else the operator's
    `default`), capped by the operator's `ceiling`."""
    window = merchant.reversal_window
    if window is None:
        window = default
    return min(window, ceiling)


def _check_timezone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise DomainError("validation_error", f"unknown time zone {name!r}",
                          errors={"timezone": ["Unknown IANA time zone."]}) from None


def _check_deal_url_template(template: str | None) -> None:
    problems = template_problems(template) if template is not None else []
    if problems:
        raise DomainError("validation_error", say("deal_url_template cannot make deal links"),
                          errors={"deal_url_template": problems})


def _check_window(seconds: int | None, ceiling: int) -> None:
    if seconds is None:
        return
    if seconds > ceiling:
        raise DomainError("validation_error", f"reversal_window may not exceed {ceiling} seconds",
                          errors={"reversal_window": [f"Must be at most {ceiling}."]})
