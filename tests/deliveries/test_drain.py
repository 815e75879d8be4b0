"""Draining integrations: one woken drain per integration, batches, hand-over, the wake protocol.

Real Redis and real RQ (a SimpleWorker in burst mode, in this process, on the
`deliveries` queue), a real HTTP receiver on 127.0.0.1, real PostgreSQL or SQLite.
Races are not left to timing: the receiver's handler runs code *during* an adapter
call (a commit, a change to the row), or a step of the drain is wrapped. Waits are
bounded polls for something to happen, never assertions about how long it took.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.registry import FailedJobRegistry, FinishedJobRegistry
from sqlalchemy import func, select, update

from couponsvc.deliveries import batch
from couponsvc.deliveries import drain as drain_module
from couponsvc.deliveries.attempt import Attempt
from couponsvc.extensions import db
from couponsvc.jobs import runner
from couponsvc.models import Delivery, DeliveryAttempt, Event
from couponsvc.outbox import wakeup
from couponsvc.outbox.emit import emit
from couponsvc.outbox.wakeup import LocalDrains, RedisDrains
from couponsvc.timeutil import utcnow
from integrations.adapter import Outcome
from tests.factories import Shop, in_db
from tests.integrations.receiver import Answer, Receiver

pytestmark = pytest.mark.config(ALLOW_PRIVATE_WEBHOOK_TARGETS=True)


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


# ------------------------------------------------------------------------- helpers --
def webhook(client, shop, receiver, path: str = "/hook", **fields) -> dict:
    body = {"adapter": "webhook", "config": {"url": receiver.url + path}, "events": ["coupon.redeemed"],
            **fields}
    return client.ok(client.post(f"merchants/{shop.merchant['id']}/integrations", body,
                                 key=shop.manager), 201)


def set_status(client, shop, integration, status: str) -> None:
    client.ok(client.patch(f"integrations/{integration['id']}", {"status": status}, key=shop.manager))


def redeem(shop, codes) -> None:
    for code in codes:
        shop.client.ok(shop.redeem(code), 201)


def commit_events(app, merchant_id: str, count: int) -> None:
    """`count` coupon.redeemed events, each in a transaction of its own (each commit wakes)."""
    with app.app_context():
        for n in range(count):
            emit(db.session, "coupon.redeemed", merchant_id=merchant_id, data={"n": n})
            db.session.commit()
        db.session.remove()


def connection(app):
    return runner(app).redis()


def queued(app) -> list[str]:
    return Queue("deliveries", connection=connection(app)).job_ids


def drained_integration(job_id: str) -> str:
    assert job_id.startswith("drain-"), job_id
    return job_id.removeprefix("drain-").rsplit("-", 1)[0]


def work_off(app, max_jobs: int | None = None) -> None:
    with app.app_context():
        SimpleWorker([Queue("deliveries", connection=connection(app))],
                     connection=connection(app)).work(burst=True, max_jobs=max_jobs)


def results(app) -> dict[str, object]:
    """Every finished drain job and what it returned (the attempts it made)."""
    registry = FinishedJobRegistry("deliveries", connection=connection(app))
    return {job_id: Job.fetch(job_id, connection=connection(app)).return_value()
            for job_id in registry.get_job_ids()}


def failed_jobs(app) -> list[str]:
    return FailedJobRegistry("deliveries", connection=connection(app)).get_job_ids()


def rows(app, integration_id: str) -> list:
    """The integration's deliveries, oldest first, with their event ids."""
    with app.app_context():
        found = db.session.execute(
            select(Delivery.id, Event.id.label("event_id"), Delivery.status, Delivery.attempts,
                   Delivery.lease_until)
            .join(Event, Event.seq == Delivery.event_seq)
            .where(Delivery.integration_id == integration_id).order_by(Delivery.id)).all()
        db.session.remove()
    return found


def attempt_log(app, integration_id: str) -> list[tuple[int, int, str]]:
    with app.app_context():
        found = [tuple(row) for row in db.session.execute(
            select(DeliveryAttempt.delivery_id, DeliveryAttempt.number, DeliveryAttempt.outcome)
            .join(Delivery, Delivery.id == DeliveryAttempt.delivery_id)
            .where(Delivery.integration_id == integration_id).order_by(DeliveryAttempt.id))]
        db.session.remove()
    return found


def sweep(app) -> int:
    from workers.relay import sweep as sweep_job

    with app.app_context():
        return sweep_job()


