"""At least once, never silently dropped: deliveries through crashes, Redis loss and bad receivers.

Everything here is real: `couponsvc worker` processes (RQ SimpleWorker, its scheduler,
the periodic ticker running the relay sweep every second) configured through the
environment, a private `redis-server` of the test's own that a test kills and brings
back empty, HTTP receivers on 127.0.0.1, and the test database. Events are made the
way a till makes them (`POST /redemptions`) and read back through the API.

Invariants (issue: "a worker killed with SIGKILL mid-delivery, Redis dying and coming
back empty, an ERP answering 500 or nothing for an hour: every event still arrives",
"each with one stable `webhook-id`"):
- every redemption's `coupon.redeemed` event reaches the receiver, correctly signed;
- each `webhook-id` always carries the same event (the same redemption, type, data);
- every delivery ends `succeeded`, with an attempt log that tells what happened;
- with a healthy receiver, two workers send each event once;
- a delivery that is due and not leased is sent, whatever RQ still holds under its job
  id (a retry waiting for a scheduler that died, the job of a worker killed before it
  claimed): "the database, not RQ's registries, decides what is due" (docs/deliveries.md);
- a running worker outlives Redis going away and coming back.

Waits are bounded polls for an outcome, never assertions about how long it took.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
from rq import Queue
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select, text
from standardwebhooks.webhooks import Webhook

from couponsvc.extensions import db
from couponsvc.models import Delivery
from tests.conftest import _empty_tables, make_app
from tests.factories import Client, Shop
from tests.integrations.receiver import Answer, Received, Receiver

from .processes import Worker, sigkill, start_worker, stop, worker_environment

# s: covers a lease (timeout + 15 s) plus sweeps and retries; raise it to see how late
# a stuck delivery comes (COUPONSVC_CHAOS_DEADLINE=900)
DELIVERY_DEADLINE = float(os.environ.get("COUPONSVC_CHAOS_DEADLINE", 90))


# ------------------------------------------------------------------------ fixtures --
@pytest.fixture
def app(migrated, instance_path, redis_server):
    """The test app on the private Redis: empty tables, empty Redis (the shared test
    Redis, which the usual `app` fixture flushes, is left alone)."""
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()  # a test that failed mid-outage left it down
    redis_server.client().flushall()
    application = make_app(migrated, instance_path, REDIS_URL=redis_server.url,
                           RATELIMIT_STORAGE_URI=redis_server.url,
                           ALLOW_PRIVATE_WEBHOOK_TARGETS=True)
    with application.app_context():
        _empty_tables()
        db.session.remove()
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return Client(app)


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


class Workers:
    """`couponsvc worker` processes of one test; all stopped by id at its end."""

    def __init__(self, app, instance_path: str, redis_url: str, log_dir: Path) -> None:
        self.env = worker_environment(app, instance_path, redis_url)
        self.log_dir = log_dir
        self.started: list[Worker] = []

    def start(self, processes: int = 1) -> Worker:
        log_path = self.log_dir / f"worker-{len(self.started)}.log"
        worker = start_worker(self.env, log_path, processes=processes)
        self.started.append(worker)
        return worker

    def stop_all(self) -> None:
        for worker in self.started:
            stop(worker.process)

    def logs(self) -> str:
        return "\n".join(f"--- worker {n} (pid {w.pid}, {'alive' if w.alive() else w.process.returncode})"
                         f"\n{w.log_tail(40)}" for n, w in enumerate(self.started))


@pytest.fixture
def workers(app, instance_path, redis_server, tmp_path):
    started = Workers(app, instance_path, redis_server.url, tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


# ------------------------------------------------------------------------- helpers --
def wait_for(condition: Callable[[], object], what: str, deadline: float,
             diagnose: Callable[[], str] = lambda: "") -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"gave up after {deadline} s waiting for {what}\n{diagnose()}")
        time.sleep(0.1)


class Scene:
    """A merchant with a webhook integration on a local receiver, and its redemptions."""

    def __init__(self, client: Client, receiver: Receiver, timeout: float = 5.0) -> None:
        self.client, self.receiver = client, receiver
        self.shop = Shop(client)
        self.integration = client.ok(client.post(
            f"merchants/{self.shop.merchant['id']}/integrations",
            {"adapter": "webhook", "config": {"url": receiver.url + "/hook"},
             "events": ["coupon.redeemed"], "timeout": timeout}, key=self.shop.manager), 201)
        self.secret = self.integration["secret"]
        self.redemptions: dict[str, str] = {}  # redemption id -> coupon code
        self._verified: dict[int, tuple[Received, dict]] = {}

    def redeem(self, count: int) -> None:
        for coupon in self.shop.coupons(count):
            redemption = self.client.ok(self.shop.redeem(coupon["code"]), 201)
            self.redemptions[redemption["id"]] = coupon["code"]

    def deliveries(self) -> list[dict]:
        rows, after = [], None
        while True:
            query = {"limit": 500, **({"after": after} if after else {})}
            page = self.client.ok(self.client.get(f"integrations/{self.integration['id']}/deliveries",
                                                  key=self.shop.manager, query_string=query))
            rows.extend(page["data"])
            if page["next"] is None:
                return rows
            after = page["next"]

    def attempt_log(self, delivery: dict) -> list[tuple[int, int | None, str]]:
        shown = self.client.ok(self.client.get(f"deliveries/{delivery['id']}", key=self.shop.manager))
        return [(a["number"], a["status_code"], a["outcome"]) for a in shown["attempt_log"]]

    def all_succeeded(self) -> bool:
        rows = self.deliveries()
        return len(rows) == len(self.redemptions) and all(d["status"] == "succeeded" for d in rows)

    def arrived(self) -> set[str]:
        """The redemptions whose event the receiver got (signature checked)."""
        return {self.payload(request)["data"]["redemption"]["id"] for request in list(self.receiver.requests)}

    def all_arrived(self) -> bool:
        return self.arrived() == set(self.redemptions)

    def payload(self, request: Received) -> dict:
        """The verified payload; verified once, when first seen (Standard Webhooks refuses
        a timestamp more than 5 minutes old, as a receiver checking on arrival would)."""
        key = id(request)
        if key not in self._verified:
            self._verified[key] = (request, Webhook(self.secret).verify(request.body, request.headers))
        return self._verified[key][1]

    def state(self) -> str:
        counts = Counter((d["status"], d["attempts"]) for d in self.deliveries())
        return (f"{len(self.arrived())}/{len(self.redemptions)} redemptions arrived in "
                f"{len(self.receiver.requests)} requests; deliveries (status, attempts): {dict(counts)}")

    def check_arrivals(self) -> dict[str, list[Received]]:
        """Every redemption arrived, signed; each webhook-id stands for one event: requests by id."""
        by_id: dict[str, list[Received]] = defaultdict(list)
        for request in list(self.receiver.requests):
            by_id[request.headers["webhook-id"]].append(request)
        seen: dict[str, str] = {}
        for webhook_id, requests in by_id.items():
            payloads = [self.payload(request) for request in requests]
            assert all(p["type"] == "coupon.redeemed" for p in payloads), payloads
            assert all(p["data"] == payloads[0]["data"] for p in payloads), (webhook_id, payloads)
            assert len({r.body for r in requests}) == 1, f"{webhook_id}: the body changed between tries"
            redemption_id = payloads[0]["data"]["redemption"]["id"]
            assert redemption_id not in seen, f"{redemption_id} came under {seen[redemption_id]} and {webhook_id}"
            seen[redemption_id] = webhook_id
            assert payloads[0]["data"]["coupon"]["code"] == self.redemptions[redemption_id]
        assert set(seen) == set(self.redemptions), sorted(set(self.redemptions) - set(seen))
        events = {e["id"]: e for e in self.client.events(type="coupon.redeemed")
                  if e["merchant_id"] == self.shop.merchant["id"]}
        assert set(by_id) == set(events), "webhook-ids are not the event ids"
        assert all(events[seen[r]]["data"]["redemption"]["id"] == r for r in seen)
        deliveries = self.deliveries()
        assert {d["event_id"] for d in deliveries} == set(events)
        assert [d for d in deliveries if d["status"] != "succeeded"] == []
        return dict(by_id)

    def wait_delivered(self, workers: Workers, deadline: float = DELIVERY_DEADLINE) -> dict[str, list[Received]]:
        def diagnose() -> str:
            return f"{self.state()}\n{rq_state(self.client.app)}\n{workers.logs()}"

        wait_for(lambda: self.all_arrived() and self.all_succeeded(), "every event delivered",
                 deadline, diagnose)
        return self.check_arrivals()


def queued(app, name: str = "deliveries") -> list[str]:
    with app.app_context():
        from couponsvc.jobs import runner

        return Queue(name, connection=runner(app).redis()).job_ids


def rq_state(app) -> str:
    """What RQ holds for the next attempt of each open delivery (for failure messages)."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    from couponsvc.deliveries.fanout import job_id
    from couponsvc.jobs import runner

    lines = []
    with app.app_context():
        rows = db.session.execute(select(Delivery.id, Delivery.attempts, Delivery.status,
                                         Delivery.next_attempt_at, Delivery.lease_until)
                                  .where(Delivery.status.in_(Delivery.OPEN))).all()
        db.session.remove()
        for delivery_id, attempts, status, due, lease in rows:
            name = job_id(delivery_id, attempts)
            try:
                job = Job.fetch(name, connection=runner(app).redis())
                held = f"{job.get_status()} (ttl {runner(app).redis().ttl(job.key)} s)"
            except NoSuchJobError:
                held = "absent"
            lines.append(f"delivery {delivery_id} {status} attempts={attempts} due={due:%H:%M:%S} "
                         f"lease={lease}: RQ job {name} {held}")
    return "open deliveries: " + ("; ".join(lines) or "none")


