"""The counts move with real redeems, orders, deliveries and jobs; the deployment's figures
read the database and Redis at scrape time. Real database, real Redis, a real RQ worker
(burst, in this process), a real HTTP receiver; each figure read back from /metrics."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from rq import Queue, SimpleWorker
from sqlalchemy import update

from couponsvc import codes
from couponsvc.extensions import db
from couponsvc.jobs import runner
from couponsvc.models import Delivery
from couponsvc.timeutil import utcnow
from tests.factories import Shop
from tests.integrations.receiver import Receiver
from tests.racing import wait_until

from .scrape import scrape, value

pytestmark = pytest.mark.config(ALLOW_PRIVATE_WEBHOOK_TARGETS=True)


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


def work_off(app):
    connection = runner(app).redis()
    with app.app_context():
        SimpleWorker([Queue(name, connection=connection) for name in ("deliveries", "default")],
                     connection=connection).work(burst=True)


def webhook(client, shop, receiver):
    return client.ok(client.post(f"merchants/{shop.merchant['id']}/integrations", {
        "adapter": "webhook", "config": {"url": receiver.url + "/hook"},
        "events": ["coupon.redeemed"]}, key=shop.manager), 201)


def moved(before, after, name, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_redeems_are_counted_by_outcome_and_timed(client):
    shop = Shop(client)
    code = shop.coupon()["code"]
    before = scrape(client)
    client.ok(shop.redeem(code), 201)
    assert shop.redeem(code).status_code == 409  # used up
    assert shop.redeem(codes.generate()).status_code == 404  # nobody's coupon
    after = scrape(client)
    assert moved(before, after, "couponsvc_redemptions_total", outcome="redeemed") == 1
    assert moved(before, after, "couponsvc_redemptions_total", outcome="coupon_already_redeemed") == 1
    assert moved(before, after, "couponsvc_redemptions_total", outcome="coupon_not_found") == 1
    assert moved(before, after, "couponsvc_redeem_seconds_count") == 3
    assert moved(before, after, "couponsvc_redeem_seconds_sum") > 0
    assert moved(before, after, "couponsvc_http_requests_total", method="POST",
                 route="/api/v1/redemptions", status="201") == 1


def test_orders_are_counted_by_outcome(client):
    shop = Shop(client, max_coupons=2)
    before = scrape(client)
    shop.coupons(2)
    assert client.post(f"campaigns/{shop.campaign['id']}/orders",
                       {"customer_ref": "late buyer", "quantity": 1}).status_code == 409
    after = scrape(client)
    assert moved(before, after, "couponsvc_orders_total", outcome="placed") == 1
    assert moved(before, after, "couponsvc_orders_total", outcome="sold_out") == 1


def test_deliveries_and_jobs_are_counted_and_the_lag_seen(client, app, receiver):
    shop = Shop(client)
    webhook(client, shop, receiver)
    receiver.answer(500, "not now")
    client.ok(shop.redeem(shop.coupon()["code"]), 201)
    queued = scrape(client)
    assert value(queued, "couponsvc_queue_jobs", queue="deliveries", state="queued") == 1
    assert value(queued, "couponsvc_outbox_unpositioned") >= 1  # the relay sweep has not run
    before = queued
    work_off(app)  # the drain: the receiver answers 500, a retry is due in about 5 s
    after = scrape(client)
    assert moved(before, after, "couponsvc_deliveries_total", adapter="webhook", status="retry") == 1
    assert moved(before, after, "couponsvc_jobs_total", task="drain", outcome="succeeded") == 1
    assert moved(before, after, "couponsvc_job_seconds_count", task="drain") == 1
    assert value(after, "couponsvc_queue_jobs", queue="deliveries", state="queued") == 0
    assert value(after, "couponsvc_delivery_lag_seconds") == 0  # the retry is not due yet

    with app.app_context():  # the retry came due a minute ago and nobody sent it
        db.session.execute(update(Delivery).values(next_attempt_at=utcnow() - timedelta(seconds=60)))
        db.session.commit()
    late = scrape(client)
    assert 60 <= value(late, "couponsvc_delivery_lag_seconds") < 600

    from workers.relay import sweep

    with app.app_context():
        sweep()  # numbers the events, wakes the integration: its drain is queued
    work_off(app)
    # On PostgreSQL an event is numbered once every older transaction of the cluster has
    # ended (another process's may still run): number again until none is left, boundedly
    wait_until(lambda: _numbered(app), "the events to be numbered", 20)
    done = scrape(client)
    assert moved(late, done, "couponsvc_deliveries_total", adapter="webhook", status="succeeded") == 1
    assert moved(late, done, "couponsvc_jobs_total", task="relay-sweep", outcome="succeeded") == 1
    assert value(done, "couponsvc_delivery_lag_seconds") == 0
    assert value(done, "couponsvc_outbox_unpositioned") == 0
    assert value(done, "couponsvc_scrape_source_up", source="database") == 1
    assert value(done, "couponsvc_scrape_source_up", source="queue") == 1
    assert len(receiver.requests) == 2


def _numbered(app) -> bool:
    from couponsvc.outbox.positions import assign_positions, unpositioned_count

    with app.app_context():
        assign_positions(db.session)
        db.session.commit()
        return unpositioned_count(db.session) == 0


def test_a_failing_job_is_counted_failed(client, app):
    from workers.deliver import drain

    before = REGISTRY.get_sample_value("couponsvc_jobs_total", {"task": "drain", "outcome": "failed"}) or 0
    with app.app_context(), pytest.raises(TypeError):
        drain("int_missing")  # a job called wrongly raises, and is counted failed
    after = REGISTRY.get_sample_value("couponsvc_jobs_total", {"task": "drain", "outcome": "failed"})
    assert after == before + 1


@pytest.mark.config(METRICS=False)
def test_counting_off_counts_nothing(client):
    shop = Shop(client)
    code = shop.coupon()["code"]
    before = REGISTRY.get_sample_value("couponsvc_redemptions_total", {"outcome": "redeemed"}) or 0
    client.ok(shop.redeem(code), 201)
    after = REGISTRY.get_sample_value("couponsvc_redemptions_total", {"outcome": "redeemed"}) or 0
    assert after == before


@pytest.mark.config(REDIS_URL=None)
def test_in_process_jobs_are_counted_as_a_queue_of_their_own(client, app):
    figures = scrape(client)
    assert ("couponsvc_queue_jobs", frozenset({("queue", "in-process"), ("state", "queued")})) in figures


@pytest.mark.config(LOOKUP_LIMIT_PER_KEY="2/hour")  # an hour: a window boundary mid-test is unlikely
def test_look_ups_refused_by_the_budget_are_counted_by_the_budget_spent(client):
    shop = Shop(client)
    before = scrape(client)
    for _ in range(2):
        assert shop.redeem(codes.generate()).status_code == 404
    assert shop.redeem(codes.generate()).status_code == 429
    after = scrape(client)
    assert moved(before, after, "couponsvc_lookups_rate_limited_total", kind="key") == 1
    assert moved(before, after, "couponsvc_lookups_rate_limited_total", kind="address") == 0
    assert moved(before, after, "couponsvc_redemptions_total", outcome="coupon_not_found") == 2