def lock_key(integration_id: str) -> str:
    return RedisDrains._keys(integration_id)[0]


def flag_key(integration_id: str) -> str:
    return RedisDrains._keys(integration_id)[1]


def wait_for(condition, what: str, deadline: float = 20) -> None:
    end = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < end, f"gave up after {deadline} s waiting for {what}"
        time.sleep(0.01)


def during_calls(receiver, react) -> list[BaseException]:
    """Run `react(request_number)` inside each adapter call, before the answer; errors kept."""
    errors: list[BaseException] = []

    def handler(request):
        try:
            return react(len(receiver.requests)) or Answer()
        except BaseException as error:  # surfaced by the test, not lost in the server thread
            errors.append(error)
            return Answer()

    receiver.handler = handler
    return errors


def webhook_ids(receiver) -> list[str]:
    return [request.headers["webhook-id"] for request in receiver.requests]


# ------------------------------------------------------------- coalescing, batches --
def test_many_commits_while_no_worker_runs_queue_one_drain_that_sends_them_all_in_order(
        client, app, receiver, monkeypatch):
    shop = Shop(client)
    integration = webhook(client, shop, receiver)
    commit_events(app, shop.merchant["id"], 150)  # 150 commits, 150 wakes

    [job_id] = queued(app)  # coalesced: one drain job for the integration
    assert drained_integration(job_id) == integration["id"]

    claims = []
    claim = batch.claim

    def counting_claim(*args, **kwargs):
        claimed = claim(*args, **kwargs)
        claims.append(len(claimed))
        return claimed

    monkeypatch.setattr(batch, "claim", counting_claim)
    work_off(app)

    assert claims == [drain_module.BATCH, 150 - drain_module.BATCH]  # two rounds, then done
    assert results(app) == {job_id: 150} and failed_jobs(app) == [] and queued(app) == []
    delivered = rows(app, integration["id"])
    assert len(delivered) == 150
    assert webhook_ids(receiver) == [row.event_id for row in delivered]  # each once, in id order
    assert {(row.status, row.attempts, row.lease_until) for row in delivered} == {("succeeded", 1, None)}
    assert attempt_log(app, integration["id"]) == [(row.id, 1, "succeeded") for row in delivered]
    redis = connection(app)
    assert not redis.exists(lock_key(integration["id"]), flag_key(integration["id"]))  # let go


def test_two_integrations_get_two_drains_and_a_disabled_one_none(client, app, receiver):
    shop = Shop(client)
    first = webhook(client, shop, receiver, "/first")
    second = webhook(client, shop, receiver, "/second")
    off = webhook(client, shop, receiver, "/off")
    set_status(client, shop, off, "disabled")
    redeem(shop, [c["code"] for c in shop.coupons(3)])

    jobs = queued(app)
    assert sorted(drained_integration(j) for j in jobs) == sorted([first["id"], second["id"]])
    work_off(app)
    assert Counter(r.path for r in receiver.requests) == {"/first": 3, "/second": 3}
    assert [row.status for row in rows(app, off["id"])] == ["held"] * 3  # never sent while off, kept
    assert sorted(results(app).values()) == [3, 3] and failed_jobs(app) == []
    assert sweep(app) == 0


def test_an_integration_disabled_while_its_drain_waits_is_not_sent_to_until_enabled(client, app, receiver):
    shop = Shop(client)
    first = webhook(client, shop, receiver, "/first")
    later = webhook(client, shop, receiver, "/later")
    redeem(shop, [shop.coupon()["code"]])
    assert sorted(drained_integration(j) for j in queued(app)) == sorted([first["id"], later["id"]])
    set_status(client, shop, later, "disabled")
    work_off(app)
    assert [r.path for r in receiver.requests] == ["/first"]
    assert [(row.status, row.attempts) for row in rows(app, later["id"])] == [("held", 0)]
    assert sweep(app) == 0  # held while its integration is disabled
    assert queued(app) == []
    set_status(client, shop, later, "active")  # what waited goes out now
    [job_id] = queued(app)
    assert drained_integration(job_id) == later["id"]
    work_off(app)
    assert [r.path for r in receiver.requests] == ["/first", "/later"]
    assert [(row.status, row.attempts) for row in rows(app, later["id"])] == [("succeeded", 1)]


# ----------------------------------------------------------------- the wake protocol --
@pytest.fixture(params=["redis", "local"])
def drains(request, app):
    if request.param == "redis":
        return RedisDrains(connection(app))
    return LocalDrains()


