"""What integrators asked for: resuming the events feed from an event, opaque delivery ids
and cursors, finding orders."""

from __future__ import annotations

import re

import pytest
from rq import Queue, SimpleWorker
from sqlalchemy import select

from couponsvc.extensions import db
from couponsvc.jobs import runner
from couponsvc.models import Event
from tests.factories import Shop, problem
from tests.integrations.receiver import Receiver


def last_event_id(app, merchant_id: str) -> str:
    """The id of the merchant's newest event, numbered or not."""
    with app.app_context():
        event_id = db.session.execute(select(Event.id).where(Event.merchant_id == merchant_id)
                                      .order_by(Event.seq.desc()).limit(1)).scalar_one()
        db.session.remove()
    return event_id


def events(client, key, **query) -> dict:
    return client.ok(client.get("events", key=key, query_string={"limit": 500, **query}))


# ---------------------------------------------------------------- resuming from an event --
def test_events_resume_after_an_event_id(client, app):
    shop = Shop(client)
    for coupon in shop.coupons(3):
        client.ok(shop.redeem(coupon["code"]), 201)
    seen = client.events(key=shop.manager)
    assert len(seen) >= 4
    for n in (0, 2, len(seen) - 1):
        assert events(client, shop.manager, after=seen[n]["id"])["data"] == seen[n + 1:]
    # with a type filter, from an event of another type
    redeemed = [e for e in seen[1:] if e["type"] == "coupon.redeemed"]
    assert events(client, shop.manager, after=seen[0]["id"], type="coupon.redeemed")["data"] == redeemed


def test_an_event_id_the_key_cannot_see_is_refused(client, app):
    shop, other = Shop(client), Shop(client)
    theirs = client.events(key=other.manager)[0]["id"]
    for after in ("evt_NOSUCHEVENT", theirs):
        body = problem(client.get("events", key=shop.manager, query_string={"after": after}),
                       422, "validation_error")
        assert "after" in body["errors"]
    assert events(client, "platform", after=theirs)["next"] is None  # the platform sees every merchant


def test_resuming_after_an_event_not_numbered_yet_waits_for_what_comes_after_it(client, app):
    shop = Shop(client)
    coupons = shop.coupons(2)
    client.events(key=shop.manager)
    client.ok(shop.redeem(coupons[0]["code"]), 201)  # committed; the sweep has not numbered it
    fresh = last_event_id(app, shop.merchant["id"])
    assert fresh not in [e["id"] for e in events(client, shop.manager)["data"]]
    assert events(client, shop.manager, after=fresh) == {"data": [], "next": None}
    client.ok(shop.redeem(coupons[1]["code"]), 201)
    later = [e["id"] for e in client.events(key=shop.manager)]  # numbers everything
    assert [e["id"] for e in events(client, shop.manager, after=fresh)["data"]] == later[later.index(fresh) + 1:]
    assert len(later) > later.index(fresh) + 1


@pytest.mark.config(ALLOW_PRIVATE_WEBHOOK_TARGETS=True)
def test_a_webhook_carries_the_cursor_a_receiver_catches_up_from(client, app):
    shop = Shop(client)
    coupons = shop.coupons(3)
    with Receiver() as receiver:
        client.ok(client.post(f"merchants/{shop.merchant['id']}/integrations",
                              {"adapter": "webhook", "config": {"url": receiver.url + "/hook"},
                               "events": ["coupon.redeemed"]}, key=shop.manager), 201)
        client.ok(shop.redeem(coupons[0]["code"]), 201)
        connection = runner(app).redis()
        with app.app_context():  # sent before the sweep numbered its event
            SimpleWorker([Queue("deliveries", connection=connection)], connection=connection).work(burst=True)
        [sent] = receiver.requests
    cursor = sent.headers["webhook-cursor"]
    assert cursor == sent.headers["webhook-id"]
    for coupon in coupons[1:]:  # the receiver is down for these
        client.ok(shop.redeem(coupon["code"]), 201)
    client.events()  # the sweep numbers them
    missed = events(client, shop.manager, after=cursor, type="coupon.redeemed")["data"]
    assert [e["data"]["coupon"]["code"] for e in missed] == [c["code"] for c in coupons[1:]]


# ------------------------------------------------------------------ opaque ids and cursors --
OPAQUE_CURSOR = re.compile(r"[A-Za-z0-9_-]{22}")


