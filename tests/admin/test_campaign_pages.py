"""The campaign pages: list (filters, paging), create and edit forms (the API's validation,
inline), publish / pause / resume / cancel with a confirmation, the campaign's page, its
orders and coupons, the CSV export, the print sheet of QR coupons; CSRF; and another
merchant's campaign is a 404 page for every GET and POST."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
import zxingcpp
from PIL import Image, ImageDraw
from rq import Queue, SimpleWorker
from sqlalchemy import select, update

from couponsvc import codes
from couponsvc.admin import campaigns as campaign_pages
from couponsvc.extensions import db
from couponsvc.jobs import runner
from couponsvc.models import AdminSession, AuditEntry, Campaign
from couponsvc.qr import payload as qr_payload
from couponsvc.qr_keys import keyring
from couponsvc.timeutil import to_utc, utcnow
from tests.factories import Shop, iso, now

EN = {"Accept-Language": "en"}


@pytest.fixture(autouse=True)
def _figures_never_kept(app):
    app.config["ADMIN_FIGURES_SLOW"] = None


@pytest.fixture
def shops(client):
    """Two merchants, each with two stores, keys and a live deal."""
    return Shop(client), Shop(client)


def text_of(answer) -> str:
    return answer.get_data(as_text=True)


def audit_actions(app, target_id: str) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEntry.action).where(AuditEntry.target_id == target_id)
                                       .order_by(AuditEntry.at)))


def stored(app, campaign_id: str) -> Campaign:
    with app.app_context():
        campaign = db.session.get(Campaign, campaign_id)
        db.session.expunge(campaign)
        return campaign


def form_of(**fields) -> dict:
    """A valid create form, as a person fills it in (local times of Asia/Shanghai)."""
    start = (datetime.now(UTC) + timedelta(hours=8)).replace(second=0, microsecond=0)
    local = "%Y-%m-%dT%H:%M"
    return {"title": "三人火锅套餐", "description": "周末可用", "price": "39.90", "list_price": "68",
            "currency": "CNY", "min_group_size": "3", "max_coupons": "", "per_customer_limit": "2",
            "uses_per_coupon": "1",
            "sales_start": (start - timedelta(hours=1)).strftime(local),
            "sales_end": (start + timedelta(days=7)).strftime(local),
            "valid_from": (start - timedelta(hours=1)).strftime(local),
            "valid_until": (start + timedelta(days=30)).strftime(local), **fields}


def figures_of(text: str) -> dict[str, str]:
    """A page's figures by their `data-figure` names."""
    return dict(re.findall(r'data-figure="([a-z-]+)">([0-9]+)<', text))


def error_of(page_text: str, field: str) -> str | None:
    found = re.search(rf'id="f-{field}-error">([^<]*)<', page_text)
    return found.group(1).strip() if found else None


# ---------------------------------------------------------------- the list


def test_an_operator_lists_every_merchant_and_a_manager_only_theirs(app, shops, operator, manager_of,
                                                                    signed_in):
    a, b = shops
    everyone = text_of(signed_in(app.test_client(), operator).get("/admin/campaigns"))
    assert a.campaign["id"] in everyone and b.campaign["id"] in everyone
    own = signed_in(app.test_client(), manager_of(a.merchant))
    listing = text_of(own.get("/admin/campaigns"))
    assert a.campaign["id"] in listing and b.campaign["id"] not in listing
    # a manager's merchant filter cannot widen the list
    widened = text_of(own.get(f"/admin/campaigns?merchant_id={b.merchant['id']}"))
    assert b.campaign["id"] not in widened and a.campaign["id"] in widened


