"""At least once, never silently dropped: deliveries through crashes, Redis loss and bad receivers.

Everything here is real: `couponsvc worker` processes (RQ SimpleWorkers and the
periodic ticker that queues the relay sweep every second) configured through the
environment, a private `redis-server` of the test's own that a test kills and brings
back empty or with its data, HTTP receivers on 127.0.0.1, and the test database.
Events are made the way a till makes them (`POST /redemptions`) and read back
through the API.

The design under test (couponsvc/outbox/wakeup.py; couponsvc/deliveries/drain.py, batch.py, sweep.py):
a commit that creates deliveries *wakes* their integration - a dirty flag and a lock
in Redis (`couponsvc:drain:<integration>:dirty|lock`, the lock expiring after
`LOCK_TTL` unless its drain extends it) and, only when the lock was free, ONE job
`drain-<integration>-<token>`. The drain claims the due deliveries in batches (each
claim counts an attempt and sets a lease), calls the receiver for each, and records a
round's attempts together at its end. Retries wait in the database (`next_attempt_at`),
not in RQ; the relay sweep wakes every integration with due, unleased deliveries.

Invariants (issue: "a worker killed with SIGKILL mid-delivery, Redis dying and coming
back empty, an ERP answering 500 or nothing for an hour: every event still arrives",
"each with one stable `webhook-id`"):
- every redemption's `coupon.redeemed` event reaches the receiver, correctly signed;
- each `webhook-id` always carries the same event (the same redemption, type, data);
- every delivery ends `succeeded`, with an attempt log that tells what happened;
- with a healthy receiver and no crash, each event is sent once, by one worker or two;
- an event is sent again only when an attempt's outcome was lost (its worker killed, or
  its drain failing on Redis, before the round was recorded): at least once, and each
  test says which events may come twice;
- whatever Redis lost or still holds (a drain job that died with its worker, a lock
  nobody will release, nothing at all after an empty restart), a delivery that is due
  and not leased is sent: the database, not Redis, decides what is due;
- a running worker outlives Redis going away and coming back; one stopped with SIGTERM
  mid-drain finishes the drain's job (records it, hands the rest over) before it exits.

Waits are bounded polls for an outcome, never assertions about how long it took.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from rq import Queue
from rq.registry import ScheduledJobRegistry, StartedJobRegistry
from sqlalchemy import select, text
from standardwebhooks.webhooks import Webhook

from couponsvc.deliveries.drain import BUDGET
from couponsvc.extensions import db
from couponsvc.jobs import runner
from couponsvc.models import Delivery
from couponsvc.timeutil import utcnow
from tests.conftest import _empty_tables, make_app
from tests.factories import Client, Shop
from tests.integrations.receiver import Answer, Received, Receiver

from .processes import Worker, sigkill, start_worker, stop, worker_environment

# s: covers a dead drain's lock (LOCK_TTL, 20 s) and its leases (what was left of the
# drain's 5 s budget + the integration's timeout + 15 s), plus sweeps and retries; raise
# it to see how late a stuck delivery comes (COUPONSVC_CHAOS_DEADLINE=900)
DELIVERY_DEADLINE = float(os.environ.get("COUPONSVC_CHAOS_DEADLINE", 90))


# ------------------------------------------------------------------------ fixtures --
@pytest.fixture
def app(migrated, instance_path, redis_server):
    """The test app on the private Redis: empty tables, empty Redis (the session's test
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


# RQ's log line for a drain job a worker takes from the queue
_DRAIN_TAKEN = re.compile(r"deliveries: workers\.deliver\.drain\('(?P<integration>[^']+)', '(?P<token>[0-9a-f]+)'\)")
# the periodic sweep, four lines a second per worker: left out of the logs a failure shows
_SWEEP_NOISE = ("workers.relay.sweep", "periodic-relay-sweep")


class HeldCall:
    """A receiver's handler for killing a worker mid-call: the first `answered` calls are
    answered after `delay` s, the next is held until `killed` is set (its worker dies
    waiting for it), and once `killed` is set every call is answered after `after` s.
    `sent` holds the webhook-ids of the calls made before the kill, in order."""

    def __init__(self, answered: int, delay: float = 0.2, after: float = 0.02) -> None:
        self.answered, self.delay, self.after = answered, delay, after
        self.killed = threading.Event()
        self.sent: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, request: Received) -> Answer:
        with self._lock:
            if self.killed.is_set():
                return Answer(delay=self.after)
            self.sent.append(request.headers["webhook-id"])
            number = len(self.sent)
        if number <= self.answered:
            return Answer(delay=self.delay)
        self.killed.wait(30)  # the worker dies while waiting for this answer
        return Answer()


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
                         f"\n{tail(w)}" for n, w in enumerate(self.started))