def leases(app) -> list[tuple[int, int, str, object]]:
    with app.app_context():
        rows = db.session.execute(select(Delivery.id, Delivery.attempts, Delivery.status,
                                         Delivery.lease_until).order_by(Delivery.id)).all()
        db.session.remove()
        return [tuple(row) for row in rows]


# --------------------------------------------------------------------------- tests --
def test_a_worker_killed_with_sigkill_mid_delivery(client, app, receiver, workers):
    """The call in flight is lost with its worker: its lease runs out, the sweep of the
    next worker sends it again (same webhook-id), and every other event goes on."""
    scene = Scene(client, receiver, timeout=5)
    killed = threading.Event()
    first: list[str] = []
    lock = threading.Lock()

    def hold_the_first_until_killed(request: Received) -> Answer:
        with lock:
            is_first = not first
            if is_first:
                first.append(request.headers["webhook-id"])
        if is_first:
            killed.wait(30)  # the worker dies while waiting for this answer
            return Answer()
        return Answer(delay=0.2)

    receiver.handler = hold_the_first_until_killed
    scene.redeem(20)
    assert len(queued(app)) == 20  # the first attempts wait in Redis for a worker
    doomed = workers.start()
    wait_for(lambda: receiver.requests, "the first delivery in flight", 60, workers.logs)
    sigkill(doomed)
    killed.set()
    assert doomed.process.returncode == -9
    [in_flight] = first
    [claimed] = [d for d in scene.deliveries() if d["event_id"] == in_flight]
    assert claimed["status"] == "pending" and claimed["attempts"] == 1  # claimed, never recorded

    workers.start()
    by_id = scene.wait_delivered(workers)
    assert len(by_id[in_flight]) >= 2  # sent again after the crash: at least once
    [done] = [d for d in scene.deliveries() if d["event_id"] == in_flight]
    assert done["attempts"] == 2
    assert scene.attempt_log(done) == [(2, 200, "succeeded")]  # attempt 1 died with its worker
    assert [row for row in leases(app) if row[3] is not None] == []


