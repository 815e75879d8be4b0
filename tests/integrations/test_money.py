from decimal import Decimal

import pytest

from integrations.money import format_money, to_major


@pytest.mark.parametrize(("minor", "currency", "text"), [
    (3990, "CNY", "¥39.90"), (6800, "CNY", "¥68.00"), (2810, "CNY", "¥28.10"),
    (5, "CNY", "¥0.05"), (123456, "USD", "$1,234.56"), (500, "JPY", "¥500"),
    (99, "CHF", "0.99 CHF")])
def test_format_money(minor, currency, text):
    assert format_money(minor, currency) == text


def test_to_major_is_exact():
    assert to_major(3990) == Decimal("39.90")
    assert to_major(1, "JPY") == Decimal("1")
