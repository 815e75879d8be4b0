"""Jinja filters of the pages: money as `¥39.90`, times in the merchant's time zone.

`money(value, currency="CNY")`: an int is an amount in cents (fen), as the models and the
API keep prices (`Campaign.price`); a Decimal or float is in yuan. `localtime(dt, tz)`
shows an aware datetime in `tz` (a merchant's `timezone`), by default the signed-in
manager's merchant's, or Asia/Shanghai for an operator (`guard.current_person` sets
`g.timezone`). `date` is the day alone.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Flask, g, has_app_context

DEFAULT_TIMEZONE = "Asia/Shanghai"
SYMBOLS = {"CNY": "¥", "RMB": "¥"}


def init_app(app: Flask) -> None:
    app.add_template_filter(money)
    app.add_template_filter(localtime)
    app.add_template_filter(day, "date")


def money(value: int | Decimal | float | str | None, currency: str | None = "CNY") -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        amount = Decimal(value) / 100
    else:
        try:
            amount = Decimal(str(value))
        except ArithmeticError:
            return str(value)
    amount = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    sign = "-" if amount < 0 else ""
    digits = f"{abs(amount):,.2f}"
    currency = (currency or "CNY").upper()
    symbol = SYMBOLS.get(currency)
    return f"{sign}{symbol}{digits}" if symbol else f"{sign}{digits} {currency}"


def _zone(tz: str | None) -> ZoneInfo:
    name = tz or (g.get("timezone") if has_app_context() else None) or DEFAULT_TIMEZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIMEZONE)


def localtime(value: datetime | None, tz: str | None = None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(_zone(tz)).strftime(fmt)


def day(value: datetime | date | None, tz: str | None = None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return localtime(value, tz, "%Y-%m-%d")
    return value.isoformat()