def test_redis_restarting_empty_loses_no_queued_delivery(client, app, receiver, workers, redis_server):
    """Jobs queued while no worker runs are gone with Redis; the sweep finds them again."""
    scene = Scene(client, receiver)
    scene.redeem(10)
    assert len(queued(app)) == 10
    redis_server.restart_empty()
    assert queued(app) == [] and redis_server.client().dbsize() == 0
    workers.start()
    by_id = scene.wait_delivered(workers)
    assert all(len(requests) == 1 for requests in by_id.values()), Counter(map(len, by_id.values()))


def test_redis_down_at_the_redeem_then_back_empty(client, app, receiver, workers, redis_server):
    """A worker is running; Redis dies; tills keep redeeming (the enqueue after commit
    fails, the redemption does not); Redis comes back empty: every event arrives."""
    scene = Scene(client, receiver)
    workers.start()
    scene.redeem(3)
    scene.wait_delivered(workers)

    redis_server.kill()
    scene.redeem(5)  # 201 each: the deliveries are in the database, their jobs nowhere
    pending = [d for d in scene.deliveries() if d["status"] != "succeeded"]
    assert len(pending) == 5 and {d["status"] for d in pending} == {"pending"}
    time.sleep(2)  # the worker runs into the dead Redis for a while
    redis_server.start()
    by_id = scene.wait_delivered(workers)
    assert len(by_id) == 8