def test_filters_by_status_city_and_merchant(app, client, shops, operator, signed_in):
    a, b = shops
    draft = client.campaign(a.merchant["id"], publish=False, city="上饶")
    page = signed_in(app.test_client(), operator)
    drafts = text_of(page.get("/admin/campaigns?status=draft"))
    assert draft["id"] in drafts and a.campaign["id"] not in drafts
    in_city = text_of(page.get("/admin/campaigns", query_string={"city": "上饶"}))
    assert draft["id"] in in_city and b.campaign["id"] not in in_city
    of_b = text_of(page.get(f"/admin/campaigns?merchant_id={b.merchant['id']}"))
    assert b.campaign["id"] in of_b and a.campaign["id"] not in of_b and draft["id"] not in of_b


def test_a_filter_the_api_refuses_is_told_next_to_it(app, shops, operator, signed_in):
    answer = signed_in(app.test_client(), operator).get("/admin/campaigns?status=bogus", headers=EN)
    assert answer.status_code == 422
    assert error_of(text_of(answer), "status") == "Must be one of: draft, active, paused, ended, failed, cancelled."


def test_cursor_paging_reaches_every_campaign_once(app, client, operator, signed_in, monkeypatch):
    monkeypatch.setattr(campaign_pages, "LIST_PAGE", 2)
    shop = Shop(client)
    made = {shop.campaign["id"]} | {client.campaign(shop.merchant["id"], publish=False)["id"]
                                    for _ in range(4)}
    page = signed_in(app.test_client(), operator)
    seen, url = [], "/admin/campaigns"
    while url:
        listing = text_of(page.get(url))
        seen += re.findall(r'href="/admin/campaigns/(cmp_[0-9A-Z]+)"', listing)
        found = re.search(r'href="([^"]+)" rel="next"', listing)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert sorted(seen) == sorted(made) and len(seen) == 5
    assert seen == sorted(seen, reverse=True)  # newest first


def test_a_cursor_not_given_by_the_list_is_a_clear_page(app, shops, operator, signed_in):
    page = signed_in(app.test_client(), operator)
    for after in ("nonsense", "ord_01JD8Y3K2Q9V7M4T6X0A5B8C1D", "'; DROP TABLE campaigns; --"):
        answer = page.get("/admin/campaigns", query_string={"after": after})
        assert answer.status_code == 422, after
        assert 'class="error form-error"' in text_of(answer)


# ---------------------------------------------------------------- create


def test_create_shows_the_apis_field_errors_inline_then_creates(app, client, shops, manager_of, signed_in):
    a, _ = shops
    page = signed_in(app.test_client(), manager_of(a.merchant))
    form = page.get("/admin/campaigns/new", headers=EN)
    assert form.status_code == 200
    for label in ("Title", "Price (yuan)", "Sales start", "Tipping point"):
        assert f">{label}" in text_of(form)
    bad = form_of(title="", min_group_size="0", price="39.9x", list_price="", uses_per_coupon="many")
    refused = page.post("/admin/campaigns/new", bad, headers=EN)
    assert refused.status_code == 422
    shown = text_of(refused)
    # the same messages the API gives for the same values
    api = client.post("campaigns", {"merchant_id": a.merchant["id"], "title": "", "price": 1,
                                    "min_group_size": 0, "uses_per_coupon": "many",
                                    "sales_start": iso(now()), "sales_end": iso(now() + timedelta(days=1)),
                                    "valid_from": iso(now()), "valid_until": iso(now() + timedelta(days=2))},
                      headers=EN).get_json()["errors"]
    for field in ("title", "min_group_size", "uses_per_coupon"):
        assert error_of(shown, field) == " ".join(api[field]), field
    assert error_of(shown, "price") == "Enter an amount in yuan, such as 39.90."
    assert 'value="39.9x"' in shown  # what was typed is shown again
    with app.app_context():
        assert db.session.scalar(select(Campaign.id).where(Campaign.title == "")) is None

    created = page.post("/admin/campaigns/new", form_of(), headers=EN)
    assert created.status_code == 302
    campaign_id = created.location.rsplit("/", 1)[-1]
    campaign = stored(app, campaign_id)
    assert (campaign.title, campaign.price, campaign.list_price, campaign.status) == ("三人火锅套餐", 3990, 6800, "draft")
    assert (campaign.min_group_size, campaign.max_coupons, campaign.per_customer_limit) == (3, None, 2)
    assert campaign.merchant_id == a.merchant["id"] and campaign.city == "赣州"
    typed = datetime.strptime(form_of()["sales_end"], "%Y-%m-%dT%H:%M")
    assert campaign.sales_end == typed.replace(tzinfo=UTC) - timedelta(hours=8)  # Asia/Shanghai
    assert audit_actions(app, campaign_id) == ["campaign.created"]


