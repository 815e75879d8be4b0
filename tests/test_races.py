"""Races on real PostgreSQL, with a crowd of clients hitting several app instances at once.

Three gunicorn processes (2 workers x 8 threads each) serve the test database,
configured only through the environment (a plain `postgresql://` DATABASE_URL,
REDIS_URL, SECRET_KEY, the test instance path for the QR signing key). Each race
opens one connection per request, holds every thread at a barrier and releases
them together, round-robin over the instances. Scenes are set up through the
in-process test client; everything asserted is read back through the HTTP API
of the instances.

Invariants (issue: "never oversold, whatever the concurrency"; "exactly one of
any number of concurrent redeems of a single-use coupon succeeds"):
- a deal with `max_coupons` N sold to 3N concurrent buyers sells exactly N;
- the per-customer limit holds for one customer typed many ways;
- a single-use coupon scanned by 20 tills succeeds once, a 5-use coupon five times;
- the order that tips a deal leaves no coupon pending and no order unconfirmed;
- concurrent requests with one Idempotency-Key do the work once;
- redeem, reverse and void interleave into a consistent coupon;
- the event outbox, paged with `after`, holds each event once and none is missing.
"""

from __future__ import annotations

import itertools
import os
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from couponsvc.extensions import db
from couponsvc.outbox.positions import assign_positions

from .conftest import REDIS_URL
from .deliveries.processes import production_environment
from .factories import Client, Shop
from .racing import Cluster, Request, plain_postgres_url, tally, wait_until

BUYERS_PER_COUPON = 3
_serial = itertools.count(1)


# ------------------------------------------------------------------------ fixtures --
@pytest.fixture(scope="module")
def _cluster_holder():
    """One cluster for the module, started on first use, stopped by pid at the end."""
    holder: dict[str, Any] = {}
    try:
        yield holder
    finally:
        started = holder.get("cluster")
        if started is not None:
            started.stop()


@pytest.fixture
def cluster(app, client, instance_path, _cluster_holder, tmp_path_factory) -> Cluster:
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    assert uri.startswith("postgresql+psycopg://"), uri
    started = _cluster_holder.get("cluster")
    if started is None:
        env = {
            **_inherited_environment(),
            "DATABASE_URL": plain_postgres_url(uri),
            "REDIS_URL": REDIS_URL,
            "SECRET_KEY": app.config["SECRET_KEY"],
            "COUPONSVC_INSTANCE_PATH": instance_path,
            "COUPONSVC_LOOKUP_LIMIT_PER_KEY": "100000/minute",
            "COUPONSVC_LOOKUP_LIMIT_PER_ADDRESS": "100000/minute",
            **production_environment(app),
        }
        started = Cluster(env, tmp_path_factory.mktemp("gunicorn"), count=3, workers=2, threads=8)
        _cluster_holder["cluster"] = started  # before start(): a half-started cluster is stopped too
        _cluster_holder["uri"] = uri
        started.start()
    assert _cluster_holder["uri"] == uri
    # Every instance sees this test's database (the platform key was just created in it)
    # and signs QR payloads with the test app's key.
    expected_keys = client.ok(client.get("qr-keys"))
    for index in range(len(started.instances)):
        assert started.ok(started.get("qr-keys", client.platform, server=index)) == expected_keys
    return started