def test_a_receiver_answering_500_or_nothing_then_200(client, app, receiver, workers):
    """First try: 500 for half the events, no answer within the timeout for the others;
    second try (~5 s later, RQ's scheduler): 200. Same webhook-id on both tries."""
    scene = Scene(client, receiver, timeout=1)
    tries: Counter[str] = Counter()
    lock = threading.Lock()

    def fail_once(request: Received) -> Answer:
        webhook_id = request.headers["webhook-id"]
        with lock:
            tries[webhook_id] += 1
            number, firsts = tries[webhook_id], sum(1 for n in tries.values() if n >= 1)
        if number > 1:
            return Answer()
        if firsts % 2:
            return Answer(status=500, body=b"oops")
        return Answer(delay=2.5)  # longer than the integration's 1 s timeout

    receiver.handler = fail_once
    workers.start()
    scene.redeem(6)
    by_id = scene.wait_delivered(workers)
    assert all(len(requests) == 2 for requests in by_id.values()), Counter(map(len, by_id.values()))
    logs = [scene.attempt_log(d) for d in scene.deliveries()]
    assert all(log[0][0] == 1 and log[0][2] == "retry" for log in logs), logs
    assert Counter(log[0][1] for log in logs) == {500: 3, None: 3}, logs  # 500s and timeouts
    assert all(log[1:] == [(2, 200, "succeeded")] for log in logs), logs
    assert all(d["attempts"] == 2 for d in scene.deliveries())


def test_a_receiver_failing_for_a_while_gets_every_event_in_the_end(client, app, receiver, workers):
    """500, then no answer, then 200 for every event: three tries over the first two
    backoff steps (~5 s, ~30 s), one webhook-id throughout."""
    scene = Scene(client, receiver, timeout=1)
    tries: Counter[str] = Counter()
    lock = threading.Lock()

    def fail_twice(request: Received) -> Answer:
        with lock:
            tries[request.headers["webhook-id"]] += 1
            number = tries[request.headers["webhook-id"]]
        return {1: Answer(status=500, body=b"down"), 2: Answer(delay=2.5)}.get(number, Answer())

    receiver.handler = fail_twice
    workers.start()
    scene.redeem(4)
    by_id = scene.wait_delivered(workers)
    assert all(len(requests) == 3 for requests in by_id.values()), Counter(map(len, by_id.values()))
    for delivery in scene.deliveries():
        assert delivery["attempts"] == 3
        assert scene.attempt_log(delivery) == [(1, 500, "retry"), (2, None, "retry"), (3, 200, "succeeded")]


@pytest.mark.postgresql
def test_two_workers_deliver_50_events_once_each(client, app, receiver, workers):
    """`couponsvc worker --processes 2` against one healthy receiver: 50 events, 50 requests."""
    scene = Scene(client, receiver)
    receiver.default = Answer(delay=0.05)
    scene.redeem(50)
    assert len(queued(app)) == 50
    pair = workers.start(processes=2)
    by_id = scene.wait_delivered(workers)
    twice = {webhook_id: len(r) for webhook_id, r in by_id.items() if len(r) > 1}
    assert twice == {}, f"sent more than once to a healthy receiver: {twice}"
    assert len(receiver.requests) == 50
    assert all(d["attempts"] == 1 for d in scene.deliveries())
    assert pair.alive()