def test_a_rule_of_the_campaign_is_told_next_to_its_field(app, shops, manager_of, signed_in):
    a, _ = shops
    page = signed_in(app.test_client(), manager_of(a.merchant))
    form = form_of(list_price="10", sales_end=form_of()["sales_start"])
    refused = page.post("/admin/campaigns/new", form, headers=EN)
    assert refused.status_code == 422
    assert error_of(text_of(refused), "list_price") == "Must not be lower than price."
    assert error_of(text_of(refused), "sales_end") == "Must be after sales_start."


def test_errors_are_said_in_chinese_by_default(app, shops, manager_of, signed_in):
    a, _ = shops
    page = signed_in(app.test_client(), manager_of(a.merchant))
    refused = page.post("/admin/campaigns/new", form_of(title="", price=""))
    shown = text_of(refused)
    assert refused.status_code == 422
    assert error_of(shown, "title") and error_of(shown, "title") != "Length must be between 1 and 300."
    assert re.search(r"[\u4e00-\u9fff]", error_of(shown, "price"))
    assert re.search(r"[\u4e00-\u9fff]", error_of(shown, "title"))


def test_an_operator_chooses_the_merchant_and_its_stores(app, shops, operator, signed_in):
    a, b = shops
    page = signed_in(app.test_client(), operator)
    choose = text_of(page.get("/admin/campaigns/new"))
    assert a.merchant["id"] in choose and b.merchant["id"] in choose and 'name="title"' not in choose
    form = text_of(page.get(f"/admin/campaigns/new?merchant_id={b.merchant['id']}"))
    assert b.store["id"] in form and a.store["id"] not in form  # only that merchant's stores
    created = page.post("/admin/campaigns/new", {**form_of(), "merchant_id": b.merchant["id"],
                                                 "store_ids": [b.store["id"]]})
    assert created.status_code == 302
    campaign = stored(app, created.location.rsplit("/", 1)[-1])
    assert campaign.merchant_id == b.merchant["id"]
    with app.app_context():
        assert db.session.get(Campaign, campaign.id).store_ids == [b.store["id"]]
    # another merchant's store is refused as the API refuses it
    refused = page.post("/admin/campaigns/new", {**form_of(), "merchant_id": b.merchant["id"],
                                                 "store_ids": [a.store["id"]]}, headers=EN)
    assert refused.status_code == 422 and "No such store" in error_of(text_of(refused), "store_ids")


def test_a_manager_cannot_create_for_another_merchant(app, shops, manager_of, signed_in):
    a, b = shops
    page = signed_in(app.test_client(), manager_of(a.merchant))
    created = page.post("/admin/campaigns/new", {**form_of(), "merchant_id": b.merchant["id"]})
    assert created.status_code == 302
    assert stored(app, created.location.rsplit("/", 1)[-1]).merchant_id == a.merchant["id"]


# ---------------------------------------------------------------- edit


