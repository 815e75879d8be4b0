"""A campaign's life: publish, pause, resume, cancel, edits, tipping, the close, its figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from couponsvc.campaigns import close_campaign, due_campaign_ids
from couponsvc.extensions import db
from couponsvc.models import Campaign, Redemption
from couponsvc.timeutil import utcnow
from tests.factories import Shop, in_db, iso, now, problem


def _status(client, campaign_id: str) -> str:
    return client.ok(client.get(f"campaigns/{campaign_id}"))["status"]


def _act(client, campaign_id: str, action: str):
    return client.post(f"campaigns/{campaign_id}/{action}")


# -- transitions ----------------------------------------------------------------------------


def test_draft_publish_pause_resume_cancel(client):
    shop = Shop(client, publish=False)
    campaign = shop.campaign
    assert campaign["status"] == "draft"
    assert campaign["published_at"] is None
    published = client.ok(_act(client, campaign["id"], "publish"))
    assert published["status"] == "active" and published["published_at"] is not None
    assert client.ok(_act(client, campaign["id"], "pause"))["status"] == "paused"
    assert _status(client, campaign["id"]) == "paused"
    assert client.ok(_act(client, campaign["id"], "resume"))["status"] == "active"
    cancelled = client.ok(client.post(f"campaigns/{campaign['id']}/cancel", {"reason": "no stock"}))
    assert cancelled["status"] == "cancelled"
    assert _status(client, campaign["id"]) == "cancelled"
    types = [e["type"] for e in client.events(key=shop.manager)]
    assert types == ["campaign.published", "campaign.cancelled"]


def test_a_manager_runs_the_lifecycle_of_its_own_campaign(client):
    shop = Shop(client, publish=False)
    for action, status in (("publish", "active"), ("pause", "paused"), ("resume", "active"),
                           ("cancel", "cancelled")):
        assert client.ok(client.post(f"campaigns/{shop.campaign['id']}/{action}",
                                     key=shop.manager))["status"] == status


@pytest.mark.parametrize("setup, action", [
    ([], "pause"),
    ([], "resume"),
    (["publish"], "publish"),
    (["publish"], "resume"),
    (["publish", "pause"], "pause"),
    (["publish", "pause"], "publish"),
    (["cancel"], "publish"),
    (["publish", "cancel"], "resume"),
    (["publish", "cancel"], "pause"),
    (["publish", "cancel"], "cancel"),
])
def test_invalid_transitions_are_refused(client, setup, action):
    shop = Shop(client, publish=False)
    campaign_id = shop.campaign["id"]
    for step in setup:
        client.ok(_act(client, campaign_id, step))
    before = client.ok(client.get(f"campaigns/{campaign_id}"))
    problem(_act(client, campaign_id, action), 409, "invalid_state")
    assert client.ok(client.get(f"campaigns/{campaign_id}"))["status"] == before["status"]


def test_a_closed_campaign_cannot_be_published_paused_or_cancelled(client):
    shop = Shop(client)
    shop.coupon()
    _close_all(client, later=True)
    assert _status(client, shop.campaign["id"]) == "ended"
    for action in ("publish", "pause", "resume", "cancel"):
        problem(_act(client, shop.campaign["id"], action), 409, "invalid_state")


def test_cancelling_a_live_deal_voids_its_coupons_and_refunds_its_orders(client):
    shop = Shop(client)
    order = client.order(shop.campaign["id"], 2)
    client.ok(client.post(f"campaigns/{shop.campaign['id']}/cancel", {"reason": "closed"}))
    for coupon in order["coupons"]:
        assert client.ok(client.get(f"coupons/{coupon['code']}"))["status"] == "voided"
        problem(shop.redeem(coupon["code"]), 422, "coupon_voided")
    assert client.ok(client.get(f"orders/{order['id']}"))["status"] == "refund_pending"
    revoked = {row["code"] for row in client.ok(client.get("revocations"))["data"]}
    assert revoked == {c["code"] for c in order["coupons"]}
    problem(client.post(f"campaigns/{shop.campaign['id']}/orders", {"customer_ref": "x"}),
            422, "campaign_not_on_sale")


# -- edits ----------------------------------------------------------------------------------


def test_a_draft_takes_any_field(client):
    shop = Shop(client, publish=False)
    start = now()
    changes = {"title": "新标题", "price": 1990, "list_price": 2990, "min_group_size": 4,
               "max_coupons": 40, "per_customer_limit": 2, "uses_per_coupon": 3, "currency": "HKD",
               "store_ids": [shop.store["id"]], "sales_start": iso(start + timedelta(hours=1)),
               "sales_end": iso(start + timedelta(days=3)), "valid_until": iso(start + timedelta(days=9))}
    patched = client.ok(client.patch(f"campaigns/{shop.campaign['id']}", changes))
    for name, value in changes.items():
        if name in ("sales_start", "sales_end", "valid_until"):
            assert datetime.fromisoformat(patched[name]) == datetime.fromisoformat(value)
        else:
            assert patched[name] == value, name
    assert client.ok(client.get(f"campaigns/{shop.campaign['id']}"))["price"] == 1990


def test_a_draft_edit_that_breaks_the_rules_is_refused(client):
    shop = Shop(client, publish=False)
    response = client.patch(f"campaigns/{shop.campaign['id']}", {"list_price": 100})
    assert "list_price" in problem(response, 422, "validation_error")["errors"]
    response = client.patch(f"campaigns/{shop.campaign['id']}",
                            {"sales_end": iso(now() - timedelta(days=2))})
    assert "sales_end" in problem(response, 422, "validation_error")["errors"]
    assert client.ok(client.get(f"campaigns/{shop.campaign['id']}"))["list_price"] == 6800


def test_an_active_campaign_takes_text_fields(client):
    shop = Shop(client)
    changes = {"title": "双人套餐（升级版）", "description": "含饮料", "city": "南昌"}
    patched = client.ok(client.patch(f"campaigns/{shop.campaign['id']}", changes))
    assert {name: patched[name] for name in changes} == changes
    assert patched["status"] == "active"


@pytest.mark.parametrize("field, value", [
    ("price", 1), ("min_group_size", 5), ("max_coupons", 10), ("uses_per_coupon", 2),
    ("per_customer_limit", 1), ("currency", "USD"),
])
def test_an_active_campaign_refuses_other_fields(client, field, value):
    shop = Shop(client)
    before = client.ok(client.get(f"campaigns/{shop.campaign['id']}"))
    problem(client.patch(f"campaigns/{shop.campaign['id']}", {field: value}), 409, "invalid_state")
    assert client.ok(client.get(f"campaigns/{shop.campaign['id']}"))[field] == before[field]


def test_an_active_campaign_takes_a_later_sales_end_only(client):
    shop = Shop(client)
    path = f"campaigns/{shop.campaign['id']}"
    current = datetime.fromisoformat(shop.campaign["sales_end"])
    later = client.ok(client.patch(path, {"sales_end": iso(current + timedelta(days=2))}))
    assert datetime.fromisoformat(later["sales_end"]) == current + timedelta(days=2)
    refused = problem(client.patch(path, {"sales_end": iso(current + timedelta(days=1))}),
                      422, "validation_error")
    assert list(refused["errors"]) == ["sales_end"]
    kept = client.ok(client.get(path))
    assert datetime.fromisoformat(kept["sales_end"]) == current + timedelta(days=2)


def test_a_paused_campaign_follows_the_active_rules(client):
    shop = Shop(client)
    client.ok(_act(client, shop.campaign["id"], "pause"))
    client.ok(client.patch(f"campaigns/{shop.campaign['id']}", {"title": "暂停中"}))
    problem(client.patch(f"campaigns/{shop.campaign['id']}", {"price": 1}), 409, "invalid_state")


@pytest.mark.parametrize("end", ["cancel", "close"])
def test_a_finished_campaign_takes_no_edit(client, end):
    shop = Shop(client)
    if end == "cancel":
        client.ok(_act(client, shop.campaign["id"], "cancel"))
    else:
        _close_all(client, later=True)
    problem(client.patch(f"campaigns/{shop.campaign['id']}", {"title": "x"}), 409, "invalid_state")


# -- tipping --------------------------------------------------------------------------------


def test_the_order_that_tips_the_deal_activates_every_coupon(client):
    shop = Shop(client, min_group_size=3)
    campaign_id = shop.campaign["id"]
    first, second = client.order(campaign_id), client.order(campaign_id)
    for order in (first, second):
        assert order["status"] == "pending"
        assert [c["status"] for c in order["coupons"]] == ["pending"]
        assert client.ok(client.get(f"coupons/{order['coupons'][0]['code']}"))["status"] == "pending"
    campaign = client.ok(client.get(f"campaigns/{campaign_id}"))
    assert (campaign["sold"], campaign["tipped"]) == (2, False)
    assert client.events(type="campaign.tipped") == []

    third = client.order(campaign_id)
    assert third["status"] == "confirmed"
    assert [c["status"] for c in third["coupons"]] == ["active"]
    for order in (first, second, third):
        assert client.ok(client.get(f"orders/{order['id']}"))["status"] == "confirmed"
        for coupon in order["coupons"]:
            assert client.ok(client.get(f"coupons/{coupon['code']}"))["status"] == "active"
    campaign = client.ok(client.get(f"campaigns/{campaign_id}"))
    assert (campaign["sold"], campaign["tipped"]) == (3, True)
    assert campaign["tipped_at"] is not None

    fourth = client.order(campaign_id)
    assert fourth["status"] == "confirmed" and fourth["coupons"][0]["status"] == "active"
    tipped = client.events(type="campaign.tipped")
    assert len(tipped) == 1
    confirmed = {e["data"]["order"]["id"] for e in client.events(type="order.confirmed")}
    assert confirmed == {first["id"], second["id"], third["id"], fourth["id"]}
    client.ok(shop.redeem(first["coupons"][0]["code"]), 201)


def test_one_order_can_tip_the_deal_by_itself(client):
    shop = Shop(client, min_group_size=3)
    waiting = client.order(shop.campaign["id"])
    big = client.order(shop.campaign["id"], 2)
    assert big["status"] == "confirmed"
    assert {c["status"] for c in big["coupons"]} == {"active"}
    assert client.ok(client.get(f"orders/{waiting['id']}"))["status"] == "confirmed"


# -- the close at sales_end -----------------------------------------------------------------


def _close_all(client, *, later: bool) -> dict[str, str]:
    """Close due campaigns through the domain function, as the periodic job does."""
    moment = utcnow() + timedelta(days=30) if later else utcnow()
    closed = {}
    with client.app.app_context():
        for campaign_id in due_campaign_ids(db.session, moment):
            closed[campaign_id] = close_campaign(db.session, campaign_id, moment)
            db.session.commit()
        db.session.remove()
    return closed


def test_a_tipped_deal_ends_at_sales_end(client):
    shop = Shop(client, min_group_size=2)
    orders = [client.order(shop.campaign["id"]) for _ in range(2)]
    assert _close_all(client, later=False) == {}
    assert _close_all(client, later=True) == {shop.campaign["id"]: "ended"}
    campaign = client.ok(client.get(f"campaigns/{shop.campaign['id']}"))
    assert campaign["status"] == "ended" and campaign["closed_at"] is not None
    for order in orders:
        assert client.ok(client.get(f"orders/{order['id']}"))["status"] == "confirmed"
        assert client.ok(client.get(f"coupons/{order['coupons'][0]['code']}"))["status"] == "active"
    types = [e["type"] for e in client.events(key=shop.manager)]
    assert types[-1] == "campaign.ended"
    assert types.count("campaign.ended") == 1 and "campaign.failed" not in types
    client.ok(shop.redeem(orders[0]["coupons"][0]["code"]), 201)
    assert client.ok(client.get("revocations"))["data"] == []
    assert _close_all(client, later=True) == {}


def test_an_untipped_deal_fails_voids_its_coupons_and_refunds(client):
    shop = Shop(client, min_group_size=3)
    orders = [client.order(shop.campaign["id"]), client.order(shop.campaign["id"], 1)]
    codes = {c["code"] for order in orders for c in order["coupons"]}
    assert _close_all(client, later=True) == {shop.campaign["id"]: "failed"}
    _assert_failed(client, shop, orders, codes)


def test_a_deal_nobody_bought_fails(client):
    shop = Shop(client)
    assert _close_all(client, later=True) == {shop.campaign["id"]: "failed"}
    types = [e["type"] for e in client.events(key=shop.manager)]
    assert types == ["campaign.published", "campaign.failed"]


def test_close_due_from_the_command_line(client):
    failing = Shop(client, min_group_size=3)
    ending = Shop(client)
    waiting = Shop(client)
    orders = [client.order(failing.campaign["id"])]
    client.order(ending.campaign["id"])
    client.order(waiting.campaign["id"])
    past = utcnow() - timedelta(seconds=1)
    in_db(client.app, update(Campaign)
          .where(Campaign.id.in_([failing.campaign["id"], ending.campaign["id"]]))
          .values(sales_end=past))
    result = client.app.test_cli_runner().invoke(args=["close-due"])
    assert result.exit_code == 0, result.output
    assert f"{failing.campaign['id']} failed" in result.output
    assert f"{ending.campaign['id']} ended" in result.output
    assert waiting.campaign["id"] not in result.output
    assert _status(client, ending.campaign["id"]) == "ended"
    assert _status(client, waiting.campaign["id"]) == "active"
    _assert_failed(client, failing, orders, {orders[0]["coupons"][0]["code"]})
    again = client.app.test_cli_runner().invoke(args=["close-due"])
    assert again.exit_code == 0 and failing.campaign["id"] not in again.output


def _assert_failed(client, shop: Shop, orders: list[dict], codes: set[str]) -> None:
    campaign = client.ok(client.get(f"campaigns/{shop.campaign['id']}"))
    assert (campaign["status"], campaign["tipped"]) == ("failed", False)
    for code in codes:
        assert client.ok(client.get(f"coupons/{code}"))["status"] == "voided"
        problem(shop.redeem(code), 422, "coupon_voided")
    for order in orders:
        assert client.ok(client.get(f"orders/{order['id']}"))["status"] == "refund_pending"
    types = [e["type"] for e in client.events(key=shop.manager)]
    assert types[0] == "campaign.published"
    assert types.count("campaign.failed") == 1
    assert types.count("order.refund_pending") == len(orders)
    closing = len(orders) + 1
    assert sorted(types[-closing:]) == sorted(["campaign.failed"] + ["order.refund_pending"] * len(orders))
    assert "coupon.issued" in types[:-closing]
    refunded = {e["data"]["order"]["id"] for e in client.events(type="order.refund_pending")}
    assert refunded == {order["id"] for order in orders}
    revocations = client.ok(client.get("revocations", key=shop.scanner))["data"]
    assert {row["code"] for row in revocations} == codes
    problem(client.post(f"campaigns/{shop.campaign['id']}/orders", {"customer_ref": "late"}),
            422, "campaign_not_on_sale")


# -- figures --------------------------------------------------------------------------------


def test_stats_count_redemptions_and_reversals_by_store_and_local_day(client):
    shop = Shop(client)
    kept_here, kept_there, undone = (c["code"] for c in shop.coupons(3))
    spare = shop.coupon()["code"]
    here = client.ok(shop.redeem(kept_here), 201)
    there = client.ok(shop.redeem(kept_there, key=shop.roaming_scanner,
                                  store_id=shop.other_store["id"]), 201)
    reversed_ = client.ok(shop.redeem(undone), 201)
    client.ok(client.post(f"redemptions/{reversed_['id']}/reverse", {"reason": "wrong coupon"},
                          key=shop.scanner))
    # Move the redemptions to known moments: 16:30 UTC is already the next day in Shanghai.
    moments = {here["id"]: datetime(2025, 3, 1, 16, 30, tzinfo=UTC),
               there["id"]: datetime(2025, 3, 1, 15, 30, tzinfo=UTC),
               reversed_["id"]: datetime(2025, 3, 1, 15, 59, tzinfo=UTC)}
    in_db(client.app, *(update(Redemption).where(Redemption.id == rid).values(redeemed_at=moment)
                        for rid, moment in moments.items()))

    stats = client.ok(client.get(f"campaigns/{shop.campaign['id']}/stats", key=shop.manager))
    assert stats["campaign_id"] == shop.campaign["id"]
    assert (stats["sold"], stats["issued"], stats["redeemed"], stats["reversed"]) == (4, 4, 2, 1)
    assert stats["uses_redeemed"] == 2
    assert stats["timezone"] == "Asia/Shanghai"
    assert stats["coupons"]["redeemed"] == 2
    assert stats["coupons"]["active"] == 2  # the spare and the reversed one
    assert client.ok(client.get(f"coupons/{spare}"))["status"] == "active"
    assert stats["by_day"] == [
        {"date": "2025-03-01", "redemptions": 1, "uses": 1, "reversed": 1},
        {"date": "2025-03-02", "redemptions": 1, "uses": 1, "reversed": 0},
    ]
    by_store = {row["store_id"]: row for row in stats["by_store"]}
    assert by_store == {
        shop.store["id"]: {"store_id": shop.store["id"], "redemptions": 1, "uses": 1, "reversed": 1},
        shop.other_store["id"]: {"store_id": shop.other_store["id"], "redemptions": 1, "uses": 1,
                                 "reversed": 0},
    }


def test_stats_count_uses_of_multi_use_coupons(client):
    shop = Shop(client, uses_per_coupon=5)
    code = shop.coupon()["code"]
    first = client.ok(shop.redeem(code, uses=2), 201)
    client.ok(shop.redeem(code, uses=3), 201)
    stats = client.ok(client.get(f"campaigns/{shop.campaign['id']}/stats"))
    assert (stats["redeemed"], stats["uses_redeemed"]) == (2, 5)
    assert stats["coupons"]["redeemed"] == 1
    local_day = datetime.fromisoformat(first["redeemed_at"]).astimezone(
        ZoneInfo("Asia/Shanghai")).date().isoformat()
    assert stats["by_day"][0]["date"] == local_day
    assert sum(row["uses"] for row in stats["by_day"]) == 5