def _first_tries_fail(scene: Scene, workers: Workers, count: int) -> None:
    """Redeem `count` coupons against a receiver that answers 500 to each event's first
    try; return once every retry (~5 s away) waits in RQ's scheduled-job registry."""
    tries: Counter[str] = Counter()
    lock = threading.Lock()

    def fail_first(request: Received) -> Answer:
        with lock:
            tries[request.headers["webhook-id"]] += 1
            number = tries[request.headers["webhook-id"]]
        return Answer(status=500, body=b"restarting") if number == 1 else Answer()

    scene.receiver.handler = fail_first
    scene.redeem(count)

    def retries_scheduled() -> bool:
        rows = scene.deliveries()
        return len(rows) == count and all(d["status"] == "failed" and d["attempts"] == 1 for d in rows)

    wait_for(retries_scheduled, "every first try failed", 60, lambda: f"{scene.state()}\n{workers.logs()}")


def scheduled(app, name: str = "deliveries") -> list[str]:
    with app.app_context():
        from couponsvc.jobs import runner

        return ScheduledJobRegistry(name, connection=runner(app).redis()).get_job_ids()


def test_retries_waiting_in_redis_survive_a_redis_restart(client, app, receiver, workers, redis_server):
    """Redis restarts with its data (persistence, a failover): the worker's connections
    break; the retries it had scheduled are still in Redis and must still be sent."""
    scene = Scene(client, receiver)
    workers.start()
    _first_tries_fail(scene, workers, 3)
    assert len(scheduled(app)) == 3
    redis_server.restart(down_for=3)  # a restart takes a few seconds
    assert len(scheduled(app)) == 3  # the data came back with Redis
    scene.wait_delivered(workers)


def test_retries_waiting_in_redis_survive_a_killed_worker(client, app, receiver, workers):
    """The worker (and the RQ scheduler it forked) is SIGKILLed while retries wait in
    Redis; the next worker must send them."""
    scene = Scene(client, receiver)
    doomed = workers.start()
    _first_tries_fail(scene, workers, 3)
    assert len(scheduled(app)) == 3
    sigkill(doomed)
    workers.start()
    scene.wait_delivered(workers)


@pytest.mark.postgresql
def test_a_worker_killed_before_its_claim_commits(client, app, receiver, workers):
    """SIGKILL between taking the job from Redis and committing the claim (held here on a
    row lock): the claim rolls back, the delivery is pending and due, and the next
    worker's sweep must send it although its job id is taken by the dead job."""
    scene = Scene(client, receiver)
    scene.redeem(3)
    first = min(int(d["id"].removeprefix("dlv_")) for d in scene.deliveries())
    with app.app_context():
        holder = db.engine.connect()
        try:
            transaction = holder.begin()
            holder.execute(text("SELECT id FROM deliveries WHERE id = :id FOR UPDATE"), {"id": first})
            doomed = workers.start()

            def claim_waiting() -> bool:
                with db.engine.connect() as probe:
                    return bool(probe.execute(text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND wait_event_type = 'Lock' AND query ILIKE 'UPDATE deliveries%'")).scalar())

            wait_for(claim_waiting, "the worker's claim to wait on the row lock", 60, workers.logs)
            sigkill(doomed)
            transaction.rollback()
        finally:
            holder.close()
        db.session.remove()
    [untouched] = [d for d in scene.deliveries() if d["id"] == f"dlv_{first}"]
    assert untouched["status"] == "pending" and untouched["attempts"] == 0  # the claim rolled back
    workers.start()
    scene.wait_delivered(workers)


def test_redis_dying_while_a_delivery_is_in_flight(client, app, receiver, workers, redis_server):
    """Redis dies while the worker waits for a receiver's answer and comes back empty; the
    worker (left alone, as a supervisor would leave a running process) carries on."""
    scene = Scene(client, receiver)
    redis_gone = threading.Event()
    held: list[str] = []

    def hold_the_first_until_redis_is_gone(request: Received) -> Answer:
        if not held:
            held.append(request.headers["webhook-id"])
            redis_gone.wait(30)
        return Answer()

    receiver.handler = hold_the_first_until_redis_is_gone
    worker = workers.start()
    scene.redeem(3)
    wait_for(lambda: held, "the first delivery in flight", 60, workers.logs)
    redis_server.kill()
    redis_gone.set()
    time.sleep(2)  # the answer comes back while Redis is away
    redis_server.restart_empty()
    scene.redeem(2)
    scene.wait_delivered(workers)
    assert worker.alive(), workers.logs()
