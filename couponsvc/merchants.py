"""Merchants and their stores."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app
from sqlalchemy.orm import Session

from .errors import DomainError
from .models import Merchant, Store
from .principal import Principal, visible


def create_merchant(session: Session, *, name: str, city: str, timezone: str = "Asia/Shanghai",
                    reversal_window: int | None = None) -> Merchant:
    _check_timezone(timezone)
    _check_window(reversal_window)
    merchant = Merchant(name=name, city=city, timezone=timezone, reversal_window=reversal_window)
    session.add(merchant)
    session.flush()
    return merchant


def update_merchant(session: Session, merchant: Merchant, changes: dict) -> Merchant:
    if "timezone" in changes:
        _check_timezone(changes["timezone"])
    if "reversal_window" in changes:
        _check_window(changes["reversal_window"])
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


def reversal_window(merchant: Merchant) -> int:
    """Seconds a redemption stays reversible: the merchant's own, capped by the operator's."""
    config = current_app.config
    window = merchant.reversal_window
    if window is None:
        window = config["DEFAULT_REVERSAL_WINDOW"]
    return min(window, config["MAX_REVERSAL_WINDOW"])


def _check_timezone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise DomainError("validation_error", f"unknown time zone {name!r}",
                          errors={"timezone": ["Unknown IANA time zone."]}) from None


def _check_window(seconds: int | None) -> None:
    if seconds is None:
        return
    ceiling = current_app.config["MAX_REVERSAL_WINDOW"]
    if seconds > ceiling:
        raise DomainError("validation_error", f"reversal_window may not exceed {ceiling} seconds",
                          errors={"reversal_window": [f"Must be at most {ceiling}."]})
