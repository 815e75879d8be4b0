"""Events reach integrations: fan-out in the transaction, a drain woken after commit, retries, the sweep.

Real Redis and real RQ (a SimpleWorker in burst mode, in this process, without RQ's
scheduler: retries wait in the database and the relay sweep wakes their integration
once they are due), real HTTP receivers on 127.0.0.1, real PostgreSQL or SQLite.
"""

from __future__ import annotations

import base64
import time
from datetime import datetime, timedelta

import pytest
from rq import Queue, SimpleWorker
from rq.registry import ScheduledJobRegistry
from sqlalchemy import update
from standardwebhooks.webhooks import Webhook

from couponsvc.deliveries.schedule import MAX_ATTEMPTS, WAITS, next_wait
from couponsvc.extensions import db
from couponsvc.jobs import runner
from couponsvc.models import Delivery
from couponsvc.timeutil import utcnow
from tests.factories import Shop
from tests.integrations.receiver import Receiver

pytestmark = pytest.mark.config(ALLOW_PRIVATE_WEBHOOK_TARGETS=True)


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


def work_off(app):
    """One burst worker on the queues `couponsvc worker` serves; no RQ scheduler."""
    connection = runner(app).redis()
    with app.app_context():
        SimpleWorker([Queue(name, connection=connection) for name in ("deliveries", "default")],
                     connection=connection).work(burst=True)


def nothing_waits_in_rq(app) -> bool:
    """No job queued or scheduled for later on the queues a delivery could use."""
    connection = runner(app).redis()
    return all(Queue(name, connection=connection).count == 0
               and ScheduledJobRegistry(name, connection=connection).count == 0
               for name in ("deliveries", "default"))


def webhook(client, shop, receiver, events=None):
    body = {"adapter": "webhook", "config": {"url": receiver.url + "/hook"}}
    if events is not None:
        body["events"] = events
    return client.ok(client.post(f"merchants/{shop.merchant['id']}/integrations", body,
                                 key=shop.manager), 201)


def deliveries(client, shop, integration, **query):
    return client.ok(client.get(f"integrations/{integration['id']}/deliveries", key=shop.manager,
                                query_string=query))["data"]


