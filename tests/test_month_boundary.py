"""Across the turn of a month: a redeem, its delivery, a refused redeem, a reversal and an
offline batch made on either side of midnight UTC of the first day. On PostgreSQL each row
lands in its month's partition (migration 0015), a delivery in its event's, and GET
/events pages through both months in commit order; on SQLite the same answers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from couponsvc.extensions import db
from couponsvc.partitions import add_months, month_of, partition_name
from tests.factories import Shop, iso

pytestmark = pytest.mark.config(ALLOW_PRIVATE_WEBHOOK_TARGETS=True)

# the first instant of next month: its partition was made by the migration (months ahead)
TURN = datetime.combine(add_months(month_of(datetime.now(UTC)), 1), datetime.min.time(), UTC)



def _rows(app, sql: str) -> list:
    with app.app_context():
        found = db.session.execute(text(sql)).all()
        db.session.remove()
    return found


def test_redeem_reverse_batch_and_events_across_the_turn_of_a_month(app, client, clock):
    shop = Shop(client, valid_until=iso(TURN + timedelta(days=3)))
    hook = client.ok(client.post(f"merchants/{shop.merchant['id']}/integrations", {
        "adapter": "webhook", "config": {"url": "http://127.0.0.1:9/hook"},
        "events": ["coupon.redeemed", "coupon.redemption_reversed"]}, key=shop.manager), 201)
    online, offline = shop.coupons(2)

    clock.stopped_at = TURN - timedelta(seconds=1)  # the last second of this month
    redeemed = client.ok(shop.redeem(online["code"]), 201)

    clock.stopped_at = TURN + timedelta(seconds=1)  # the first of the next
    again = shop.redeem(online["code"])
    assert again.status_code == 409, again.get_data(as_text=True)  # a refused attempt
    reversed_ = client.ok(client.post(f"redemptions/{redeemed['id']}/reverse", {"reason": "wrong table"},
                                      key=shop.scanner))
    assert reversed_["reversed_at"] == iso(TURN + timedelta(seconds=1))
    scanned = TURN - timedelta(seconds=30)
    batch = client.ok(client.post("redemptions/batch", {"items": [
        {"qr": offline["qr_payload"], "scanned_at": iso(scanned), "device_id": "till-1", "nonce": "n1"}]},
        key=shop.scanner))["items"]
    assert [item["status"] for item in batch] == ["accepted"]
    app.extensions["couponsvc.jobs"].wait_idle()
    clock.stopped_at = None

    events = [e for e in client.events(shop.manager) if e["type"].startswith("coupon.redemption")
              or e["type"] == "coupon.redeemed"]
    assert [e["type"] for e in events] == ["coupon.redeemed", "coupon.redemption_reversed",
                                           "coupon.redeemed"]
    assert [e["created_at"] for e in events] == [iso(TURN - timedelta(seconds=1)),
                                                 iso(TURN + timedelta(seconds=1)),
                                                 iso(TURN + timedelta(seconds=1))]
    paged, after = [], None  # one event a page: a cursor crosses from one month to the next
    while True:
        page = client.ok(client.get("events", key=shop.manager,
                                    query_string={"limit": 1, **({"after": after} if after else {})}))
        paged += [e["id"] for e in page["data"]]
        if (after := page["next"]) is None:
            break
    assert paged[-3:] == [e["id"] for e in events]
    deliveries = client.ok(client.get(f"integrations/{hook['id']}/deliveries", key=shop.manager))["data"]
    assert len(deliveries) == 3
    assert client.ok(client.get(f"redemptions/{batch[0]['redemption_id']}", key=shop.manager))[
        "scanned_at"] == iso(scanned)

    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        return
    before, after_turn = (month_of(TURN - timedelta(seconds=1)), month_of(TURN))
    assert sorted(_rows(app, "SELECT id, tableoid::regclass::text FROM redemptions")) == sorted([
        (redeemed["id"], partition_name("redemptions", before)),
        (batch[0]["redemption_id"], partition_name("redemptions", after_turn))])
    assert _rows(app, "SELECT tableoid::regclass::text FROM redemption_attempts") == [
        (partition_name("redemption_attempts", after_turn),)]
    assert [row[0] for row in _rows(app, "SELECT tableoid::regclass::text FROM events "
                                                  "WHERE type LIKE 'coupon.rede%' ORDER BY position")] == [
        partition_name("events", before)] + [partition_name("events", after_turn)] * 2
    # each delivery in its event's month, at its event's time
    assert _rows(app, "SELECT d.tableoid::regclass::text, e.tableoid::regclass::text, "
                      "d.created_at = e.created_at FROM deliveries d JOIN events e ON e.seq = d.event_seq "
                      "ORDER BY e.position") == [
        (partition_name("deliveries", before), partition_name("events", before), True),
        (partition_name("deliveries", after_turn), partition_name("events", after_turn), True),
        (partition_name("deliveries", after_turn), partition_name("events", after_turn), True)]
    assert _rows(app, "SELECT count(*) FROM events_default")[0][0] == 0