def tail(worker: Worker, lines: int = 40) -> str:
    """The end of a worker's log without the periodic sweep's lines."""
    text_ = worker.log_tail(100_000)
    kept = [line for line in text_.splitlines() if not any(noise in line for noise in _SWEEP_NOISE)]
    return "\n".join(kept[-lines:])


def drains_taken(worker: Worker, integration_id: str) -> list[str]:
    """The tokens of the drain jobs of this integration that the worker took, in order."""
    return [m["token"] for m in _DRAIN_TAKEN.finditer(worker.log_tail(1_000_000))
            if m["integration"] == integration_id]


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
        self.integration_id: str = self.integration["id"]
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

    def sent(self) -> Counter[str]:
        """Requests so far, by webhook-id."""
        return Counter(request.headers["webhook-id"] for request in list(self.receiver.requests))

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
            return f"{self.state()}\n{drain_state(self.client.app)}\n{workers.logs()}"

        wait_for(lambda: self.all_arrived() and self.all_succeeded(), "every event delivered",
                 deadline, diagnose)
        return self.check_arrivals()


def queued(app, name: str = "deliveries") -> list[str]:
    """The ids of the jobs waiting in an RQ queue (the drain jobs, in "deliveries")."""
    return Queue(name, connection=runner(app).redis()).job_ids


def scheduled(app, name: str = "deliveries") -> list[str]:
    """RQ's scheduled jobs: where retries used to wait; nothing puts any there now."""
    return ScheduledJobRegistry(name, connection=runner(app).redis()).get_job_ids()


def drain_job(integration_id: str, token: str) -> str:
    return f"drain-{integration_id}-{token}"


def drain_keys(integration_id: str) -> tuple[str, str]:
    """The integration's drain lock and dirty flag in Redis (couponsvc/outbox/wakeup.py)."""
    return f"couponsvc:drain:{integration_id}:lock", f"couponsvc:drain:{integration_id}:dirty"


@dataclass(frozen=True)
class DrainLock:
    holder: str | None  # the token of the drain holding the integration, if any
    ms_left: int  # the lock's PTTL (-2: no lock)
    dirty: bool  # woken since its drain last looked

    def __str__(self) -> str:
        held = f"held by {self.holder} ({self.ms_left} ms left)" if self.holder else "free"
        return f"lock {held}, {'dirty' if self.dirty else 'clean'}"


def drain_lock(app, integration_id: str) -> DrainLock:
    connection = runner(app).redis()
    lock, dirty = drain_keys(integration_id)
    holder = connection.get(lock)
    return DrainLock(holder.decode() if holder else None, connection.pttl(lock), bool(connection.exists(dirty)))


@dataclass(frozen=True)
class Row:
    id: int
    status: str
    attempts: int
    next_attempt_at: object
    lease_until: object

    @property
    def public_id(self) -> str:
        return f"dlv_{self.id}"

    def leased(self, now) -> bool:
        return self.lease_until is not None and self.lease_until > now


def rows(app, integration_id: str | None = None) -> list[Row]:
    """The deliveries as the database holds them, with what the API does not show (the lease)."""
    query = select(Delivery.id, Delivery.status, Delivery.attempts, Delivery.next_attempt_at,
                   Delivery.lease_until).order_by(Delivery.id)
    if integration_id is not None:
        query = query.where(Delivery.integration_id == integration_id)
    with app.app_context():
        found = [Row(*row) for row in db.session.execute(query).all()]
        db.session.remove()
    return found


