"""Each channel's rate limits, kept by the drain per integration: what would go over waits for
the window, uncounted, instead of collecting the channel's refusals.

The limiter is real (`limits`' moving window, in Redis and in memory), the drain is RQ's
worker in this process, the channel a local stand-in that refuses as the real one does.
No test sleeps through a real window: the limits are declared with a window of 2 s where
the drain's pacing is watched, and a held delivery is brought due by moving its time.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select, update

import tests.conftest as root
from couponsvc.deliveries.channel_limits import ChannelLimiter
from couponsvc.extensions import db
from couponsvc.models import Delivery, DeliveryAttempt, Integration
from couponsvc.outbox.emit import emit
from couponsvc.timeutil import utcnow
from integrations.limits import RateLimit
from integrations.wecom import WeComAdapter
from tests.factories import Shop, in_db
from tests.integrations.receiver import Receiver
from tests.integrations.services import FakeWeCom
from workers.deliver import channel_limiter

from .test_drain import sweep, work_off

pytestmark = pytest.mark.config(ALLOW_PRIVATE_WEBHOOK_TARGETS=True)


# ------------------------------------------------------------------------ the limiter --
@pytest.fixture(params=["memory", "redis"])
def limiter(request):
    return ChannelLimiter.from_url(root.REDIS_URL if request.param == "redis" else None)


def test_a_window_admits_its_count_then_says_how_long_to_wait(limiter):
    limits = (RateLimit("messages", 3, 60),)
    name = f"int_{time.time_ns()}"
    assert [limiter.admit(name, limits, {"messages": 1}) for _ in range(3)] == [None] * 3
    wait = limiter.admit(name, limits, {"messages": 1})
    assert wait is not None and 55 < wait <= 60
    assert limiter.admit(f"{name}-other", limits, {"messages": 1}) is None  # per integration


def test_every_limit_is_kept_and_a_delivery_uses_several_units(limiter):
    limits = (RateLimit("messages", 100, 60), RateLimit("messages", 5, 1), RateLimit("media", 2, 1800))
    name = f"int_{time.time_ns()}"
    assert limiter.admit(name, limits, {"messages": 2, "media": 1}) is None
    assert limiter.admit(name, limits, {"messages": 2, "media": 1}) is None
    wait = limiter.admit(name, limits, {"messages": 1, "media": 1})  # the media are used up
    assert wait is not None and wait > 1700
    assert limiter.admit(name, limits, {"messages": 1}) is None  # 5 messages in the second
    assert 0 < limiter.admit(name, limits, {"messages": 1}) <= 1


def test_nothing_used_is_nothing_counted(limiter):
    limits = (RateLimit("posts", 1, 3600),)
    name = f"int_{time.time_ns()}"
    assert limiter.admit(name, limits, {}) is None and limiter.admit(name, (), {"posts": 1}) is None
    assert limiter.admit(name, limits, {"posts": 1}) is None
    assert limiter.admit(name, limits, {"posts": 1}) is not None


def test_counts_are_shared_through_redis():
    limits = (RateLimit("messages", 2, 60),)
    name = f"int_{time.time_ns()}"
    one, two = ChannelLimiter.from_url(root.REDIS_URL), ChannelLimiter.from_url(root.REDIS_URL)
    assert one.admit(name, limits, {"messages": 1}) is None
    assert two.admit(name, limits, {"messages": 1}) is None
    assert one.admit(name, limits, {"messages": 1}) is not None


def test_an_unreachable_counter_lets_deliveries_through(caplog):
    limiter = ChannelLimiter.from_url("redis://127.0.0.1:1/0")
    assert limiter.admit("int_x", (RateLimit("messages", 1, 60),), {"messages": 1}) is None
    assert "could not be counted" in caplog.text


# --------------------------------------------------------------------------- the drain --
@pytest.fixture
def robot():
    service = FakeWeCom(key="k", window=1.8)  # WeCom's 20 a minute, its minute shortened
    with Receiver() as receiver:
        receiver.handler = service
        service.url = receiver.url
        yield service


def wecom(client, shop, robot) -> str:
    body = {"adapter": "wecom", "events": ["campaign.published"],
            "config": {"webhook_url": robot.url + "/cgi-bin/webhook/send?key=k", "poster": "none"}}
    return client.ok(client.post(f"merchants/{shop.merchant['id']}/integrations", body, key=shop.manager),
                     201)["id"]


def announce(app, merchant_id: str, count: int) -> list[str]:
    titles = [f"第 {n} 号团购" for n in range(count)]
    with app.app_context():
        for n, title in enumerate(titles):
            emit(db.session, "campaign.published", merchant_id=merchant_id, data={"campaign": {
                "id": f"cmp_limit_{n}", "merchant_id": merchant_id, "title": title, "price": 990,
                "currency": "CNY", "sold": 0, "min_group_size": 1}})
        db.session.commit()
        db.session.remove()
    return titles


def delivered(app, integration_id: str):
    with app.app_context():
        found = db.session.execute(select(Delivery.status, Delivery.attempts, Delivery.next_attempt_at)
                                   .where(Delivery.integration_id == integration_id)
                                   .order_by(Delivery.id)).all()
        logged = db.session.execute(
            select(DeliveryAttempt.outcome).join(Delivery, Delivery.id == DeliveryAttempt.delivery_id)
            .where(Delivery.integration_id == integration_id)).scalars().all()
        db.session.remove()
    return found, logged


def test_50_announcements_go_out_at_most_20_a_window_and_none_is_lost(client, app, robot, monkeypatch):
    monkeypatch.setattr(WeComAdapter, "rate_limits", lambda self, settings: (RateLimit("messages", 20, 2),))
    shop = Shop(client)
    integration_id = wecom(client, shop, robot)
    titles = announce(app, shop.merchant["id"], 50)

    deadline = time.monotonic() + 60
    while len(robot.messages) < 50:
        assert time.monotonic() < deadline, f"only {len(robot.messages)} of 50 arrived"
        work_off(app)
        sweep(app)
        time.sleep(0.05)

    # none lost, none twice, none refused by the robot (its 45009 would be a problem)
    received = [m["markdown"]["content"].splitlines()[0] for m in robot.messages]
    assert sorted(received) == sorted(f"### 新团购上线：{title}" for title in titles)
    assert robot.problems == []
    # never more than 20 within any window the robot counts (1.8 s of the limiter's 2 s)
    arrivals = robot.arrivals
    assert all(arrivals[n + 20] - arrivals[n] >= 1.8 for n in range(len(arrivals) - 20))
    # each went out on its first attempt: the waits for the window were not attempts
    rows, logged = delivered(app, integration_id)
    assert {(status, attempts) for status, attempts, _ in rows} == {("succeeded", 1)}
    assert logged == ["succeeded"] * 50


def test_what_would_go_over_waits_uncounted_until_the_window_opens(client, app, robot, monkeypatch):
    monkeypatch.setattr(WeComAdapter, "rate_limits", lambda self, settings: (RateLimit("messages", 3, 60),))
    shop = Shop(client)
    integration_id = wecom(client, shop, robot)
    announce(app, shop.merchant["id"], 5)
    before = utcnow()
    work_off(app)

    assert len(robot.messages) == 3
    rows, logged = delivered(app, integration_id)
    assert [(status, attempts) for status, attempts, _ in rows] == [("succeeded", 1)] * 3 + [("pending", 0)] * 2
    held_until = [when for _, _, when in rows[3:]]
    assert all(55 < (when - before).total_seconds() <= 61 for when in held_until)
    assert logged == ["succeeded"] * 3
    sweep(app)
    work_off(app)
    assert len(robot.messages) == 3  # not due yet: the sweep leaves them be

    # the window opens (here: its count is cleared and the held deliveries' time comes)
    with app.app_context():
        channel_limiter(app).clear(integration_id, (RateLimit("messages", 3, 60),))
    in_db(app, update(Delivery).where(Delivery.integration_id == integration_id,
                                      Delivery.status == "pending").values(next_attempt_at=utcnow()))
    sweep(app)
    work_off(app)
    assert len(robot.messages) == 5 and robot.problems == []
    rows, logged = delivered(app, integration_id)
    assert [(status, attempts) for status, attempts, _ in rows] == [("succeeded", 1)] * 5


def test_an_integration_without_limits_is_not_held(client, app, monkeypatch):
    with Receiver() as receiver:
        shop = Shop(client)
        body = {"adapter": "webhook", "config": {"url": receiver.url + "/hook"}, "events": ["coupon.redeemed"]}
        client.ok(client.post(f"merchants/{shop.merchant['id']}/integrations", body, key=shop.manager), 201)
        with app.app_context():
            for n in range(30):
                emit(db.session, "coupon.redeemed", merchant_id=shop.merchant["id"], data={"n": n})
            db.session.commit()
            db.session.remove()
        work_off(app)
        assert len(receiver.requests) == 30


def test_a_webhook_may_be_given_a_limit(client, app):
    with Receiver() as receiver:
        shop = Shop(client)
        body = {"adapter": "webhook", "config": {"url": receiver.url + "/hook", "max_per_minute": 4},
                "events": ["coupon.redeemed"]}
        created = client.ok(client.post(f"merchants/{shop.merchant['id']}/integrations", body,
                                        key=shop.manager), 201)
        with app.app_context():
            for n in range(6):
                emit(db.session, "coupon.redeemed", merchant_id=shop.merchant["id"], data={"n": n})
            db.session.commit()
            assert db.session.get(Integration, created["id"]).config["max_per_minute"] == 4
            db.session.remove()
        work_off(app)
        assert len(receiver.requests) == 4