def make_due(app):
    with app.app_context():
        db.session.execute(update(Delivery).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()


def sweep(app):
    from workers.relay import sweep as sweep_job

    with app.app_context():
        return sweep_job()


def test_a_redemption_reaches_a_webhook_signed(client, app, receiver):
    shop = Shop(client)
    integration = webhook(client, shop, receiver, events=["coupon.redeemed"])
    assert integration["secret"].startswith("whsec_")
    assert "secret" not in client.ok(client.get(f"integrations/{integration['id']}", key=shop.manager))["config"]
    code = shop.coupon()["code"]
    redemption = client.ok(shop.redeem(code), 201)
    work_off(app)
    assert len(receiver.requests) == 1
    sent = receiver.requests[0]
    payload = Webhook(integration["secret"]).verify(sent.body, sent.headers)
    assert payload["type"] == "coupon.redeemed"
    assert payload["data"]["redemption"]["id"] == redemption["id"]
    assert payload["data"]["coupon"]["code"] == code
    [delivery] = deliveries(client, shop, integration)
    assert delivery["status"] == "succeeded" and delivery["attempts"] == 1
    assert delivery["event_id"] == sent.headers["webhook-id"]


def test_only_subscribed_events_of_the_own_merchant_are_delivered(client, app, receiver):
    shop, other = Shop(client), Shop(client)
    integration = webhook(client, shop, receiver, events=["coupon.redeemed"])
    client.ok(other.redeem(other.coupon()["code"]), 201)   # another merchant's redemption
    shop.coupon()                                           # an unsubscribed event type
    work_off(app)
    assert receiver.requests == []
    assert deliveries(client, shop, integration) == []


def test_500_then_200_is_retried_with_the_same_webhook_id(client, app, receiver):
    shop = Shop(client)
    integration = webhook(client, shop, receiver, events=["coupon.redeemed"])
    receiver.answer(500, "oops")
    client.ok(shop.redeem(shop.coupon()["code"]), 201)
    work_off(app)
    [failed] = deliveries(client, shop, integration, status="failed")
    assert failed["last_status_code"] == 500 and failed["attempts"] == 1
    [first] = client.ok(client.get(f"deliveries/{failed['id']}", key=shop.manager))["attempt_log"]
    # the ~5 s retry waits in the database, not in RQ (no scheduler, no delayed job)
    wait = (datetime.fromisoformat(failed["next_attempt_at"])
            - datetime.fromisoformat(first["started_at"])).total_seconds()
    assert 4 <= wait <= 7 + first["duration_ms"] / 1000, wait  # 5 s ± 20 %, counted after the call
    assert nothing_waits_in_rq(app)
    assert sweep(app) == 0  # not due yet
    make_due(app)
    assert sweep(app) == 1  # due: the sweep wakes the integration, one drain
    assert sweep(app) == 0  # that drain holds the lock: only flagged, not queued twice
    work_off(app)
    [done] = deliveries(client, shop, integration)
    assert done["status"] == "succeeded" and done["attempts"] == 2
    ids = {request.headers["webhook-id"] for request in receiver.requests}
    assert len(receiver.requests) == 2 and len(ids) == 1
    log = client.ok(client.get(f"deliveries/{done['id']}", key=shop.manager))["attempt_log"]
    assert [(a["number"], a["status_code"], a["outcome"]) for a in log] == [(1, 500, "retry"), (2, 200, "succeeded")]
    assert nothing_waits_in_rq(app)


def test_a_long_retry_after_is_left_to_the_sweep(client, app, receiver):
    shop = Shop(client)
    integration = webhook(client, shop, receiver, events=["coupon.redeemed"])
    receiver.answer(503, "busy", headers={"Retry-After": "900"})
    client.ok(shop.redeem(shop.coupon()["code"]), 201)
    work_off(app)
    [failed] = deliveries(client, shop, integration, status="failed")
    [first] = client.ok(client.get(f"deliveries/{failed['id']}", key=shop.manager))["attempt_log"]
    wait = (datetime.fromisoformat(failed["next_attempt_at"])
            - datetime.fromisoformat(first["started_at"])).total_seconds()
    assert 900 <= wait <= 905 + first["duration_ms"] / 1000, wait  # the receiver's Retry-After, not the ~5 s backoff
    assert nothing_waits_in_rq(app)
    assert sweep(app) == 0  # not due for 15 minutes
    make_due(app)
    assert sweep(app) == 1
    assert sweep(app) == 0  # its drain is queued and holds the lock: only flagged
    work_off(app)
    assert deliveries(client, shop, integration)[0]["status"] == "succeeded"
    assert len(receiver.requests) == 2
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1


def test_410_disables_the_integration_and_says_so(client, app, receiver):
    shop = Shop(client)
    integration = webhook(client, shop, receiver)
    receiver.answer(410, "gone")
    client.ok(shop.redeem(shop.coupon()["code"]), 201)
    work_off(app)
    state = client.ok(client.get(f"integrations/{integration['id']}", key=shop.manager))
    assert state["status"] == "disabled" and "410" in state["disabled_reason"]
    disabled = client.events(type="integration.disabled")
    assert [e["data"]["integration"]["id"] for e in disabled] == [integration["id"]]
    assert client.ok(client.patch(f"integrations/{integration['id']}", {"status": "active"},
                                  key=shop.manager))["status"] == "active"


def test_a_dead_delivery_can_be_retried_by_hand(client, app, receiver):
    shop = Shop(client)
    integration = webhook(client, shop, receiver, events=["coupon.redeemed"])
    receiver.default.status = 503
    client.ok(shop.redeem(shop.coupon()["code"]), 201)
    work_off(app)
    with app.app_context():
        db.session.execute(update(Delivery).values(attempts=MAX_ATTEMPTS - 1, status="failed",
                                                   next_attempt_at=utcnow()))
        db.session.commit()
    sweep(app)
    work_off(app)
    [dead] = deliveries(client, shop, integration, status="dead")
    receiver.default.status = 200
    client.ok(client.post(f"deliveries/{dead['id']}/retry", key=shop.manager), 202)
    work_off(app)
    assert deliveries(client, shop, integration)[0]["status"] == "succeeded"


@pytest.mark.config(REDIS_URL="redis://127.0.0.1:1/0")
def test_an_event_written_while_redis_is_down_is_swept_later(client, app, receiver, migrated, instance_path):
    from tests.conftest import make_app

    shop = Shop(client)
    integration = webhook(client, shop, receiver, events=["coupon.redeemed"])
    client.ok(shop.redeem(shop.coupon()["code"]), 201)  # the enqueue after commit fails: logged
    [pending] = deliveries(client, shop, integration)
    assert pending["status"] == "pending"
    healthy = make_app(migrated, instance_path, ALLOW_PRIVATE_WEBHOOK_TARGETS=True)
    assert sweep(healthy) == 1
    work_off(healthy)
    assert deliveries(client, shop, integration)[0]["status"] == "succeeded"
    assert len(receiver.requests) == 1


@pytest.mark.config(REDIS_URL=None)
def test_without_redis_deliveries_run_inside_the_process(client, app, receiver):
    shop = Shop(client)
    webhook(client, shop, receiver, events=["coupon.redeemed"])
    client.ok(shop.redeem(shop.coupon()["code"]), 201)
    deadline = time.monotonic() + 20
    while not receiver.requests and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(receiver.requests) == 1


def test_test_sends_a_ping_to_that_integration_only(client, app, receiver):
    shop = Shop(client)
    first, second = webhook(client, shop, receiver), webhook(client, shop, receiver)
    delivery = client.ok(client.post(f"integrations/{first['id']}/test", key=shop.manager), 202)
    assert delivery["event_type"] == "ping" and delivery["status"] == "pending"
    work_off(app)
    assert len(receiver.requests) == 1
    assert Webhook(first["secret"]).verify(receiver.requests[0].body, receiver.requests[0].headers)["type"] == "ping"
    assert deliveries(client, shop, second) == []


def test_adapters_are_listed_with_their_config_schema(client):
    adapters = {a["name"]: a for a in client.ok(client.get("adapters"))["data"]}
    assert {"webhook", "odoo", "wecom", "dingtalk", "mastodon"} <= set(adapters)
    assert adapters["webhook"]["kind"] == "erp" and adapters["wecom"]["kind"] == "social"
    assert "url" in adapters["webhook"]["config_schema"]["properties"]


@pytest.mark.config(ALLOW_PRIVATE_WEBHOOK_TARGETS=False)
def test_private_targets_are_refused(client):
    shop = Shop(client)
    for url in ("http://127.0.0.1:9/hook", "http://10.0.0.1/hook", "http://[::1]/x"):
        refused = client.post(f"merchants/{shop.merchant['id']}/integrations",
                              {"adapter": "webhook", "config": {"url": url}}, key=shop.manager)
        assert refused.status_code == 422 and refused.get_json()["code"] == "validation_error", url


def test_backoff_starts_near_5_s_and_lasts_more_than_a_day():
    import random

    rng = random.Random(7)
    assert 4 <= next_wait(1, rng=rng) <= 6
    assert sum(WAITS) >= 24 * 3600
    assert next_wait(MAX_ATTEMPTS) is None
    assert next_wait(1, retry_after=120, rng=rng) == 120
    assert next_wait(1, retry_after=10**9, rng=rng) == 6 * 3600


def test_an_integration_failing_for_days_is_disabled(client, app, receiver):
    from couponsvc.models import Integration

    shop = Shop(client)
    integration = webhook(client, shop, receiver, events=["coupon.redeemed"])
    receiver.default.status = 500
    with app.app_context():
        db.session.execute(update(Integration).values(failing_since=utcnow() - timedelta(days=4)))
        db.session.commit()
    client.ok(shop.redeem(shop.coupon()["code"]), 201)
    work_off(app)
    state = client.ok(client.get(f"integrations/{integration['id']}", key=shop.manager))
    assert state["status"] == "disabled" and "failed since" in state["disabled_reason"]
    assert [e["data"]["integration"]["id"] for e in client.events(type="integration.disabled")] == [integration["id"]]
    [delivery] = deliveries(client, shop, integration)
    assert delivery["status"] == "held"  # kept: it is sent once the integration is enabled again


def test_a_receiver_that_does_not_answer_in_time_is_retried(client, app, receiver):
    shop = Shop(client)
    body = {"adapter": "webhook", "config": {"url": receiver.url}, "events": ["coupon.redeemed"], "timeout": 0.5}
    integration = client.ok(client.post(f"merchants/{shop.merchant['id']}/integrations", body,
                                        key=shop.manager), 201)
    receiver.answer(200, delay=2)
    client.ok(shop.redeem(shop.coupon()["code"]), 201)
    work_off(app)
    [failed] = deliveries(client, shop, integration)
    assert failed["status"] == "retrying" and failed["last_status_code"] is None
    assert failed["last_error"]


def test_a_published_deal_is_announced_to_a_wecom_group(client, app, receiver):
    shop = Shop(client)
    body = {"adapter": "wecom", "config": {"webhook_url": receiver.url + "/cgi-bin/webhook/send?key=k"},
            "events": ["campaign.published"]}
    client.ok(client.post(f"merchants/{shop.merchant['id']}/integrations", body, key=shop.manager), 201)
    receiver.default.body = b'{"errcode": 0, "errmsg": "ok"}'
    campaign = client.campaign(shop.merchant["id"], title="砂锅粥双人餐", price=5900, list_price=8800)
    work_off(app)
    text, poster = (sent.json() for sent in receiver.requests)  # the announcement, then its poster
    assert text["msgtype"] == "markdown"
    assert "砂锅粥双人餐" in text["markdown"]["content"] and "¥59.00" in text["markdown"]["content"]
    assert f"/d/{campaign['id']})" in text["markdown"]["content"]  # the deal page: no template set
    assert poster["msgtype"] == "image"
    assert base64.b64decode(poster["image"]["base64"]).startswith(b"\x89PNG")