def drain_state(app) -> str:
    """For failure messages: what Redis holds for the drains (every drain lock and flag with
    its time left, the drain jobs queued and running, the sweeps waiting) and what the
    database holds for each integration with open deliveries (counted by status, attempt,
    and whether leased, due or waiting)."""
    with app.app_context():
        open_rows = db.session.execute(
            select(Delivery.integration_id, Delivery.status, Delivery.attempts, Delivery.next_attempt_at,
                   Delivery.lease_until).where(Delivery.status.in_(Delivery.OPEN))).all()
        db.session.remove()
    now = utcnow()
    lines = []
    try:
        connection = runner(app).redis()
        keys = sorted(key.decode() for key in connection.scan_iter("couponsvc:drain:*"))
        held = [f"{key}={(connection.get(key) or b'').decode()} ({connection.pttl(key)} ms)" for key in keys]
        running = StartedJobRegistry("deliveries", connection=connection).get_job_ids()
        lines.append(f"redis: drain keys {held or 'none'}; drain jobs queued {queued(app)}, running {running}; "
                     f"{len(queued(app, 'default'))} jobs (sweeps) waiting in 'default'")
    except redis.RedisError as error:
        lines.append(f"redis: {type(error).__name__}: {error}")
    by_integration: dict[str, Counter[str]] = defaultdict(Counter)
    for integration_id, status, attempts, due, lease in open_rows:
        if lease is not None and lease > now:
            where = f"leased {(lease - now).total_seconds():.0f} s more"
        elif due <= now:
            where = "due"
        else:
            where = f"due in {(due - now).total_seconds():.0f} s"
        by_integration[integration_id][f"{status}, attempts={attempts}, {where}"] += 1
    for integration_id, counts in by_integration.items():
        lines.append(f"integration {integration_id} open deliveries: {dict(counts)}")
    if not by_integration:
        lines.append("no open deliveries")
    return "\n".join(lines)


# --------------------------------------------------------------------------- tests --
def test_a_worker_killed_with_sigkill_mid_delivery(client, app, receiver, workers):
    """The worker dies (SIGKILL) waiting for the first answer of its drain's batch. The drain
    job dies with it; the integration's lock and the leases of the whole batch it claimed
    run out; then the next worker's sweep wakes the integration and a new drain sends the
    batch: the call that was in flight again (same webhook-id), every other event once."""
    scene = Scene(client, receiver, timeout=5)
    receiver.handler = held = HeldCall(answered=0, after=0.2)
    scene.redeem(20)
    [job] = queued(app)  # one drain for the integration's 20 deliveries, waiting for a worker
    token = drain_lock(app, scene.integration_id).holder
    assert job == drain_job(scene.integration_id, token)
    doomed = workers.start()
    wait_for(lambda: receiver.requests, "the first delivery in flight", 60, workers.logs)
    sigkill(doomed)
    held.killed.set()
    assert doomed.process.returncode == -9
    assert drains_taken(doomed, scene.integration_id) == [token]
    [in_flight] = held.sent
    claimed = rows(app)
    # the dead drain had claimed the whole batch (attempt 1, leased) and recorded nothing
    assert [(r.status, r.attempts) for r in claimed] == [("pending", 1)] * 20
    assert all(r.lease_until is not None for r in claimed)
    assert all(scene.attempt_log(d) == [] for d in scene.deliveries())
    assert queued(app) == []  # its job is gone with it; its lock is not (until LOCK_TTL)
    assert drain_lock(app, scene.integration_id).holder == token

    survivor = workers.start()
    by_id = scene.wait_delivered(workers)
    sent = {webhook_id: len(requests) for webhook_id, requests in by_id.items()}
    assert sent.pop(in_flight) == 2  # its answer died with the worker: sent again, at least once
    assert set(sent.values()) == {1}  # claimed by the dead drain but never sent: sent once
    assert token not in drains_taken(survivor, scene.integration_id)
    deliveries = scene.deliveries()
    assert all(d["attempts"] == 2 for d in deliveries)  # the dead claim counted attempt 1 ...
    assert all(scene.attempt_log(d) == [(2, 200, "succeeded")] for d in deliveries)  # ... with no row
    assert [row for row in rows(app) if row.lease_until is not None] == []


