"""The dashboard: live deals and their way to the tipping point, sold and redeemed today in
the merchant's time zone, thirty days of redemptions, deliveries that need attention; an
operator sees every merchant (or one), a manager their own."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from couponsvc.admin import figures as figures_module
from couponsvc.campaigns import dashboard
from couponsvc.extensions import db
from couponsvc.models import Delivery, Event, Integration, Merchant, Redemption
from tests.factories import Shop

EN = {"Accept-Language": "en"}


@pytest.fixture(autouse=True)
def _figures_never_kept(app):
    app.config["ADMIN_FIGURES_SLOW"] = None


def text_of(answer) -> str:
    return answer.get_data(as_text=True)


def figure(html: str, name: str) -> int:
    return int(re.search(rf'data-figure="{name}">(\d+)<', html).group(1))


def deals_shown(html: str) -> set[str]:
    table = html.split('class="list deals"')[1] if 'class="list deals"' in html else ""
    return set(re.findall(r'href="/admin/campaigns/(cmp_[0-9A-Z]+)"', table))


@pytest.fixture
def shops(client):
    return Shop(client, min_group_size=5), Shop(client)


def test_the_dashboard_is_the_admins_home(app, shops, manager_of, signed_in):
    a, _ = shops
    page = signed_in(app.test_client(), manager_of(a.merchant))
    home = page.get("/admin/")
    assert home.status_code == 200 and 'data-figure="live"' in text_of(home)
    assert page.get("/admin").status_code in (200, 301, 308)
    assert app.test_client().get("/admin/").status_code == 302  # signed out: to the sign-in page


def test_an_operator_sees_every_merchant_or_one_and_a_manager_their_own(app, client, shops, operator,
                                                                        manager_of, signed_in):
    a, b = shops
    draft = client.campaign(a.merchant["id"], publish=False)
    everyone = signed_in(app.test_client(), operator)
    html = text_of(everyone.get("/admin/"))
    assert deals_shown(html) == {a.campaign["id"], b.campaign["id"]} and figure(html, "live") == 2
    assert draft["id"] not in deals_shown(html)  # a draft is not live
    assert a.merchant["name"] in html and b.merchant["name"] in html
    one = text_of(everyone.get(f"/admin/?merchant_id={b.merchant['id']}"))
    assert deals_shown(one) == {b.campaign["id"]} and figure(one, "live") == 1
    assert everyone.get("/admin/?merchant_id=mer_01JD8Y3K2Q9V7M4T6X0A5B8C1D").status_code == 404

    own = signed_in(app.test_client(), manager_of(a.merchant))
    mine = text_of(own.get("/admin/"))
    assert deals_shown(mine) == {a.campaign["id"]} and figure(mine, "live") == 1
    assert 'name="merchant_id"' not in mine  # no merchant filter for a manager
    widened = text_of(own.get(f"/admin/?merchant_id={b.merchant['id']}"))
    assert deals_shown(widened) == {a.campaign["id"]}


def test_a_deal_shows_how_far_it_is_from_tipping(app, shops, manager_of, signed_in):
    a, _ = shops
    a.coupons(2)
    html = text_of(signed_in(app.test_client(), manager_of(a.merchant)).get("/admin/", headers=EN))
    assert 'aria-valuemax="5" aria-valuenow="2"' in html and "width: 40.0%" in html
    assert "2 of 5 sold; 3 to go" in html
    a.coupons(3)
    html = text_of(signed_in(app.test_client(), manager_of(a.merchant)).get("/admin/", headers=EN))
    assert "width: 100.0%" in html and "badge-tipped" in html


def test_sold_and_redeemed_today_and_the_chart(app, shops, operator, manager_of, signed_in):
    a, b = shops
    coupons = a.coupons(5) + b.coupons(1)  # a tips at 5
    for coupon in coupons[:2]:
        assert a.redeem(coupon["code"]).status_code in (200, 201)
    html = text_of(signed_in(app.test_client(), operator).get("/admin/"))
    assert figure(html, "sold-today") == 6 and figure(html, "redeemed-today") == 2
    assert html.count('class="bar"') == 30 and html.count('<tr><td data-label=') == 30
    own = text_of(signed_in(app.test_client(), manager_of(b.merchant)).get("/admin/"))
    assert figure(own, "sold-today") == 1 and figure(own, "redeemed-today") == 0


def test_days_are_the_merchants_own(app, client, shops):
    """Redemptions at 23:30 and 00:30 Shanghai time fall on two days there, one day in UTC;
    a Tokyo merchant's day starts an hour earlier still."""
    _, a = shops
    tokyo = Shop(client)
    codes = [c["code"] for c in a.coupons(3)] + [tokyo.coupons(1)[0]["code"]]
    for code in codes[:3]:
        assert a.redeem(code).status_code in (200, 201)
    assert tokyo.redeem(codes[3]).status_code in (200, 201)
    now = datetime(2026, 3, 10, 17, 0, tzinfo=UTC)  # 01:00 on the 11th in Shanghai, 02:00 in Tokyo
    with app.app_context():
        db.session.execute(update(Merchant).where(Merchant.id == tokyo.merchant["id"])
                           .values(timezone="Asia/Tokyo"))
        for code, at in zip(codes, ("15:30", "16:30", "16:50", "14:30"), strict=True):
            hour, minute = map(int, at.split(":"))
            db.session.execute(update(Redemption).where(Redemption.coupon_code == code)
                               .values(redeemed_at=now.replace(hour=hour, minute=minute)))
        db.session.execute(update(Redemption).where(Redemption.coupon_code == codes[2])
                           .values(reversed_at=now))  # a reversed redemption is not counted
        db.session.commit()
        shanghai = dashboard.activity(db.session, a.merchant["id"], now=now)
        assert shanghai.today == "2026-03-11" and shanghai.redeemed_today == 1
        assert shanghai.days[-2:] == [("2026-03-10", 1), ("2026-03-11", 1)] and len(shanghai.days) == 30
        everyone = dashboard.activity(db.session, None, now=now)
        # Tokyo: 14:30 UTC is 23:30 on the 10th
        assert everyone.days[-2:] == [("2026-03-10", 2), ("2026-03-11", 1)]
        assert everyone.redeemed_today == 1