def test_wake_gives_a_token_only_when_the_lock_is_free(drains):
    token = drains.wake("int_a")
    assert token
    assert drains.wake("int_a") is None  # held: flagged only
    other = drains.wake("int_b")  # another integration has a lock of its own
    assert other and other != token
    assert drains.finish("int_a", token) is False  # the wakes since nobody began
    drains.begin("int_a")
    assert drains.finish("int_a", token) is True
    again = drains.wake("int_a")
    assert again and again != token


def test_finish_refuses_to_stop_when_woken_after_begin(drains):
    token = drains.wake("int_a")
    assert drains.keep("int_a", token)
    drains.begin("int_a")
    assert drains.wake("int_a") is None  # a commit while the drain looks
    assert drains.finish("int_a", token) is False  # so it must look again, still holding the lock
    assert drains.wake("int_a") is None
    drains.begin("int_a")
    assert drains.finish("int_a", token) is True
    assert drains.wake("int_a") is not None  # released


def test_a_wake_before_begin_is_covered_by_that_round(drains):
    token = drains.wake("int_a")
    assert drains.wake("int_a") is None  # flagged before the drain began: it will see that commit
    drains.begin("int_a")
    assert drains.finish("int_a", token) is True


def test_keep_is_refused_while_another_token_holds_the_lock(drains):
    token = drains.wake("int_a")
    assert drains.keep("int_a", "someone-else") is False
    assert drains.keep("int_a", token) is True
    drains.begin("int_a")
    assert drains.finish("int_a", "someone-else") is True  # it stops ...
    assert drains.wake("int_a") is None  # ... without taking the holder's lock away


def test_release_lets_go_of_the_own_token_only(drains):
    token = drains.wake("int_a")
    drains.release("int_a", "someone-else")
    assert drains.wake("int_a") is None
    drains.release("int_a", token)
    assert drains.wake("int_a") is not None


def test_keep_takes_back_a_lock_nobody_holds(drains):
    token = drains.wake("int_a")
    drains.release("int_a", token)
    assert drains.keep("int_a", token) is True
    assert drains.wake("int_a") is None


def test_an_expired_lock_is_taken_by_the_next_wake_and_the_late_drain_stops(app, monkeypatch):
    """Redis only: the in-process lock cannot outlive its process, so it has no TTL."""
    redis = connection(app)
    drains = RedisDrains(redis)
    monkeypatch.setattr(wakeup, "LOCK_TTL", 0.05)  # the TTL `wake` passes to its Lua
    late = drains.wake("int_a")
    wait_for(lambda: not redis.exists(lock_key("int_a")), "the lock to expire")
    taken = drains.wake("int_a")
    assert taken and taken != late
    assert drains.keep("int_a", late) is False  # the drain that lost its lock must stop
    assert drains.keep("int_a", taken, ttl=0.001) is True  # a tiny TTL through keep's Lua
    wait_for(lambda: not redis.exists(lock_key("int_a")), "the kept lock to expire")
    assert drains.keep("int_a", late) is True  # nobody holds it: whoever asks first has it
    assert drains.wake("int_a") is None


# ------------------------------------------------------------ races inside a drain --
def test_a_commit_during_an_adapter_call_is_sent_by_the_same_drain(client, app, receiver):
    """The lost-wakeup race: woken between claim and finish, the drain goes round again."""
    shop = Shop(client)
    integration = webhook(client, shop, receiver)
    first, second = (c["code"] for c in shop.coupons(2))
    seen = {}

    def commit_during_the_first_call(number):
        if number == 1:
            redeem(shop, [second])
            seen["queued"] = queued(app)

    errors = during_calls(receiver, commit_during_the_first_call)
    redeem(shop, [first])
    [job_id] = queued(app)
    work_off(app)
    assert errors == []
    assert seen["queued"] == []  # the wake during the drain only flagged it
    assert results(app) == {job_id: 2} and queued(app) == []  # no second job, no sweep
    delivered = rows(app, integration["id"])
    assert webhook_ids(receiver) == [row.event_id for row in delivered]
    assert [(row.status, row.attempts) for row in delivered] == [("succeeded", 1)] * 2