def test_a_worker_killed_holding_the_drain_lock_mid_batch(client, app, receiver, workers):
    """A slow receiver. The drain has claimed all 40 due deliveries in one batch; eight were
    answered, 0.2 s each (so at least the first were recorded when the round was a second
    old, RECORD_EVERY) and the ninth is in flight when its worker is SIGKILLed holding the
    integration's drain lock. A second worker, started just before the kill, runs on:
    while the dead drain's leases last its sweep finds nothing due, and while the dead
    drain's lock lasts it could not start a drain; once both have run out, a drain of its
    own (a new token) sends the rest. None is lost; the events the dead drain had sent
    but not recorded come twice (at least once), every other event once."""
    count, answered = 40, 8
    scene = Scene(client, receiver, timeout=5)
    receiver.handler = held = HeldCall(answered=answered)
    before_kill = held.sent
    scene.redeem(count)
    [job] = queued(app)
    token = drain_lock(app, scene.integration_id).holder
    assert job == drain_job(scene.integration_id, token)
    doomed = workers.start()
    wait_for(lambda: len(before_kill) > answered, f"{answered} answers and one call in flight", 60, workers.logs)
    survivor = workers.start()  # the job is taken: this one only sweeps, for now
    sigkill(doomed)
    held.killed.set()
    assert drains_taken(doomed, scene.integration_id) == [token]
    assert len(before_kill) == answered + 1 and len(set(before_kill)) == answered + 1
    claimed = rows(app)
    recorded = sum(1 for r in claimed if r.status == "succeeded")
    assert 1 <= recorded <= answered  # a prefix of what was answered, recorded mid-round ...
    assert [(r.status, r.attempts) for r in claimed] == (
        [("succeeded", 1)] * recorded + [("pending", 1)] * (count - recorded))  # ... the rest claimed
    assert all(r.lease_until is not None for r in claimed[recorded:])
    assert drain_lock(app, scene.integration_id).holder == token  # held by the dead drain (it kept it alive)

    by_id = scene.wait_delivered(workers)
    sent = {webhook_id: len(requests) for webhook_id, requests in by_id.items()}
    assert {webhook_id for webhook_id, n in sent.items() if n > 1} == set(before_kill[recorded:]), sent
    assert set(sent.values()) <= {1, 2}
    taken = drains_taken(survivor, scene.integration_id)
    assert taken and token not in taken
    deliveries = sorted(scene.deliveries(), key=lambda d: d["event_id"])  # oldest first (ids are ULIDs)
    assert [d["event_id"] for d in deliveries[:recorded]] == before_kill[:recorded]
    assert all(scene.attempt_log(d) == [(1, 200, "succeeded")] for d in deliveries[:recorded])
    assert all(d["attempts"] == 2 for d in deliveries[recorded:])  # the dead claim counted attempt 1 ...
    assert all(scene.attempt_log(d) == [(2, 200, "succeeded")] for d in deliveries[recorded:])  # ... no row
    assert [row for row in rows(app) if row.lease_until is not None] == []
    wait_for(lambda: drain_lock(app, scene.integration_id).holder is None, "the last drain to let go", 30,
             lambda: drain_state(app))


def test_redis_restarting_empty_loses_no_queued_delivery(client, app, receiver, workers, redis_server):
    """The drain job, lock and flag the redemptions left in Redis while no worker ran are
    gone with Redis; the sweep of the worker started afterwards finds the due deliveries
    in the database and wakes their integration again."""
    scene = Scene(client, receiver)
    scene.redeem(10)
    [job] = queued(app)  # the first redemption woke the integration; the others only flagged it
    state = drain_lock(app, scene.integration_id)
    assert job == drain_job(scene.integration_id, state.holder) and state.dirty
    redis_server.restart_empty()
    assert queued(app) == [] and redis_server.client().dbsize() == 0
    workers.start()
    by_id = scene.wait_delivered(workers)
    assert all(len(requests) == 1 for requests in by_id.values()), Counter(map(len, by_id.values()))


def test_redis_down_at_the_redeem_then_back_empty(client, app, receiver, workers, redis_server):
    """A worker is running; Redis dies; tills keep redeeming (the wake after commit fails,
    the redemption does not); Redis comes back empty: every event arrives."""
    scene = Scene(client, receiver)
    workers.start()
    scene.redeem(3)
    scene.wait_delivered(workers)

    redis_server.kill()
    scene.redeem(5)  # 201 each: the deliveries are in the database, no drain knows of them
    pending = [d for d in scene.deliveries() if d["status"] != "succeeded"]
    assert len(pending) == 5 and {d["status"] for d in pending} == {"pending"}
    time.sleep(2)  # the worker runs into the dead Redis for a while
    redis_server.start()
    by_id = scene.wait_delivered(workers)
    assert len(by_id) == 8
    assert all(len(requests) == 1 for requests in by_id.values()), Counter(map(len, by_id.values()))


