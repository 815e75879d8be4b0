"""Money in integer minor units, as events carry it: formatted for people, converted for ERPs."""

from __future__ import annotations

from decimal import Decimal

_EXPONENTS = {"JPY": 0, "KRW": 0, "VND": 0}
_SYMBOLS = {"CNY": "¥", "HKD": "HK$", "TWD": "NT$", "USD": "$", "EUR": "€", "GBP": "£",
            "JPY": "¥"}


def to_major(minor: int, currency: str = "CNY") -> Decimal:
    """3990 CNY → Decimal("39.90")."""
    exponent = _EXPONENTS.get(currency.upper(), 2)
    return Decimal(int(minor)).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent))


def format_money(minor: int, currency: str = "CNY") -> str:
    """3990 CNY → "¥39.90"; a currency without a symbol here → "39.90 CHF"."""
    amount = f"{to_major(minor, currency):,}"
    symbol = _SYMBOLS.get(currency.upper())
    return f"{symbol}{amount}" if symbol else f"{amount} {currency.upper()}"