def test_a_commit_just_before_finish_makes_the_drain_go_round_again(client, app, receiver, monkeypatch):
    """The narrowest window: after the round's attempts are recorded, before the lock is let go."""
    shop = Shop(client)
    integration = webhook(client, shop, receiver)
    first, second = (c["code"] for c in shop.coupons(2))
    send_round, rounds = drain_module.send_round, []

    def then_a_redemption(*args, **kwargs):
        done = send_round(*args, **kwargs)
        rounds.append(done)
        if len(rounds) == 1:
            redeem(shop, [second])  # its own request, transaction and wake
        return done

    monkeypatch.setattr(drain_module, "send_round", then_a_redemption)
    redeem(shop, [first])
    [job_id] = queued(app)
    work_off(app)
    assert [(r.sent, r.more) for r in rounds] == [(1, False), (1, False)]
    assert results(app) == {job_id: 2} and queued(app) == []
    assert webhook_ids(receiver) == [row.event_id for row in rows(app, integration["id"])]


def test_a_drain_out_of_budget_gives_back_what_it_did_not_call_and_hands_over(
        client, app, receiver, monkeypatch):
    monkeypatch.setattr(drain_module, "BUDGET", 0.2)
    receiver.default = Answer(delay=0.1)  # each call takes at least 0.1 s: at most 3 fit
    shop = Shop(client)
    integration = webhook(client, shop, receiver)
    commit_events(app, shop.merchant["id"], 10)
    [first_job] = queued(app)

    work_off(app, max_jobs=1)  # the first drain job alone
    made = results(app)[first_job]
    assert 1 <= made <= 3
    states = rows(app, integration["id"])
    assert [(r.status, r.attempts) for r in states[:made]] == [("succeeded", 1)] * made
    # given back: the attempt not counted, no lease, nothing logged
    assert [(r.status, r.attempts, r.lease_until) for r in states[made:]] == [("pending", 0, None)] * (10 - made)
    assert attempt_log(app, integration["id"]) == [(r.id, 1, "succeeded") for r in states[:made]]
    [handed_over] = queued(app)  # a fresh drain, at the back of the queue
    assert handed_over != first_job and drained_integration(handed_over) == integration["id"]
    holder = connection(app).get(lock_key(integration["id"])).decode()
    assert handed_over.endswith(f"-{holder}")  # the lock is the new job's

    work_off(app)
    delivered = rows(app, integration["id"])
    assert webhook_ids(receiver) == [row.event_id for row in delivered]  # each once, in order
    assert {(row.status, row.attempts) for row in delivered} == {("succeeded", 1)}
    assert sum(results(app).values()) == 10 and len(results(app)) >= 2
    assert failed_jobs(app) == [] and queued(app) == []


def test_a_steady_trickle_does_not_keep_a_drain_past_its_budget(client, app, receiver, monkeypatch):
    """Each round finds one delivery, and one more is committed during its call: the
    drain is woken again and again (finish says "go round"). Past the budget it must
    still hand over, or one busy integration holds a shared worker until RQ's job
    timeout while the other integrations' drains wait behind it."""
    monkeypatch.setattr(drain_module, "BUDGET", 0.2)
    shop = Shop(client)
    integration = webhook(client, shop, receiver)
    codes = [c["code"] for c in shop.coupons(8)]

    def the_next_redemption_during_each_call(number):
        if number < len(codes):
            redeem(shop, [codes[number]])
        return Answer(delay=0.1)  # each call takes at least 0.1 s: the budget holds at most 3

    errors = during_calls(receiver, the_next_redemption_during_each_call)
    redeem(shop, codes[:1])
    [first_job] = queued(app)
    work_off(app, max_jobs=1)
    assert errors == []
    made = results(app)[first_job]
    assert made <= 3, f"one drain job made {made} calls on a budget that holds at most 3"
    [handed_over] = queued(app)
    assert drained_integration(handed_over) == integration["id"]
    work_off(app)
    delivered = rows(app, integration["id"])
    assert webhook_ids(receiver) == [row.event_id for row in delivered]
    assert len(delivered) == 8 and {(row.status, row.attempts) for row in delivered} == {("succeeded", 1)}


def test_an_attempt_whose_lease_was_taken_over_is_not_recorded(client, app, receiver):
    shop = Shop(client)
    integration = webhook(client, shop, receiver)

    def taken_over_during_the_call(number):
        # the lease ran out and another drain claimed the delivery: its attempt 2
        in_db(app, update(Delivery).values(attempts=Delivery.attempts + 1))

    errors = during_calls(receiver, taken_over_during_the_call)
    redeem(shop, [shop.coupon()["code"]])
    work_off(app)
    assert errors == [] and len(receiver.requests) == 1
    [row] = rows(app, integration["id"])
    assert (row.status, row.attempts) == ("pending", 2)  # left to the newer claim
    assert attempt_log(app, integration["id"]) == []


