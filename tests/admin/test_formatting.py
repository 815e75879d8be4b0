"""Money as ¥39.90, times in the merchant's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from couponsvc.admin.formatting import day, localtime, money
from couponsvc.extensions import db
from couponsvc.models import AdminSession


@pytest.mark.parametrize(("value", "currency", "shown"), [
    (3990, "CNY", "¥39.90"), (0, "CNY", "¥0.00"), (5, "CNY", "¥0.05"), (-250, "CNY", "-¥2.50"),
    (123456789, "CNY", "¥1,234,567.89"), (Decimal("39.9"), "CNY", "¥39.90"),
    (Decimal("0.005"), "CNY", "¥0.01"), (3990, "USD", "39.90 USD"), (None, "CNY", ""),
    ("not money", "CNY", "not money"),
])
def test_money(value, currency, shown):
    assert money(value, currency) == shown


def test_money_defaults_to_yuan():
    assert money(3990) == "¥39.90"


def test_times_are_shown_in_the_time_zone_asked_for(app):
    moment = datetime(2026, 1, 31, 18, 30, tzinfo=UTC)
    with app.test_request_context():
        assert localtime(moment) == "2026-02-01 02:30"  # Asia/Shanghai by default
        assert localtime(moment, "Asia/Urumqi") == "2026-02-01 00:30"
        assert localtime(moment, "Not/AZone") == "2026-02-01 02:30"
        assert localtime(datetime(2026, 1, 31, 18, 30)) == "2026-02-01 02:30"  # naive is UTC
        assert day(moment) == "2026-02-01" and day(date(2026, 3, 1)) == "2026-03-01"
        assert localtime(None) == "" and day(None) == ""


def test_a_managers_pages_use_their_merchants_time_zone(app, client, manager_of, signed_in):
    merchant = client.merchant(timezone="Asia/Urumqi")
    page = signed_in(app.test_client(), manager_of(merchant))
    text = page.get("/admin/sessions").get_data(as_text=True)
    with app.app_context():
        opened = db.session.scalar(select(AdminSession.created_at))
    assert localtime(opened, "Asia/Urumqi") in text
    assert localtime(opened, "Asia/Shanghai") not in text