def test_a_receiver_answering_500_or_nothing_then_200(client, app, receiver, workers):
    """First try: 500 for half the events, no answer within the timeout for the others;
    second try (~5 s later, when the sweep finds it due in the database): 200. Same
    webhook-id on both tries."""
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
    backoff steps (~5 s, ~30 s, each found due by the sweep), one webhook-id throughout."""
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
    """`couponsvc worker --processes 2` against one healthy receiver: 50 events, 50 requests.
    The receiver is slow enough that a drain's budget runs out mid-batch: the drain records
    what it sent, gives back the rest of its claims and queues the next drain, which either
    process may take. Nothing is sent twice across the hand-overs."""
    scene = Scene(client, receiver)
    receiver.default = Answer(delay=1.5 * BUDGET / 50)  # 50 calls take 1.5 budgets at least
    scene.redeem(50)
    assert len(queued(app)) == 1  # one drain for the 50, not a job per delivery
    pair = workers.start(processes=2)
    by_id = scene.wait_delivered(workers)
    twice = {webhook_id: len(r) for webhook_id, r in by_id.items() if len(r) > 1}
    assert twice == {}, f"sent more than once to a healthy receiver: {twice}"
    assert len(receiver.requests) == 50
    assert all(d["attempts"] == 1 for d in scene.deliveries())  # handed-back claims are not attempts
    assert len(drains_taken(pair, scene.integration_id)) >= 2  # handed over at least once
    assert pair.alive()


RETRY_AFTER = 10  # s: the receiver's Retry-After; the retries wait at least this long


def _first_tries_fail(scene: Scene, workers: Workers, count: int) -> None:
    """Redeem `count` coupons against a receiver that answers 503 with `Retry-After: 10` to
    each event's first try; return once every retry waits in the database (failed, due
    in the future, not leased) and the drain has let go of the integration's lock."""
    tries: Counter[str] = Counter()
    lock = threading.Lock()

    def fail_first(request: Received) -> Answer:
        with lock:
            tries[request.headers["webhook-id"]] += 1
            number = tries[request.headers["webhook-id"]]
        if number == 1:
            return Answer(status=503, body=b"restarting", headers={"Retry-After": str(RETRY_AFTER)})
        return Answer()

    app = scene.client.app
    scene.receiver.handler = fail_first
    scene.redeem(count)

    def retries_waiting() -> bool:
        found = rows(app)
        return len(found) == count and all(r.status == "failed" and r.attempts == 1 for r in found)

    def diagnose() -> str:
        return f"{scene.state()}\n{drain_state(app)}\n{workers.logs()}"

    wait_for(retries_waiting, "every first try failed", 60, diagnose)
    wait_for(lambda: drain_lock(app, scene.integration_id).holder is None, "the drain to let go", 30, diagnose)
    now = utcnow()
    waiting = rows(app)
    assert all(r.lease_until is None and r.next_attempt_at > now for r in waiting), diagnose()
    assert queued(app) == [] and scheduled(app) == []  # nothing of them in Redis, nor in RQ's scheduler


def _sent_twice_each(scene: Scene, by_id: dict[str, list[Received]]) -> None:
    assert all(len(requests) == 2 for requests in by_id.values()), Counter(map(len, by_id.values()))
    for delivery in scene.deliveries():
        assert scene.attempt_log(delivery) == [(1, 503, "retry"), (2, 200, "succeeded")]


def test_retries_waiting_in_the_database_survive_a_redis_restart(client, app, receiver, workers, redis_server):
    """Redis restarts with its data (persistence, a failover) while retries wait: the
    worker's connections break; when the retries come due, the reconnected worker's sweep
    must wake the integration. Nothing was in flight, so each event comes exactly twice."""
    scene = Scene(client, receiver)
    worker = workers.start()
    _first_tries_fail(scene, workers, 3)
    redis_server.client().set("chaos:before-the-restart", "1")
    redis_server.restart(down_for=3)  # a restart takes a few seconds
    assert redis_server.client().get("chaos:before-the-restart") == b"1"  # the data came back
    _sent_twice_each(scene, scene.wait_delivered(workers))
    assert worker.alive(), workers.logs()


def test_retries_waiting_in_the_database_survive_a_killed_worker(client, app, receiver, workers):
    """The worker is SIGKILLed while retries wait (in the database; no drain running, no
    lock held); the next worker's sweep must send them, each exactly once more."""
    scene = Scene(client, receiver)
    doomed = workers.start()
    _first_tries_fail(scene, workers, 3)
    sigkill(doomed)
    workers.start()
    _sent_twice_each(scene, scene.wait_delivered(workers))