def test_record_and_release_compare_the_attempt_number(client, app, receiver):
    shop = Shop(client)
    integration = webhook(client, shop, receiver)
    redeem(shop, [shop.coupon()["code"]])  # its drain job is never run here
    with app.app_context():
        now = utcnow()
        [claimed] = batch.claim(db.session, integration["id"], 10, now, now + timedelta(seconds=60))
        db.session.commit()
        assert claimed.number == 1
        assert batch.claim(db.session, integration["id"], 10, now, now + timedelta(seconds=60)) == []  # leased
        db.session.commit()
        db.session.execute(update(Delivery).values(attempts=2))  # claimed again after the lease ran out
        db.session.commit()

        late = Attempt(claimed.delivery_id, 1, now, 5, Outcome(200, "late"), None)
        assert batch.record(db.session, [late], utcnow()) == []
        batch.release(db.session, [claimed])  # nor may the late drain give it back
        db.session.commit()
        assert db.session.execute(select(Delivery.status, Delivery.attempts)).one() == ("pending", 2)
        assert db.session.scalar(select(func.count()).select_from(DeliveryAttempt)) == 0

        current = Attempt(claimed.delivery_id, 2, now, 5, Outcome(200, "ok"), None)
        assert batch.record(db.session, [current], utcnow()) == [current]
        db.session.commit()
        assert db.session.execute(select(Delivery.status, Delivery.attempts, Delivery.lease_until)).one() == (
            "succeeded", 2, None)
        db.session.remove()
    assert attempt_log(app, integration["id"]) == [(claimed.delivery_id, 2, "succeeded")]


def test_a_drain_job_whose_lock_another_token_holds_exits_without_sending(client, app, receiver):
    shop = Shop(client)
    integration = webhook(client, shop, receiver)
    redeem(shop, [shop.coupon()["code"]])
    [stale] = queued(app)
    connection(app).delete(lock_key(integration["id"]))  # its lock expired while it waited
    assert sweep(app) == 1  # so the sweep takes the lock and queues another drain
    [_, current] = queued(app)
    work_off(app)
    assert results(app) == {stale: 0, current: 1}  # the stale one ran first, and sent nothing
    assert len(receiver.requests) == 1
    assert [(row.status, row.attempts) for row in rows(app, integration["id"])] == [("succeeded", 1)]


def test_a_410_stops_the_round_and_gives_the_rest_back(client, app, receiver):
    shop = Shop(client)
    integration = webhook(client, shop, receiver)
    redeem(shop, [c["code"] for c in shop.coupons(3)])
    receiver.answer(410, "gone")
    work_off(app)
    assert len(receiver.requests) == 1  # no more calls to a receiver that is gone
    gone, *rest = rows(app, integration["id"])
    assert (gone.status, gone.attempts) == ("held", 1)  # sent again if the receiver comes back
    assert [(r.status, r.attempts, r.lease_until) for r in rest] == [("held", 0, None)] * 2
    assert attempt_log(app, integration["id"]) == [(gone.id, 1, "disabled")]
    assert client.ok(client.get(f"integrations/{integration['id']}", key=shop.manager))["status"] == "disabled"
    assert sweep(app) == 0 and queued(app) == []

    set_status(client, shop, integration, "active")
    work_off(app)
    assert len(receiver.requests) == 4
    assert [(r.status, r.attempts) for r in rows(app, integration["id"])] == [
        ("succeeded", 2), ("succeeded", 1), ("succeeded", 1)]
    sent = [r.headers["webhook-id"] for r in receiver.requests]
    assert sent[0] == sent[1] and len(set(sent)) == 3  # the gone one first again, then the rest


# ------------------------------------------------- how long the lock and flag live --
def test_the_lock_outlives_the_first_call_of_a_round(client, app, receiver):
    """A call may take the integration's whole timeout (up to 60 s); while it is in
    flight the lock must not lapse, or the sweep starts a second drain of the same
    integration (another worker held by the same slow receiver)."""
    shop = Shop(client)
    integration = webhook(client, shop, receiver, timeout=30)
    lives = []
    errors = during_calls(receiver, lambda number: lives.append(
        connection(app).pttl(lock_key(integration["id"]))))
    redeem(shop, [shop.coupon()["code"]])
    work_off(app)
    assert errors == [] and len(lives) == 1
    assert lives[0] >= 30_000, f"the lock has {lives[0]} ms left while a call of up to 30 s is in flight"