def test_deliveries_that_need_attention_are_counted_and_linked(app, shops, operator, manager_of, signed_in):
    a, b = shops
    with app.app_context():
        integration = Integration(merchant_id=a.merchant["id"], adapter="webhook", config={}, events=[])
        db.session.add(integration)
        db.session.flush()
        for n, status in enumerate(("dead", "dead", "failed", "succeeded")):
            event = Event(id=f"evt_dashboard{n}", type="ping", merchant_id=a.merchant["id"], data={})
            db.session.add(event)
            db.session.flush()
            db.session.add(Delivery(event_seq=event.seq, integration_id=integration.id,
                                    merchant_id=a.merchant["id"], status=status))
        db.session.commit()
        assert dashboard.deliveries_needing_attention(db.session, None) == {"dead": 2, "retrying": 1}
    html = text_of(signed_in(app.test_client(), operator).get("/admin/", headers=EN))
    assert figure(html, "deliveries") == 3 and "2 failed for good, 1 retrying" in html
    assert 'href="/admin/integrations"' in html and "stat attention" in html
    other = text_of(signed_in(app.test_client(), manager_of(b.merchant)).get("/admin/"))
    assert figure(other, "deliveries") == 0 and "stat attention" not in other


def test_slow_figures_are_kept_a_minute_and_say_when_they_were_counted(app, shops, manager_of, signed_in):
    _, a = shops
    app.config["ADMIN_FIGURES_SLOW"] = -1  # whatever the time it took: kept
    page = signed_in(app.test_client(), manager_of(a.merchant))
    code = a.coupons(1)[0]["code"]
    first = text_of(page.get("/admin/", headers=EN))
    assert figure(first, "redeemed-today") == 0 and "Counted at" not in first
    assert a.redeem(code).status_code in (200, 201)
    kept = text_of(page.get("/admin/", headers=EN))
    assert figure(kept, "redeemed-today") == 0 and "Counted at" in kept
    app.extensions.pop(figures_module._EXTENSION)  # as a minute later
    fresh = text_of(page.get("/admin/", headers=EN))
    assert figure(fresh, "redeemed-today") == 1


def test_an_action_forgets_the_campaigns_kept_figures(app, shops, manager_of, signed_in):
    _, a = shops
    app.config["ADMIN_FIGURES_SLOW"] = -1
    a.coupons(2)
    page = signed_in(app.test_client(), manager_of(a.merchant))
    url = f"/admin/campaigns/{a.campaign['id']}"
    assert figure(text_of(page.get(url)), "coupons-active") == 2
    assert page.post(f"{url}/cancel", {"confirm": "yes"}).status_code == 302
    html = text_of(page.get(url))
    assert figure(html, "coupons-active") == 0 and figure(html, "coupons-voided") == 2