def _inherited_environment() -> dict[str, str]:
    # Drop the test app's settings that the instances must take from us alone.
    return {name: value for name, value in os.environ.items()
            if name not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY"}}


# ------------------------------------------------------------------------- helpers --
def order(campaign_id: str, platform_key: str, customer_ref: str | None = None,
          quantity: int = 1, headers: dict[str, str] | None = None) -> Request:
    n = next(_serial)
    return Request("POST", f"campaigns/{campaign_id}/orders", platform_key, {
        "customer_ref": customer_ref if customer_ref is not None else f"racer-{n}",
        "quantity": quantity, "payment_ref": f"pay-race-{n}",
    }, headers or {})


def scanner_keys(client: Client, merchant_id: str, count: int) -> list[dict]:
    """`count` scanner keys of the merchant, not pinned to a store: `{id, key, ...}`."""
    return [client.ok(client.post(f"merchants/{merchant_id}/api-keys",
                                  {"role": "scanner", "label": f"till {n}"}), 201)
            for n in range(count)]


def scan(key: str, coupon: dict, store_id: str, n: int, uses: int = 1) -> Request:
    """A scan by till `n`: half of the tills scan the QR, the other half type the code."""
    body: dict[str, Any] = {"store_id": store_id, "uses": uses, "device_id": f"till-{n}"}
    if n % 2:
        body["code"] = coupon["display"].lower()
    else:
        body["qr"] = coupon["qr_payload"]
    return Request("POST", "redemptions", key, body)


def settle_events(app, cluster: Cluster, key: str) -> None:
    """Wait until every committed event has its outbox position.

    The relay sweep's step (`assign_positions`; `GET /events` only reads) numbers the
    events whose transactions are older than every running one in the PostgreSQL
    cluster; a long transaction elsewhere only delays that.
    """
    def settled() -> bool:
        with app.app_context():
            assign_positions(db.session)
            db.session.commit()
            left = db.session.execute(text("SELECT count(*) FROM events WHERE position IS NULL"))
            count = left.scalar_one()
            db.session.rollback()
        return count == 0

    wait_until(settled, "every committed event to be given its position")


def event_counts(events: list[dict]) -> Counter:
    return Counter(event["type"] for event in events)


def coupon_events_in_order(events: list[dict], code: str) -> list[dict]:
    """This coupon's events in outbox order; their `coupon_seq` must only go up."""
    mine = [event for event in events if event.get("coupon_code") == code]
    seqs = [event["coupon_seq"] for event in mine]
    assert all(isinstance(seq, int) for seq in seqs), mine
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
    return mine


def codes_of(replies) -> list[str]:
    return [coupon["code"] for reply in replies if reply.status == 201
            for coupon in reply.json["coupons"]]


# ---------------------------------------------------------- (1) never oversold --
@pytest.mark.postgresql
@pytest.mark.parametrize("quantity", [1, 3], ids=["quantity-1", "quantity-3"])
def test_max_coupons_n_sold_to_3n_concurrent_buyers_sells_exactly_n(app, client, cluster, quantity):
    n = 20
    shop = Shop(client, max_coupons=n)
    campaign_id = shop.campaign["id"]
    buyers = BUYERS_PER_COUPON * n

    replies = cluster.race([order(campaign_id, client.platform, quantity=quantity)
                            for _ in range(buyers)])

    winners = n // quantity  # 20 orders of 1; 6 orders of 3 (18): no order may overshoot
    refused = "sold_out" if quantity == 1 else "insufficient_stock"  # 18 sold: 2 left, 3 asked
    assert tally(replies) == {(201, None): winners, (409, refused): buyers - winners}, \
        [r for r in replies if r.status != 201][:5]
    assert {r.server for r in replies} == {0, 1, 2}
    sold = winners * quantity
    codes = codes_of(replies)
    assert len(codes) == len(set(codes)) == sold
    for reply in replies:
        if reply.status == 201:
            body = reply.json
            assert body["quantity"] == quantity and len(body["coupons"]) == quantity
            assert body["status"] == "confirmed"
            assert {c["status"] for c in body["coupons"]} == {"active"}

    campaign = cluster.ok(cluster.get(f"campaigns/{campaign_id}", shop.manager, server=1))
    assert (campaign["sold"], campaign["issued"], campaign["tipped"]) == (sold, sold, True)
    stats = cluster.ok(cluster.get(f"campaigns/{campaign_id}/stats", shop.manager, server=2))
    assert (stats["sold"], stats["issued"]) == (sold, sold)
    rows = cluster.coupons_csv(campaign_id, shop.manager)
    assert len(rows) == sold
    assert {row["code"] for row in rows} == set(codes)
    assert {row["status"] for row in rows} == {"active"}

    settle_events(app, cluster, shop.manager)
    events = cluster.events(shop.manager)
    assert event_counts(events) == {"campaign.published": 1, "campaign.tipped": 1,
                                    "order.confirmed": winners, "coupon.issued": winners}
    ordered = {r.json["id"] for r in replies if r.status == 201}
    confirmed = [e["data"]["order"]["id"] for e in events if e["type"] == "order.confirmed"]
    assert sorted(confirmed) == sorted(ordered)
    issued = [c["code"] for e in events if e["type"] == "coupon.issued"
              for c in e["data"]["coupons"]]
    assert sorted(issued) == sorted(codes)


# -------------------------------------------------------- (2) per-customer limit --
@pytest.mark.postgresql
def test_per_customer_limit_holds_for_one_customer_typed_differently(app, client, cluster):
    shop = Shop(client, per_customer_limit=2)
    campaign_id = shop.campaign["id"]
    spellings = ["Bob", " bob ", "BOB"]

    replies = cluster.race([order(campaign_id, client.platform, customer_ref=spellings[i % 3])
                            for i in range(30)])

    assert tally(replies) == {(201, None): 2, (409, "customer_limit_reached"): 28}
    assert {r.json["customer_ref"] for r in replies if r.status == 201} == {"bob"}
    campaign = cluster.ok(cluster.get(f"campaigns/{campaign_id}", shop.manager))
    assert (campaign["sold"], campaign["issued"]) == (2, 2)
    assert len(cluster.coupons_csv(campaign_id, shop.manager)) == 2
    # Another customer still buys: the limit is per customer, not per deal.
    other = cluster.call(order(campaign_id, client.platform, customer_ref="Alice"), server=2)
    assert other.status == 201, other

    settle_events(app, cluster, shop.manager)
    assert event_counts(cluster.events(shop.manager)) == {
        "campaign.published": 1, "campaign.tipped": 1, "order.confirmed": 3, "coupon.issued": 3}


# ------------------------------------------------ (3) single-use, twenty tills --
@pytest.mark.postgresql
def test_single_use_coupon_scanned_by_20_tills_is_redeemed_once(app, client, cluster):
    shop = Shop(client)
    coupon = shop.coupon()
    code = coupon["code"]
    store_id = shop.store["id"]
    keys = scanner_keys(client, shop.merchant["id"], 20)

    replies = cluster.race([scan(k["key"], coupon, store_id, n) for n, k in enumerate(keys)])

    assert tally(replies) == {(201, None): 1, (409, "coupon_already_redeemed"): 19}, replies
    [winner_index] = [n for n, r in enumerate(replies) if r.status == 201]
    won = replies[winner_index].json
    assert won["coupon"]["code"] == code
    assert (won["coupon"]["status"], won["coupon"]["uses_left"]) == ("redeemed", 0)
    assert (won["store_id"], won["uses"]) == (store_id, 1)
    for reply in replies:
        if reply.status == 409:  # "with the earlier redemption's time and store"
            problem = reply.json
            assert reply.headers["content-type"].startswith("application/problem+json")
            assert problem["redemption_id"] == won["id"], problem
            assert problem["store_id"] == store_id, problem

    redemptions = cluster.pages("redemptions", shop.manager, code=code)
    assert [r["id"] for r in redemptions] == [won["id"]]
    assert redemptions[0]["api_key_id"] == keys[winner_index]["id"]
    assert redemptions[0]["device_id"] == f"till-{winner_index}"
    assert redemptions[0]["reversed_at"] is None

    attempts = cluster.pages("redemption-attempts", shop.manager, code=code)
    assert len(attempts) == 19
    assert {a["reason"] for a in attempts} == {"coupon_already_redeemed"}
    assert {a["action"] for a in attempts} == {"redeem"}
    assert {a["store_id"] for a in attempts} == {store_id}
    losers = [n for n in range(20) if n != winner_index]
    assert sorted(a["api_key_id"] for a in attempts) == sorted(keys[n]["id"] for n in losers)
    assert sorted(a["device_id"] for a in attempts) == sorted(f"till-{n}" for n in losers)

    seen = cluster.ok(cluster.get(f"coupons/{code}", shop.manager, server=2))
    assert (seen["status"], seen["uses_left"]) == ("redeemed", 0)
    assert [r["id"] for r in seen["redemptions"]] == [won["id"]]

    settle_events(app, cluster, shop.manager)
    redeemed = cluster.events(shop.manager, "coupon.redeemed", page_size=1)
    assert len(redeemed) == 1
    assert redeemed[0]["data"]["redemption"]["id"] == won["id"]
    assert redeemed[0]["data"]["coupon"]["uses_left"] == 0
    events = cluster.events(shop.manager)
    assert event_counts(events) == {"campaign.published": 1, "campaign.tipped": 1,
                                    "order.confirmed": 1, "coupon.issued": 1,
                                    "coupon.redeemed": 1}


# ------------------------------------------------- (4) five uses, twenty tills --
@pytest.mark.postgresql
def test_five_use_coupon_scanned_by_20_tills_is_redeemed_five_times(app, client, cluster):
    shop = Shop(client, uses_per_coupon=5)
    coupon = shop.coupon()
    code = coupon["code"]
    store_id = shop.store["id"]
    keys = scanner_keys(client, shop.merchant["id"], 20)

    replies = cluster.race([scan(k["key"], coupon, store_id, n) for n, k in enumerate(keys)])

    counts = tally(replies)
    assert counts[(201, None)] == 5, counts
    assert set(counts) <= {(201, None), (409, "coupon_already_redeemed"),
                           (422, "insufficient_uses")}, counts
    won = [r.json for r in replies if r.status == 201]
    assert sorted(w["coupon"]["uses_left"] for w in won) == [0, 1, 2, 3, 4]

    seen = cluster.ok(cluster.get(f"coupons/{code}", shop.manager, server=1))
    assert (seen["status"], seen["uses_total"], seen["uses_left"]) == ("redeemed", 5, 0)
    redemptions = cluster.pages("redemptions", shop.manager, code=code, page_size=2)
    assert sorted(r["id"] for r in redemptions) == sorted(w["id"] for w in won)
    assert sum(r["uses"] for r in redemptions) == 5
    attempts = cluster.pages("redemption-attempts", shop.manager, code=code)
    assert len(attempts) == 15
    stats = cluster.ok(cluster.get(f"campaigns/{shop.campaign['id']}/stats", shop.manager))
    assert (stats["redeemed"], stats["uses_redeemed"], stats["reversed"]) == (5, 5, 0)

    settle_events(app, cluster, shop.manager)
    redeemed = cluster.events(shop.manager, "coupon.redeemed", page_size=2)
    assert len(redeemed) == 5
    assert sorted(e["data"]["coupon"]["uses_left"] for e in redeemed) == [0, 1, 2, 3, 4]
    assert sorted(e["data"]["redemption"]["id"] for e in redeemed) == sorted(w["id"] for w in won)
    mine = coupon_events_in_order(cluster.events(shop.manager), code)
    assert [e["data"]["coupon"]["uses_left"] for e in mine] == [4, 3, 2, 1, 0]


# ----------------------------------------------------------- (5) tipping point --
@pytest.mark.postgresql
@pytest.mark.parametrize(("quantity", "max_coupons"), [(1, None), (2, None), (1, 10)],
                         ids=["quantity-1", "quantity-2", "tips-as-it-sells-out"])
def test_tipping_race_leaves_no_coupon_pending(app, client, cluster, quantity, max_coupons):
    shop = Shop(client, min_group_size=10, max_coupons=max_coupons)
    campaign_id = shop.campaign["id"]

    replies = cluster.race([order(campaign_id, client.platform, quantity=quantity)
                            for _ in range(30)])

    winners = 30 if max_coupons is None else max_coupons // quantity
    expected = {(201, None): winners}
    if winners < 30:
        expected[(409, "sold_out")] = 30 - winners
    assert tally(replies) == expected
    sold = winners * quantity
    order_ids = [r.json["id"] for r in replies if r.status == 201]
    codes = codes_of(replies)
    assert len(codes) == len(set(codes)) == sold

    campaign = cluster.ok(cluster.get(f"campaigns/{campaign_id}", shop.manager))
    assert (campaign["sold"], campaign["issued"], campaign["tipped"]) == (sold, sold, True)
    for index, order_id in enumerate(order_ids):
        placed = cluster.ok(cluster.get(f"orders/{order_id}", client.platform, server=index))
        assert placed["status"] == "confirmed", placed
        assert [c["status"] for c in placed["coupons"]] == ["active"] * quantity, placed
    rows = cluster.coupons_csv(campaign_id, shop.manager)
    assert len(rows) == sold
    assert Counter(row["status"] for row in rows) == {"active": sold}
    stats = cluster.ok(cluster.get(f"campaigns/{campaign_id}/stats", shop.manager))
    assert stats["coupons"]["pending"] == 0 and stats["coupons"]["active"] == sold, stats

    settle_events(app, cluster, shop.manager)
    events = cluster.events(shop.manager)
    assert event_counts(events) == {"campaign.published": 1, "campaign.tipped": 1,
                                    "order.confirmed": winners, "coupon.issued": winners}
    confirmed = [e["data"]["order"]["id"] for e in events if e["type"] == "order.confirmed"]
    assert sorted(confirmed) == sorted(order_ids)
    [tipped] = cluster.events(shop.manager, "campaign.tipped", page_size=1)
    assert tipped["data"]["campaign"]["id"] == campaign_id
    assert tipped["data"]["campaign"]["tipped"] is True
    assert 10 <= tipped["data"]["campaign"]["sold"] < 10 + quantity  # the order that crossed it


# -------------------------------------------------------------- (6) idempotency --
@pytest.mark.postgresql
def test_concurrent_orders_with_one_idempotency_key_create_one_order(app, client, cluster):
    shop = Shop(client)
    campaign_id = shop.campaign["id"]
    body = order(campaign_id, client.platform, customer_ref="Carol", quantity=2)
    body.headers["Idempotency-Key"] = "race-order-1"

    replies = cluster.race([body] * 20)

    # The work was done once, whatever the crowd was told ...
    campaign = cluster.ok(cluster.get(f"campaigns/{campaign_id}", shop.manager))
    assert (campaign["sold"], campaign["issued"]) == (2, 2)
    rows = cluster.coupons_csv(campaign_id, shop.manager)
    assert len(rows) == 2 and len({row["order_id"] for row in rows}) == 1, rows
    settle_events(app, cluster, shop.manager)
    assert event_counts(cluster.events(shop.manager)) == {
        "campaign.published": 1, "campaign.tipped": 1, "order.confirmed": 1, "coupon.issued": 1}
    # ... and every request was told the same: the first response, replayed.
    assert tally(replies) == {(201, None): 20}, [r for r in replies if r.status != 201][:3]
    assert len({r.text for r in replies}) == 1, {r.text for r in replies}
    replayed = [r for r in replies if r.headers.get("idempotent-replayed") == "true"]
    assert len(replayed) == 19
    placed = replies[0].json
    assert sorted(row["code"] for row in rows) == sorted(c["code"] for c in placed["coupons"])
    assert {row["order_id"] for row in rows} == {placed["id"]}


def _idempotent_redeem_race(client, cluster):
    shop = Shop(client)
    coupon = shop.coupon()
    request = scan(shop.roaming_scanner, coupon, shop.store["id"], 1)
    request.headers["Idempotency-Key"] = "race-scan-1"
    return shop, coupon, cluster.race([request] * 20)


@pytest.mark.postgresql
def test_concurrent_redeems_with_one_idempotency_key_redeem_once(app, client, cluster):
    shop, coupon, replies = _idempotent_redeem_race(client, cluster)

    # Redeemed once, whatever the tills were told ...
    redemptions = cluster.pages("redemptions", shop.manager, code=coupon["code"])
    assert len(redemptions) == 1, redemptions
    seen = cluster.ok(cluster.get(f"coupons/{coupon['code']}", shop.manager))
    assert (seen["status"], seen["uses_left"]) == ("redeemed", 0)
    settle_events(app, cluster, shop.manager)
    assert len(cluster.events(shop.manager, "coupon.redeemed")) == 1
    # ... and every till was told the same: the first response, replayed.
    assert tally(replies) == {(201, None): 20}, [r for r in replies if r.status != 201][:3]
    assert len({r.text for r in replies}) == 1
    assert replies[0].json["id"] == redemptions[0]["id"]


@pytest.mark.postgresql
def test_replayed_concurrent_redeems_record_no_refusals(app, client, cluster):
    """A replay "changes nothing" (the contract): retries of one successful scan are not
    refusals, so the manager's log of refused attempts must stay empty."""
    shop, coupon, replies = _idempotent_redeem_race(client, cluster)

    attempts = cluster.pages("redemption-attempts", shop.manager, code=coupon["code"])
    assert attempts == [], (f"{len(attempts)} refusals recorded for replays of one scan "
                            f"(replies: {tally(replies)}): {attempts[:2]}")


# ----------------------------------------- (7) redeem vs reverse vs void --
@pytest.mark.postgresql
def test_reverse_races_redeem_of_a_single_use_coupon(app, client, cluster):
    shop = Shop(client)
    coupon = shop.coupon()
    code = coupon["code"]
    store_id = shop.store["id"]
    first = cluster.ok(cluster.call(scan(shop.roaming_scanner, coupon, store_id, 0)), 201)
    keys = scanner_keys(client, shop.merchant["id"], 10)
    reverse = Request("POST", f"redemptions/{first['id']}/reverse", shop.manager,
                      {"reason": "wrong coupon"})
    requests = [item for n, k in enumerate(keys)
                for item in (reverse, scan(k["key"], coupon, store_id, n))]

    replies = cluster.race(requests)

    reversals, redeems = replies[0::2], replies[1::2]
    assert tally(reversals) == {(200, None): 1, (409, "redemption_already_reversed"): 9}
    won = [r.json for r in redeems if r.status == 201]
    assert len(won) <= 1  # one use was restored, once
    assert set(tally(redeems)) <= {(201, None), (409, "coupon_already_redeemed")}, tally(redeems)

    seen = cluster.ok(cluster.get(f"coupons/{code}", shop.manager))
    assert seen["uses_left"] == 1 - len(won)
    assert seen["status"] == ("redeemed" if won else "active")
    redemptions = cluster.pages("redemptions", shop.manager, code=code)
    assert len(redemptions) == 1 + len(won)
    assert [r["id"] for r in redemptions if r["reversed_at"]] == [first["id"]]
    kept = [r["id"] for r in redemptions if r["reversed_at"] is None]
    assert kept == [w["id"] for w in won]

    settle_events(app, cluster, shop.manager)
    mine = coupon_events_in_order(cluster.events(shop.manager), code)
    assert Counter(e["type"] for e in mine) == {"coupon.redeemed": 1 + len(won),
                                                "coupon.redemption_reversed": 1}
    assert mine[-1]["data"]["coupon"]["uses_left"] == seen["uses_left"]


@pytest.mark.postgresql
def test_void_races_redeem_and_exactly_one_wins(app, client, cluster):
    shop = Shop(client)
    coupon = shop.coupon()
    code = coupon["code"]
    store_id = shop.store["id"]
    keys = scanner_keys(client, shop.merchant["id"], 12)
    void = Request("POST", f"coupons/{code}/void", shop.manager, {"reason": "refunded"})
    requests = [void if n % 3 == 0 else scan(k["key"], coupon, store_id, n)
                for n, k in enumerate(keys)]

    replies = cluster.race(requests)

    voids = [r for n, r in enumerate(replies) if n % 3 == 0]
    redeems = [r for n, r in enumerate(replies) if n % 3]
    voided = sum(r.status == 200 for r in voids)
    redeemed = sum(r.status == 201 for r in redeems)
    assert voided + redeemed == 1, (tally(voids), tally(redeems))
    assert set(tally(voids)) <= {(200, None), (409, "invalid_state")}, tally(voids)
    assert set(tally(redeems)) <= {(201, None), (409, "coupon_already_redeemed"),
                                   (422, "coupon_voided")}, tally(redeems)
    if voided:
        assert tally(redeems) == {(422, "coupon_voided"): len(redeems)}

    seen = cluster.ok(cluster.get(f"coupons/{code}", shop.manager))
    assert seen["status"] == ("voided" if voided else "redeemed")
    assert len(seen["redemptions"]) == redeemed
    revoked = [r["code"] for r in cluster.pages("revocations", shop.manager)]
    assert revoked == ([code] if voided else [])

    settle_events(app, cluster, shop.manager)
    mine = coupon_events_in_order(cluster.events(shop.manager), code)
    assert [e["type"] for e in mine] == (["coupon.voided"] if voided else ["coupon.redeemed"])


@pytest.mark.postgresql
def test_reversals_race_redeems_of_a_five_use_coupon(app, client, cluster):
    shop = Shop(client, uses_per_coupon=5)
    coupon = shop.coupon()
    code = coupon["code"]
    store_id = shop.store["id"]
    earlier = [cluster.ok(cluster.call(scan(shop.roaming_scanner, coupon, store_id, n), server=n),
                          201)["id"] for n in range(3)]
    keys = scanner_keys(client, shop.merchant["id"], 10)
    reversals = [Request("POST", f"redemptions/{rid}/reverse", shop.manager, {"reason": "oops"})
                 for rid in earlier for _ in range(3)]
    redeems = [scan(k["key"], coupon, store_id, n) for n, k in enumerate(keys)]

    replies = cluster.race(reversals + redeems)

    reversed_replies, redeem_replies = replies[:9], replies[9:]
    for n, rid in enumerate(earlier):
        assert tally(reversed_replies[3 * n:3 * n + 3]) == {
            (200, None): 1, (409, "redemption_already_reversed"): 2}, rid
    won = [r.json for r in redeem_replies if r.status == 201]
    # Two uses were left throughout and three came back: at least 2, at most 5 succeed.
    assert 2 <= len(won) <= 5, tally(redeem_replies)
    assert set(tally(redeem_replies)) <= {(201, None), (409, "coupon_already_redeemed"),
                                          (422, "insufficient_uses")}, tally(redeem_replies)

    seen = cluster.ok(cluster.get(f"coupons/{code}", shop.manager))
    assert seen["uses_left"] == 5 - len(won)
    assert seen["status"] == ("redeemed" if len(won) == 5 else "active")
    redemptions = cluster.pages("redemptions", shop.manager, code=code)
    assert sorted(r["id"] for r in redemptions if r["reversed_at"]) == sorted(earlier)
    kept = [r for r in redemptions if r["reversed_at"] is None]
    assert sorted(r["id"] for r in kept) == sorted(w["id"] for w in won)
    assert sum(r["uses"] for r in kept) == seen["uses_total"] - seen["uses_left"]

    settle_events(app, cluster, shop.manager)
    mine = coupon_events_in_order(cluster.events(shop.manager), code)
    assert Counter(e["type"] for e in mine) == {"coupon.redeemed": 3 + len(won),
                                                "coupon.redemption_reversed": 3}
    assert mine[-1]["data"]["coupon"]["uses_left"] == seen["uses_left"]


# ---------------------------------------- (8) offline batches, two stores at once --
def offline_batch(key: str, coupons: list[dict], store_id: str, device: str, uses: int = 1,
                  shuffle: int | None = None) -> Request:
    """POST /redemptions/batch of every coupon's QR, scanned offline minutes ago at `store_id`
    by `device` (its nonces are the device's and the coupon's), in an order of its own."""
    order = list(coupons)
    if shuffle is not None:
        random.Random(shuffle).shuffle(order)
    scanned = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    return Request("POST", "redemptions/batch", key, {"items": [
        {"qr": c["qr_payload"], "store_id": store_id, "scanned_at": scanned, "device_id": device,
         "nonce": f"{device}-{c['code']}", "uses": uses} for c in order]})


def batch_outcomes(replies) -> Counter:
    assert {r.status for r in replies} == {200}, [r for r in replies if r.status != 200][:3]
    return Counter((item["code"], item["status"], item["reason"])
                   for reply in replies for item in reply.json["items"])


@pytest.mark.postgresql
def test_coupons_uploaded_at_once_from_two_stores_are_accepted_once_each(app, client, cluster):
    shop = Shop(client)
    coupons = shop.coupons(12)
    stores = [shop.store["id"], shop.other_store["id"]]
    keys = scanner_keys(client, shop.merchant["id"], 2)
    # 16 tills, half at each store, each uploading all 12 coupons in its own order: the
    # locks are taken in code order, so no two batches deadlock however they overlap.
    replies = cluster.race([offline_batch(keys[n % 2]["key"], coupons, stores[n % 2], f"till-{n}",
                                          shuffle=n) for n in range(16)])

    outcomes = batch_outcomes(replies)
    for coupon in coupons:
        code = coupon["code"]
        assert outcomes[(code, "accepted", None)] == 1, code
        assert outcomes[(code, "conflict", "coupon_already_redeemed")] == 15, code
    assert sum(outcomes.values()) == 16 * 12
    for coupon in coupons:
        seen = cluster.ok(cluster.get(f"coupons/{coupon['code']}", shop.manager, server=1))
        assert (seen["status"], seen["uses_left"]) == ("redeemed", 0)
        assert len(seen["redemptions"]) == 1
    conflicts = cluster.pages("redemption-attempts", shop.manager, page_size=100, reason="offline_conflict")
    assert len(conflicts) == 15 * 12
    assert Counter(a["coupon_code"] for a in conflicts) == {c["code"]: 15 for c in coupons}
    settle_events(app, cluster, shop.manager)
    redeemed = cluster.events(shop.manager, "coupon.redeemed", page_size=50)
    assert sorted(e["coupon_code"] for e in redeemed) == sorted(c["code"] for c in coupons)


@pytest.mark.postgresql
def test_a_five_use_coupon_uploaded_by_20_tills_never_goes_below_zero(app, client, cluster):
    shop = Shop(client, uses_per_coupon=5)
    coupon = shop.coupon()
    stores = [shop.store["id"], shop.other_store["id"]]
    keys = scanner_keys(client, shop.merchant["id"], 2)
    replies = cluster.race([offline_batch(keys[n % 2]["key"], [coupon], stores[n % 2], f"till-{n}",
                                          uses=1 + n % 2) for n in range(20)])

    outcomes = batch_outcomes(replies)
    assert set(outcomes) <= {(coupon["code"], "accepted", None),
                             (coupon["code"], "conflict", "coupon_already_redeemed"),
                             (coupon["code"], "conflict", "insufficient_uses")}, outcomes
    taken = sum(1 + n % 2 for n, reply in enumerate(replies)
                if reply.json["items"][0]["status"] == "accepted")
    assert taken == 5  # a 1-use upload always comes to take a last use a 2-use one cannot
    seen = cluster.ok(cluster.get(f"coupons/{coupon['code']}", shop.manager))
    assert seen["uses_left"] == 5 - taken >= 0
    assert sum(r["uses"] for r in seen["redemptions"]) == taken


@pytest.mark.postgresql
def test_one_queue_uploaded_ten_times_at_once_is_accepted_once_and_duplicate_after(app, client, cluster):
    shop = Shop(client)
    coupons = shop.coupons(8)
    batch = offline_batch(shop.scanner, coupons, shop.store["id"], "till-retrying")
    replies = cluster.race([batch] * 10)

    outcomes = batch_outcomes(replies)
    for coupon in coupons:
        assert outcomes[(coupon["code"], "accepted", None)] == 1
        assert outcomes[(coupon["code"], "duplicate", None)] == 9
    ids = {item["redemption_id"] for reply in replies for item in reply.json["items"]}
    assert len(ids) == 8
    assert cluster.pages("redemption-attempts", shop.manager) == []