def test_a_wake_during_a_call_that_outlasts_the_flag_is_not_lost(client, app, receiver, monkeypatch):
    """The flag a commit sets during a call must live until the drain's finish. Scaled
    down: a flag of 0.3 s (LOCK_TTL, 20 s) against a call of 0.6 s (a receiver using
    25 s of a 30 s timeout)."""
    monkeypatch.setattr(wakeup, "LOCK_TTL", 0.3)
    shop = Shop(client)
    integration = webhook(client, shop, receiver, timeout=5)
    first, second = (c["code"] for c in shop.coupons(2))

    def commit_then_answer_slowly(number):
        if number == 1:
            redeem(shop, [second])
            return Answer(delay=0.6)
        return None

    errors = during_calls(receiver, commit_then_answer_slowly)
    redeem(shop, [first])
    work_off(app)
    assert errors == []
    assert len(receiver.requests) == 2, "the delivery committed during the call was left to the sweep"
    assert [(r.status, r.attempts) for r in rows(app, integration["id"])] == [("succeeded", 1)] * 2


# --------------------------------------------------------------- without Redis --
@pytest.mark.config(REDIS_URL=None)
def test_without_redis_drains_run_on_threads_and_drain_waits_for_them(client, app, receiver):
    shop = Shop(client)
    integration = webhook(client, shop, receiver)
    redeem(shop, [c["code"] for c in shop.coupons(5)])
    app.extensions["couponsvc.jobs"].wait_idle()  # no polling: returns once the threads are done
    delivered = rows(app, integration["id"])
    assert webhook_ids(receiver) == [row.event_id for row in delivered]
    assert {(row.status, row.attempts) for row in delivered} == {("succeeded", 1)}
    assert isinstance(app.extensions["couponsvc.drains"], LocalDrains)


@pytest.mark.config(REDIS_URL=None)
def test_without_redis_drain_also_waits_for_a_handed_over_drain(client, app, receiver, monkeypatch):
    """A drain that runs out of budget while the runner is being drained (shutdown, a
    test's end) hands over to a new in-process job: that one must run too."""
    monkeypatch.setattr(drain_module, "BUDGET", 0.05)
    jobs = app.extensions["couponsvc.jobs"]
    shop = Shop(client)
    integration = webhook(client, shop, receiver)
    draining = threading.Event()

    def answer_once_drain_is_waiting(number):
        if number == 1:
            assert draining.wait(20), "the test never got to drain()"
            # let drain() get going (today: ThreadPoolExecutor.shutdown, which marks the
            # pool shut before it waits); bounded, so a drain() built otherwise is not held
            executor, end = jobs._executor, time.monotonic() + 1
            while not getattr(executor, "_shutdown", True) and time.monotonic() < end:
                time.sleep(0.01)
        return Answer(delay=0.1)  # slower than the budget: each drain job makes one call

    errors = during_calls(receiver, answer_once_drain_is_waiting)
    commit_events(app, shop.merchant["id"], 3)
    draining.set()
    jobs.wait_idle()
    assert errors == []
    delivered = rows(app, integration["id"])
    assert [(row.status, row.attempts) for row in delivered] == [("succeeded", 1)] * 3
    assert webhook_ids(receiver) == [row.event_id for row in delivered]


def test_a_slow_round_records_as_it_goes(client, app, receiver, monkeypatch):
    """With a slow receiver, what a round has sent is in the log before the round ends,
    so a worker killed mid-round re-sends little (RECORD_EVERY), not the whole round."""
    monkeypatch.setattr(drain_module, "RECORD_EVERY", 0.0)  # record after every call
    shop = Shop(client)
    integration = webhook(client, shop, receiver)
    commit_events(app, shop.merchant["id"], 4)
    seen = []

    def look_at_the_log(number):
        seen.append([(row.status, row.attempts) for row in rows(app, integration["id"])])

    errors = during_calls(receiver, look_at_the_log)
    work_off(app)
    assert errors == []
    assert len(receiver.requests) == 4
    # during call n, the n-1 calls before it are recorded as succeeded; the rest are claimed
    assert seen == [[("succeeded", 1)] * done + [("pending", 1)] * (4 - done) for done in range(4)]
    assert [(row.status, row.attempts) for row in rows(app, integration["id"])] == [("succeeded", 1)] * 4