def test_edit_a_draft_then_only_the_open_fields_once_published(app, client, shops, manager_of, signed_in):
    a, _ = shops
    draft = client.campaign(a.merchant["id"], publish=False)
    page = signed_in(app.test_client(), manager_of(a.merchant))
    form = text_of(page.get(f"/admin/campaigns/{draft['id']}/edit"))
    assert 'name="price" type="text" value="39.90"' in form
    values = dict(re.findall(r'name="([a-z_]+)" type="(?:text|number|datetime-local)" value="([^"]*)"', form))
    saved = page.post(f"/admin/campaigns/{draft['id']}/edit", {**values, "price": "35", "stores_shown": "1"})
    assert saved.status_code == 302
    assert stored(app, draft["id"]).price == 3500
    assert stored(app, draft["id"]).sales_end == datetime.fromisoformat(draft["sales_end"])  # untouched
    assert audit_actions(app, draft["id"]) == ["campaign.updated"]
    unchanged = page.post(f"/admin/campaigns/{draft['id']}/edit", {**values, "price": "35"})
    assert unchanged.status_code == 302 and audit_actions(app, draft["id"]) == ["campaign.updated"]

    live = a.campaign
    form = text_of(page.get(f"/admin/campaigns/{live['id']}/edit"))
    assert 'name="title"' in form and 'name="sales_end"' in form and 'name="price"' not in form
    end = datetime.fromisoformat(live["sales_end"]).astimezone(UTC) + timedelta(hours=8)
    earlier = page.post(f"/admin/campaigns/{live['id']}/edit", {
        "title": "新标题", "sales_end": (end - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")}, headers=EN)
    assert earlier.status_code == 422
    assert error_of(text_of(earlier), "sales_end") == "Must be later than the current sales_end."
    assert stored(app, live["id"]).title == live["title"]
    later = page.post(f"/admin/campaigns/{live['id']}/edit", {
        "title": "新标题", "sales_end": (end + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")})
    assert later.status_code == 302 and stored(app, live["id"]).title == "新标题"
    # a field a published campaign does not take is refused by the domain, not dropped
    sneaky = page.post(f"/admin/campaigns/{live['id']}/edit", {"price": "1"}, headers=EN)
    assert sneaky.status_code == 422 and stored(app, live["id"]).price == 3990


# ---------------------------------------------------------------- lifecycle


def test_each_action_asks_first_then_acts_and_is_audited(app, client, shops, manager_of, signed_in):
    a, _ = shops
    draft = client.campaign(a.merchant["id"], publish=False)
    page = signed_in(app.test_client(), manager_of(a.merchant))
    url = f"/admin/campaigns/{draft['id']}"
    asked = page.get(f"{url}/publish")
    assert asked.status_code == 200 and 'name="confirm" value="yes"' in text_of(asked)
    unconfirmed = page.post(f"{url}/publish")  # no confirm=yes: the question again, nothing done
    assert unconfirmed.status_code == 200 and stored(app, draft["id"]).status == "draft"
    for action, status in (("publish", "active"), ("pause", "paused"), ("resume", "active")):
        done = page.post(f"{url}/{action}", {"confirm": "yes"})
        assert done.status_code == 302 and done.location.endswith(url)
        assert stored(app, draft["id"]).status == status
    assert stored(app, draft["id"]).qr_kid == _current_kid(app)
    too_long = page.post(f"{url}/cancel", {"confirm": "yes", "reason": "x" * 501})
    assert too_long.status_code == 422 and stored(app, draft["id"]).status == "active"
    cancelled = page.post(f"{url}/cancel", {"confirm": "yes", "reason": "店面装修"})
    assert cancelled.status_code == 302 and stored(app, draft["id"]).status == "cancelled"
    assert audit_actions(app, draft["id"]) == ["campaign.publish", "campaign.pause", "campaign.resume",
                                               "campaign.cancel"]
    events = [e for e in client.events(type="campaign.cancelled") if e["data"]["campaign"]["id"] == draft["id"]]
    assert events[0]["data"]["reason"] == "店面装修"


def _current_kid(app) -> str:
    with app.app_context():
        return keyring().current_kid


def test_an_action_the_status_does_not_allow_is_told_and_changes_nothing(app, shops, manager_of, signed_in):
    a, _ = shops
    page = signed_in(app.test_client(), manager_of(a.merchant))
    url = f"/admin/campaigns/{a.campaign['id']}"
    refused = page.post(f"{url}/resume", {"confirm": "yes"}, headers=EN)
    assert refused.status_code == 302
    shown = text_of(page.get(url, headers=EN))
    assert "flash-error" in shown and "cannot become active" in shown
    assert stored(app, a.campaign["id"]).status == "active"
    assert audit_actions(app, a.campaign["id"]) == []


def test_forms_without_their_csrf_token_are_refused(app, client, shops, manager_of, signed_in):
    a, _ = shops
    draft = client.campaign(a.merchant["id"], publish=False)
    page = signed_in(app.test_client(), manager_of(a.merchant))
    for path, data in ((f"/admin/campaigns/{draft['id']}/publish", {"confirm": "yes"}),
                       (f"/admin/campaigns/{draft['id']}/edit", {"title": "x"}),
                       ("/admin/campaigns/new", form_of())):
        refused = page.post(path, data, csrf=False)
        assert refused.status_code == 400, path
        forged = page.post(path, {**data, "csrf_token": "forged"})
        assert forged.status_code == 400, path
    assert stored(app, draft["id"]).status == "draft" and stored(app, draft["id"]).title == draft["title"]
    with app.app_context():
        assert db.session.scalar(select(Campaign.id).where(Campaign.title == "三人火锅套餐")) is None


# ---------------------------------------------------------------- another merchant's campaign


def test_another_merchants_campaign_is_not_found_for_every_page_and_action(app, client, shops, manager_of,
                                                                           signed_in):
    a, b = shops
    foreign = client.campaign(b.merchant["id"], publish=False)
    page = signed_in(app.test_client(), manager_of(a.merchant))
    for campaign_id in (foreign["id"], b.campaign["id"], "cmp_01JD8Y3K2Q9V7M4T6X0A5B8C1D"):
        url = f"/admin/campaigns/{campaign_id}"
        for suffix in ("", "/edit", "/orders", "/coupons", "/coupons.csv", "/print", "/publish", "/cancel"):
            assert page.get(url + suffix).status_code == 404, url + suffix
        for action in ("publish", "pause", "cancel"):
            assert page.post(f"{url}/{action}", {"confirm": "yes"}).status_code == 404
        assert page.post(f"{url}/edit", {"title": "taken over"}).status_code == 404
    assert stored(app, foreign["id"]).status == "draft" and stored(app, foreign["id"]).title == foreign["title"]
    assert stored(app, b.campaign["id"]).status == "active"
    with app.app_context():
        assert not db.session.scalars(select(AuditEntry).where(AuditEntry.action.like("campaign.%"))).all()


# ---------------------------------------------------------------- the campaign's page


def test_the_campaign_page_shows_its_figures_orders_and_coupons(app, client, shops, operator, signed_in):
    a, _ = shops
    coupons = a.coupons(3, customer_ref="张三")
    assert a.redeem(coupons[0]["code"]).status_code == 201
    page = signed_in(app.test_client(), operator)
    shown = text_of(page.get(f"/admin/campaigns/{a.campaign['id']}", headers=EN))
    figures = figures_of(shown)
    assert figures["sold"] == "3" and figures["issued"] == "3" and figures["redeemed"] == "1"
    assert figures["coupons-redeemed"] == "1" and figures["coupons-active"] == "2"
    assert "张三" in shown  # the order
    assert all(codes.display(c["code"]) in shown for c in coupons)
    assert a.store["name"] in shown  # redemptions by store, by name
    assert "¥39.90" in shown
    assert shown.count('class="bar"') == 30
    actions = set(re.findall(rf'action="/admin/campaigns/{a.campaign["id"]}/([a-z]+)"', shown))
    assert actions == {"pause", "cancel"}  # what an active deal can do


def test_the_page_asks_for_its_figures_again_and_they_follow_the_sales(app, client, shops, manager_of,
                                                                       signed_in):
    a, _ = shops
    app.config["ADMIN_FIGURES_EVERY"] = 7
    page = signed_in(app.test_client(), manager_of(a.merchant))
    shown = text_of(page.get(f"/admin/campaigns/{a.campaign['id']}"))
    url = f"/admin/campaigns/{a.campaign['id']}/figures"
    assert f'hx-get="{url}"' in shown and 'hx-trigger="every 7s' in shown
    first = page.get(url)
    assert first.status_code == 200 and first.mimetype == "text/html"
    grid = ("sold", "issued", "redeemed")
    assert [figures_of(text_of(first))[name] for name in grid] == [figures_of(shown)[name] for name in grid]
    assert "<html" not in text_of(first)  # the part alone
    coupons = a.coupons(2)
    a.redeem(coupons[0]["code"])
    again = figures_of(text_of(page.get(url)))
    assert int(again["sold"]) == int(figures_of(shown)["sold"]) + 2
    assert int(again["redeemed"]) == int(figures_of(shown)["redeemed"]) + 1
    assert int(again["coupons-redeemed"]) == int(figures_of(shown)["coupons-redeemed"]) + 1
    assert 'id="campaign-coupon-figures" hx-swap-oob="true"' in text_of(page.get(url))
    assert 'hx-swap-oob' not in shown  # on the page, in its place
    assert f'hx-get="{url}"' in text_of(page.get(url))  # and it goes on asking

    app.config["ADMIN_FIGURES_EVERY"] = 0  # turned off
    assert "hx-get" not in text_of(page.get(f"/admin/campaigns/{a.campaign['id']}"))


@pytest.mark.parametrize("status", ["draft", "cancelled", "ended-expired"])
def test_final_figures_are_not_asked_for_again(app, client, shops, manager_of, signed_in, status):
    a, _ = shops
    campaign = client.campaign(a.merchant["id"], publish=status != "draft")
    with app.app_context():
        row = db.session.get(Campaign, campaign["id"])
        if status == "cancelled":
            row.status = "cancelled"
        elif status == "ended-expired":  # ended, and its coupons no longer valid
            row.status = "ended"
            row.valid_until = datetime.now(UTC) - timedelta(minutes=1)
        db.session.commit()
    page = signed_in(app.test_client(), manager_of(a.merchant))
    assert "hx-get" not in text_of(page.get(f"/admin/campaigns/{campaign['id']}"))
    assert "hx-get" not in text_of(page.get(f"/admin/campaigns/{campaign['id']}/figures"))


def test_an_ended_campaigns_figures_are_asked_for_while_its_coupons_are_valid(app, client, shops,
                                                                              manager_of, signed_in):
    a, _ = shops
    with app.app_context():
        db.session.get(Campaign, a.campaign["id"]).status = "ended"
        db.session.commit()
    page = signed_in(app.test_client(), manager_of(a.merchant))
    assert "hx-get" in text_of(page.get(f"/admin/campaigns/{a.campaign['id']}"))


def test_the_figures_are_for_a_signed_in_person_of_the_merchant_and_keep_no_session_alive(
        app, client, shops, manager_of, signed_in):
    a, b = shops
    url = f"/admin/campaigns/{a.campaign['id']}/figures"
    anonymous = app.test_client().get(url)
    assert anonymous.status_code == 401  # not the sign-in page, which htmx would put in the page
    assert "location" not in anonymous.headers
    other = signed_in(app.test_client(), manager_of(b.merchant))
    assert other.get(url).status_code == 404
    page = signed_in(app.test_client(), manager_of(a.merchant))
    long_ago = utcnow() - timedelta(minutes=30)
    with app.app_context():
        db.session.execute(update(AdminSession).values(last_seen_at=long_ago))
        db.session.commit()
    assert page.get(url).status_code == 200
    with app.app_context():  # polling is not the person's doing: the idle time goes on counting
        assert {to_utc(t) for t in db.session.scalars(select(AdminSession.last_seen_at))} == {long_ago}
    assert page.get(f"/admin/campaigns/{a.campaign['id']}").status_code == 200
    with app.app_context():  # a page the person opened is
        assert max(map(to_utc, db.session.scalars(select(AdminSession.last_seen_at)))) > long_ago
    with app.app_context():
        db.session.execute(update(AdminSession).values(
            last_seen_at=utcnow() - timedelta(seconds=app.config["ADMIN_SESSION_IDLE"] + 1)))
        db.session.commit()
    assert page.get(url).status_code == 401  # idle: signed out for the poll too


def test_orders_and_coupons_are_paged(app, client, operator, signed_in, monkeypatch):
    monkeypatch.setattr(campaign_pages, "PAGE", 2)
    shop = Shop(client)
    issued = {c["code"] for _ in range(3) for c in shop.coupons(1)}
    page = signed_in(app.test_client(), operator)
    seen, url = [], f"/admin/campaigns/{shop.campaign['id']}/coupons"
    while url:
        listing = text_of(page.get(url))
        seen += [codes.canonical(c) for c in re.findall(r'class="code" href="[^"]+">([0-9A-Z-]+)<', listing)]
        found = re.search(r'href="([^"]+)" rel="next"', listing)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert seen == sorted(issued)
    orders = text_of(page.get(f"/admin/campaigns/{shop.campaign['id']}/orders"))
    assert len(re.findall(r"<code>ord_", orders)) == 2 and 'rel="next"' in orders
    bad = page.get(f"/admin/campaigns/{shop.campaign['id']}/coupons?after=not-a-code")
    assert bad.status_code == 422


def test_the_csv_is_the_apis_and_its_export_is_audited(app, client, shops, manager_of, signed_in):
    a, _ = shops
    a.coupons(4)
    page = signed_in(app.test_client(), manager_of(a.merchant))
    answer = page.get(f"/admin/campaigns/{a.campaign['id']}/coupons.csv")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    body = answer.get_data()  # streamed: read before the next request
    assert body == client.get(f"campaigns/{a.campaign['id']}/coupons.csv", key=a.manager).get_data()
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert len(rows) == 4 and all(codes.is_valid(row["code"]) for row in rows)
    assert page.get(f"/admin/campaigns/{a.campaign['id']}/coupons.csv?status=bogus").status_code == 422
    assert audit_actions(app, a.campaign["id"]) == ["campaign.coupons_exported"]


# ---------------------------------------------------------------- the print sheet


def _work_off(app):
    connection = runner(app).redis()
    with app.app_context():
        SimpleWorker([Queue("bulk", connection=connection)], connection=connection).work(burst=True)


def _rasterise(svg: str, scale: int = 4) -> Image.Image:
    """An inline QR SVG (one path of unit squares in module coordinates) drawn black on white."""
    root = ET.fromstring(svg)
    size = int(root.get("viewBox").split()[2])
    image = Image.new("L", (size * scale, size * scale), 255)
    draw = ImageDraw.Draw(image)
    path = next(el for el in root.iter() if el.tag.endswith("path")).get("d")
    for x, y in re.findall(r"M(\d+),(\d+)H", path):
        x, y = int(x), int(y)
        draw.rectangle([x * scale, y * scale, (x + 1) * scale - 1, (y + 1) * scale - 1], fill=0)
    return image


def test_the_print_sheet_holds_decodable_signed_qr_codes_and_their_typed_codes(app, client, manager_of,
                                                                               signed_in):
    shop = Shop(client, max_coupons=100)
    job = client.ok(client.post(f"campaigns/{shop.campaign['id']}/coupons/bulk", {"count": 15},
                                key=shop.manager), 202)
    _work_off(app)
    assert client.ok(client.get(f"jobs/{job['id']}", key=shop.manager))["status"] == "succeeded"
    sold = shop.coupon()["code"]  # an order's coupon is not on the sheet
    page = signed_in(app.test_client(), manager_of(shop.merchant))
    assert "Print QR coupons" in text_of(page.get(f"/admin/campaigns/{shop.campaign['id']}", headers=EN))
    sheet = page.get(f"/admin/campaigns/{shop.campaign['id']}/print")
    assert sheet.status_code == 200
    html = text_of(sheet)
    assert "@page { size: A4" in html and html.count('class="sheet"') == 1
    cells = re.findall(r'<div class="coupon" data-code="([0-9A-Z]+)">(.*?)</div>\s*</div>', html, re.S)
    assert len(cells) == 12
    with app.app_context():
        ring = keyring()
        for code, cell in cells:
            svg = re.search(r"<svg.*?</svg>", cell, re.S).group(0)
            decoded = [b.text for b in zxingcpp.read_barcodes(
                _rasterise(svg), formats=zxingcpp.BarcodeFormat.QRCode)]  # a QR only: no stray 1D misread
            assert len(decoded) == 1
            claims = qr_payload.parse(ring, decoded[0])
            assert claims.code == code and claims.campaign_id == shop.campaign["id"]
            assert f'<div class="code">{codes.display(code)}</div>' in cell
    rest = page.get(re.search(r'href="([^"]+)" rel="next"', html).group(1).replace("&amp;", "&"))
    more = re.findall(r'data-code="([0-9A-Z]+)"', text_of(rest))
    assert len(more) == 3 and sold not in more and not set(more) & {c for c, _ in cells}
    assert audit_actions(app, shop.campaign["id"]).count("campaign.coupons_printed") == 2


def test_a_campaign_without_bulk_codes_prints_an_empty_sheet(app, shops, manager_of, signed_in):
    a, _ = shops
    a.coupons(2)
    page = signed_in(app.test_client(), manager_of(a.merchant))
    assert "Print QR coupons" not in text_of(page.get(f"/admin/campaigns/{a.campaign['id']}", headers=EN))
    sheet = page.get(f"/admin/campaigns/{a.campaign['id']}/print")
    assert sheet.status_code == 200 and 'data-code="' not in text_of(sheet)


# ---------------------------------------------------------------- odd input


@pytest.mark.parametrize("path", [
    "/admin/?merchant_id=%00", "/admin/?merchant_id=" + "x" * 500, "/admin/campaigns?city=%00",
    "/admin/campaigns?merchant_id=%00", "/admin/campaigns?after=%00", "/admin/campaigns/%00",
    "/admin/campaigns/cmp_%00/edit", "/admin/campaigns/new?merchant_id=%00",
])
def test_odd_addresses_are_pages_not_errors(app, shops, operator, signed_in, path):
    answer = signed_in(app.test_client(), operator).get(path)
    assert answer.status_code in (404, 422), (path, answer.status_code)
    assert answer.mimetype == "text/html"


def test_odd_form_values_are_told_next_to_their_fields(app, shops, manager_of, signed_in):
    a, _ = shops
    page = signed_in(app.test_client(), manager_of(a.merchant))
    for field, value in (("sales_start", "0001-01-01T00:00"),
                         ("sales_end", "2026-13-45T99:99"), ("price", "1e5"), ("price", "-3"),
                         ("min_group_size", "٣"), ("title", "a\x00b"), ("max_coupons", "99999999999999999999"),
                         ("max_coupons", "9" * 5000), ("uses_per_coupon", "1" * 4301),
                         ("store_ids", "sto_\x00")):
        answer = page.post("/admin/campaigns/new", form_of(**{field: value}))
        assert answer.status_code == 422, (field, value, answer.status_code)
        assert error_of(text_of(answer), field) or 'form-error' in text_of(answer), (field, value)
    full_width = page.post("/admin/campaigns/new", form_of(price="３９.９０"))
    assert full_width.status_code == 302
    assert stored(app, full_width.location.rsplit("/", 1)[-1]).price == 3990