@pytest.mark.postgresql
def test_a_worker_killed_before_its_claim_commits(client, app, receiver, workers):
    """SIGKILL while the drain's claim waits (on a table lock the test holds) and has not
    committed: the claim rolls back with the dead connection, so the deliveries are
    pending, due, unleased and at attempt 0; but the drain job died with its worker and its
    lock stays in Redis until it expires. The next worker's sweep must wake the
    integration once the lock is gone, and a new drain send all three, once each."""
    scene = Scene(client, receiver)
    scene.redeem(3)
    [job] = queued(app)
    token = drain_lock(app, scene.integration_id).holder
    assert job == drain_job(scene.integration_id, token)
    with app.app_context():
        holder = db.engine.connect()
        try:
            transaction = holder.begin()
            # reads go on (the API, the sweep's SELECT); the claim's UPDATE ... FOR UPDATE waits
            holder.execute(text("LOCK TABLE deliveries IN EXCLUSIVE MODE"))
            doomed = workers.start()

            def claim_waiting() -> bool:
                with db.engine.connect() as probe:
                    return bool(probe.execute(text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND wait_event_type = 'Lock' AND query ILIKE 'UPDATE deliveries%'")).scalar())

            wait_for(claim_waiting, "the drain's claim to wait on the table lock", 60, workers.logs)
            sigkill(doomed)
            transaction.rollback()
        finally:
            holder.close()
        db.session.remove()
    assert drains_taken(doomed, scene.integration_id) == [token]
    untouched = scene.deliveries()
    assert [(d["status"], d["attempts"]) for d in untouched] == [("pending", 0)] * 3  # the claim rolled back
    assert all(r.lease_until is None for r in rows(app))
    assert queued(app) == [] and drain_lock(app, scene.integration_id).holder == token
    workers.start()
    by_id = scene.wait_delivered(workers)
    assert all(len(requests) == 1 for requests in by_id.values()), Counter(map(len, by_id.values()))
    assert all(d["attempts"] == 1 for d in scene.deliveries())


def test_redis_dying_while_a_delivery_is_in_flight(client, app, receiver, workers, redis_server):
    """Redis dies while the worker waits for a receiver's answer and comes back empty; the
    worker (left alone, as a supervisor would leave a running process) carries on. The
    drain cannot keep its lock without Redis and fails; what it sent in that round and had
    not recorded goes out again once the leases run out (at least once: those of the
    first three events may come twice, none more)."""
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
    first_three = {e["id"] for e in client.events(type="coupon.redeemed")}
    wait_for(lambda: held, "the first delivery in flight", 60, workers.logs)
    redis_server.kill()
    redis_gone.set()
    time.sleep(2)  # the answer comes back while Redis is away
    redis_server.restart_empty()
    scene.redeem(2)
    by_id = scene.wait_delivered(workers)
    again = {webhook_id for webhook_id, requests in by_id.items() if len(requests) > 1}
    assert again <= first_three and all(len(requests) <= 2 for requests in by_id.values()), \
        Counter(map(len, by_id.values()))
    assert worker.alive(), workers.logs()


def test_a_worker_stopped_with_sigterm_mid_drain(client, app, receiver, workers):
    """SIGTERM (a deploy, a scale-down) while a drain works is a warm shutdown: RQ lets the
    drain job finish - it calls until its budget is spent, records what it sent, gives
    back the claims it did not call and queues the next drain - and the process exits 0.
    The next worker takes that drain. Nothing is lost, nothing sent twice (no outcome was
    lost), and the given-back claims are not counted as attempts."""
    count = 30
    scene = Scene(client, receiver)
    receiver.default = Answer(delay=1.5 * BUDGET / count)  # the batch outlasts one drain's budget
    scene.redeem(count)
    stopping = workers.start()
    wait_for(lambda: len(receiver.requests) >= 3, "the drain to be calling", 60, workers.logs)
    os.kill(stopping.pid, signal.SIGTERM)
    try:
        code = stopping.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        code = None
    assert code == 0, f"a worker stopped mid-drain did not exit (0) after its job\n{workers.logs()}"
    sent = len(receiver.requests)
    assert 0 < sent < count
    found = rows(app)
    assert Counter((r.status, r.attempts) for r in found) == {("succeeded", 1): sent, ("pending", 0): count - sent}
    assert all(r.lease_until is None for r in found)
    [job] = queued(app)  # the hand-over: the next drain waits for a worker, holding the lock
    assert job == drain_job(scene.integration_id, drain_lock(app, scene.integration_id).holder)

    workers.start()
    by_id = scene.wait_delivered(workers)
    assert all(len(requests) == 1 for requests in by_id.values()), Counter(map(len, by_id.values()))
    assert all(d["attempts"] == 1 for d in scene.deliveries())