@pytest.mark.config(ALLOW_PRIVATE_WEBHOOK_TARGETS=True)
def test_delivery_ids_and_list_cursors_tell_no_count(client, app):
    shop = Shop(client)
    hook = client.ok(client.post(f"merchants/{shop.merchant['id']}/integrations",
                                 {"adapter": "webhook", "config": {"url": "http://127.0.0.1:9/hook"}},
                                 key=shop.manager), 201)
    pings = [client.ok(client.post(f"integrations/{hook['id']}/test", key=shop.manager), 202)["id"]
             for _ in range(3)]
    assert all(re.fullmatch(r"dlv_[0-9a-f]{32}", ping) for ping in pings), pings
    assert client.ok(client.get(f"deliveries/{pings[0]}", key=shop.manager))["id"] == pings[0]
    problem(client.get("deliveries/dlv_1", key=shop.manager), 404, "not_found")

    page = client.ok(client.get(f"integrations/{hook['id']}/deliveries", key=shop.manager,
                                query_string={"limit": 1}))
    assert OPAQUE_CURSOR.fullmatch(page["next"]), page["next"]
    rest = client.ok(client.get(f"integrations/{hook['id']}/deliveries", key=shop.manager,
                                query_string={"after": page["next"]}))
    assert [d["id"] for d in page["data"] + rest["data"]] == pings[::-1]

    seen = client.events(key=shop.manager)
    first = events(client, shop.manager, limit=1)
    assert OPAQUE_CURSOR.fullmatch(first["next"]) and OPAQUE_CURSOR.fullmatch(seen[0]["cursor"])
    assert first["next"] == seen[0]["cursor"]
    assert events(client, shop.manager, after=first["next"])["data"] == seen[1:]

    coupon = shop.coupon()
    client.ok(client.post(f"coupons/{coupon['code']}/void", {"reason": "test"}, key=shop.manager))
    revoked = client.ok(client.get("revocations", key=shop.manager))
    assert OPAQUE_CURSOR.fullmatch(revoked["next"]), revoked["next"]
    problem(shop.redeem(coupon["code"]), 422, "coupon_voided")
    problem(shop.redeem(coupon["code"]), 422, "coupon_voided")
    attempts = client.ok(client.get("redemption-attempts", key=shop.manager, query_string={"limit": 1}))
    assert OPAQUE_CURSOR.fullmatch(attempts["next"]), attempts["next"]

    # a cursor is good for its own list only, and a changed one is refused
    lists = {f"integrations/{hook['id']}/deliveries": page["next"], "events": first["next"],
             "revocations": revoked["next"], "redemption-attempts": attempts["next"]}
    for path in lists:
        for name, cursor in lists.items():
            if path != name:
                problem(client.get(path, key=shop.manager, query_string={"after": cursor}), 422, "validation_error")
        cursor = lists[path]
        tampered = cursor[:5] + ("A" if cursor[5] != "A" else "B") + cursor[6:]
        for bad in (tampered, "1", "12345", cursor + "A"):
            problem(client.get(path, key=shop.manager, query_string={"after": bad}), 422, "validation_error")


# ------------------------------------------------------------------------ finding orders --
def test_orders_are_found_by_campaign_customer_and_payment(client):
    shop, other = Shop(client), Shop(client)
    alice = [client.order(shop.campaign["id"], customer_ref="Alice@Example.cn") for _ in range(3)]
    bob = client.order(shop.campaign["id"], customer_ref="bob")
    theirs = client.order(other.campaign["id"], customer_ref="alice@example.cn")

    def found(key="platform", **query):
        ids, after = [], None
        while True:
            page = client.ok(client.get("orders", key=key, query_string={
                **query, "limit": 2, **({"after": after} if after else {})}))
            ids += [order["id"] for order in page["data"]]
            if page["next"] is None:
                return ids
            after = page["next"]

    mine = [o["id"] for o in alice]
    assert found(customer_ref="  ALICE@example.CN ") == sorted(mine + [theirs["id"]])
    assert found(shop.manager, customer_ref="alice@ｅxample.cn") == sorted(mine)  # full-width folded
    assert found(campaign_id=shop.campaign["id"]) == sorted(mine + [bob["id"]])
    assert found(shop.manager, payment_ref=bob["payment_ref"]) == [bob["id"]]
    assert found(other.manager, payment_ref=bob["payment_ref"]) == []
    assert found(other.manager, campaign_id=shop.campaign["id"]) == []
    [listed] = client.ok(client.get("orders", query_string={"payment_ref": bob["payment_ref"]}))["data"]
    assert listed == client.ok(client.get(f"orders/{bob['id']}"))

    problem(client.get("orders", key=shop.scanner), 403, "forbidden")
    problem(client.get("orders", query_string={"after": "not-an-order"}), 422, "validation_error")
