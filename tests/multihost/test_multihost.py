"""Several machines: web nodes and workers on hosts of their own, behind HAProxy, on
PgBouncer and a Redis that fails over.

The hosts are Linux network namespaces of this machine on a /24 the test creates
(`network.py`), each with its own address and loopback; this process sits on the same
bridge (the range's .1) as a client of them all and as the webhook receiver:

    db   .10  PostgreSQL (a throwaway cluster; 127.0.0.1 and .10:5432) and PgBouncer
              (.10:6432, transaction mode, 8 server connections) in front of it
    r1   .21  Redis primary and a Sentinel      r2  .22  Redis replica and a Sentinel
    r3   .23  a Sentinel                        (quorum 2; down after 1 s)
    w1-3 .31-.33  web nodes: gunicorn `couponsvc:create_app()`, one process of 8 threads
    k1-2 .41-.42  workers: `couponsvc worker` (RQ and the periodic ticker)
    lb   .50  HAProxy on :8080, round robin over the nodes, checking GET /healthz

Every node and worker gets the same environment, as a deployment would give them:
DATABASE_URL through PgBouncer with COUPONSVC_DB_PREPARE=off (PgBouncer 1.18 here),
REDIS_URL naming the three Sentinels, one SECRET_KEY, COUPONSVC_QR_SIGNING_KEYS,
COUPONSVC_DATA_KEYS and COUPONSVC_PUBLIC_URL (HAProxy's address), and an instance
directory of its own (nothing shared on disk). Migrations and the first API key are
made as an operator would, with `couponsvc db upgrade` and `couponsvc create-key`
against PostgreSQL directly.

Set up once for the module; the tests run in file order and the last two are
destructive (a node killed, the Redis primary killed). Figures (redemptions per second
through HAProxy, the failover's time) are printed at the end (`pytest -s`) and written
to $COUPONSVC_MULTIHOST_FIGURES when set. Waits are bounded polls for an outcome, never
assertions about time.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import queue
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import psycopg
import pytest
from rq.job import Job
from standardwebhooks.webhooks import Webhook

from couponsvc import codes
from couponsvc.data_keys import new_key as new_data_key
from couponsvc.qr.keyring import generate_private_key_text
from couponsvc.redis_client import redis_client
from tests.racing import Reply
from workers.periodic import schedule

from . import services
from .network import Network, unavailable
from .services import Service, wait_for

HOSTS = {"db": 10, "r1": 21, "r2": 22, "r3": 23, "w1": 31, "w2": 32, "w3": 33,
         "k1": 41, "k2": 42, "lb": 50}
NODES, WORKERS, SENTINELS = ("w1", "w2", "w3"), ("k1", "k2"), ("r1", "r2", "r3")
BUDGET_SOURCE, SIGN_IN_SOURCE, OTHER_SOURCE = 2, 3, 4  # more addresses of this machine
NODE_PORT, LB_PORT, PG_PORT, BOUNCER_PORT = 8000, 8080, 5432, 6432
SERVICE = "couponsvc"
LOOKUP_BUDGET = 9  # failed look-ups per address (and hour) on every node
SIGN_IN_BUDGET = 4  # failed admin sign-ins per address (and hour)
DELIVERY_DEADLINE = 150  # s
FIGURES: dict[str, Any] = {}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _cannot_run() -> str | None:
    reason = unavailable()
    if reason is not None:
        return reason
    for name in ("pgbouncer", "haproxy", "redis-server"):
        if services.program(name) is None:
            return f"{name} is not installed (./scripts/test installs it from apt as root)"
    if services.program("redis-sentinel") is None:
        return "redis-sentinel is not installed (./scripts/test installs it from apt as root)"
    if services.postgres_bindir() is None:
        return "no PostgreSQL server under /usr/lib/postgresql"
    return None


# ------------------------------------------------------------------------------ HTTP --
def exchange(address: str, port: int, method: str, path: str, *, key: str | None = None,
             body: Any = None, form: dict[str, str] | None = None,
             headers: dict[str, str] | None = None, source: str | None = None,
             timeout: float = 60) -> Reply:
    """One request on a connection of its own (from `source`, an address of this machine)."""
    sent = {"Accept": "application/json", **(headers or {})}
    if key:
        sent["Authorization"] = f"Bearer {key}"
    payload = None
    if body is not None:
        payload = json.dumps(body, ensure_ascii=False).encode()
        sent["Content-Type"] = "application/json; charset=utf-8"
    elif form is not None:
        payload = urlencode(form).encode()
        sent["Content-Type"] = "application/x-www-form-urlencoded"
    target = path if path.startswith("/") else f"/api/v1/{path}"
    connection = http.client.HTTPConnection(address, port, timeout=timeout,
                                            source_address=(source, 0) if source else None)
    try:
        connection.request(method, target, body=payload, headers=sent)
        response = connection.getresponse()
        raw = response.read()
        headers_in = {}
        for name, value in response.getheaders():
            headers_in[name.lower()] = (f"{headers_in[name.lower()]}\n{value}"
                                        if name.lower() in headers_in else value)
        text = raw.decode("utf-8", "replace")
        if headers_in.get("content-type", "").startswith("image/"):
            text = base64.b64encode(raw).decode()
        return Reply(response.status, headers_in, text)
    finally:
        connection.close()


# -------------------------------------------------------------------- webhook receiver --
class Receiver:
    """An HTTP server on this machine's address on the bridge that accepts every webhook."""

    def __init__(self, address: str) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer((address, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        self.url = f"http://{address}:{self._server.server_address[1]}/hook"

    def redemption_ids(self, secret: str) -> set[str]:
        """The redemptions of the `coupon.redeemed` webhooks received, each signature checked."""
        verifier = Webhook(secret)
        with self._lock:
            received = list(self.received)
        ids = set()
        for headers, body in received:
            payload = verifier.verify(body, headers)
            if payload["type"] == "coupon.redeemed":
                ids.add(payload["data"]["redemption"]["id"])
        return ids

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# ------------------------------------------------------------------------------ site --
@dataclass
class Shop:
    merchant: str
    store: str
    manager: str
    scanner: str
    campaign: str


@dataclass
class Site:
    network: Network
    base: Path
    logs: Path
    env: dict[str, str]
    direct_url: str  # PostgreSQL itself, for the operator's commands and the test's checks
    redis_url: str
    nodes: dict[str, Service] = field(default_factory=dict)
    workers: dict[str, Service] = field(default_factory=dict)
    redis: dict[str, Service] = field(default_factory=dict)
    sentinels: dict[str, Service] = field(default_factory=dict)
    postgres: Service | None = None
    pgbouncer: Service | None = None
    haproxy: Service | None = None
    platform: str = ""
    receiver: Receiver | None = None

    def host(self, name: str):
        return self.network.hosts[name]

    def source(self, last: int) -> str:
        return self.network.address(last)

    # HTTP ------------------------------------------------------------------------
    def lb(self, method: str, path: str, **kw) -> Reply:
        return exchange(self.host("lb").address, LB_PORT, method, path, **kw)

    def node(self, name: str, method: str, path: str, **kw) -> Reply:
        return exchange(self.host(name).address, NODE_PORT, method, path, **kw)

    def ok(self, reply: Reply, status: int = 200) -> Any:
        assert reply.status == status, reply
        return reply.json

    # PostgreSQL ------------------------------------------------------------------
    def sql(self, query: str, params: dict | None = None) -> list[tuple]:
        with psycopg.connect(self.direct_url, autocommit=True) as connection:
            return connection.execute(query, params or {}).fetchall()

    # Redis -----------------------------------------------------------------------
    def redis_client(self):
        return redis_client(self.redis_url, socket_timeout=2, socket_connect_timeout=1)

    def primary(self) -> str | None:
        """The primary's address according to the first Sentinel that answers."""
        for name in SENTINELS:
            with contextlib.suppress(Exception):
                client = redis_client(f"redis://{self.host(name).address}:26379/0",
                                      socket_timeout=1, socket_connect_timeout=1)
                try:
                    answer = client.execute_command("SENTINEL", "get-master-addr-by-name", SERVICE)
                finally:
                    client.close()
                if answer:
                    return answer[0].decode() if isinstance(answer[0], bytes) else answer[0]
        return None

    # objects, through HAProxy ----------------------------------------------------
    def shop(self) -> Shop:
        merchant = self.ok(self.lb("POST", "merchants", key=self.platform,
                                   body={"name": f"商户 {uuid.uuid4().hex[:6]}", "city": "赣州"}), 201)
        store = self.ok(self.lb("POST", f"merchants/{merchant['id']}/stores", key=self.platform,
                                body={"name": "门店", "address": "文清路 1 号"}), 201)
        manager = self.ok(self.lb("POST", f"merchants/{merchant['id']}/api-keys", key=self.platform,
                                  body={"role": "manager", "label": "manager"}), 201)["key"]
        scanner = self.ok(self.lb("POST", f"merchants/{merchant['id']}/api-keys", key=self.platform,
                                  body={"role": "scanner", "label": "till",
                                        "store_id": store["id"]}), 201)["key"]
        start = datetime.now(UTC)
        campaign = self.ok(self.lb("POST", "campaigns", key=self.platform, body={
            "merchant_id": merchant["id"], "title": "双人牛肉面套餐", "price": 3990, "list_price": 6800,
            "sales_start": (start - timedelta(hours=1)).isoformat(),
            "sales_end": (start + timedelta(days=7)).isoformat(),
            "valid_from": (start - timedelta(hours=1)).isoformat(),
            "valid_until": (start + timedelta(days=30)).isoformat()}), 201)
        self.ok(self.lb("POST", f"campaigns/{campaign['id']}/publish", key=self.platform))
        return Shop(merchant["id"], store["id"], manager, scanner, campaign["id"])

    def coupons(self, shop: Shop, count: int, node: str | None = None) -> list[dict]:
        body = {"customer_ref": f"buyer-{uuid.uuid4().hex[:8]}", "quantity": count,
                "payment_ref": f"pay-{uuid.uuid4().hex[:8]}"}
        path = f"campaigns/{shop.campaign}/orders"
        reply = (self.node(node, "POST", path, key=self.platform, body=body) if node
                 else self.lb("POST", path, key=self.platform, body=body))
        return self.ok(reply, 201)["coupons"]


def _environment(network: Network, direct: bool = False) -> tuple[dict[str, str], str]:
    db = network.hosts["db"].address
    redis_url = ("redis+sentinel://" + ",".join(f"{network.hosts[name].address}:26379"
                                                for name in SENTINELS) + f"/{SERVICE}/0")
    inherited = {name: value for name, value in os.environ.items()
                 if name not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY"}
                 and not name.startswith(("COUPONSVC_", "FLASK_", "OTEL_"))}
    return {
        **inherited,
        "DATABASE_URL": f"postgresql://postgres@{db}:{BOUNCER_PORT}/{SERVICE}",
        "COUPONSVC_DB_PREPARE": "off",
        "COUPONSVC_DB_POOL_SIZE": "10",
        "REDIS_URL": redis_url,
        "SECRET_KEY": secrets.token_urlsafe(32),
        "COUPONSVC_QR_SIGNING_KEYS": generate_private_key_text(),
        "COUPONSVC_DATA_KEYS": new_data_key(),
        "COUPONSVC_PUBLIC_URL": f"http://{network.hosts['lb'].address}:{LB_PORT}",
        "COUPONSVC_TRUSTED_PROXIES": "1",
        "COUPONSVC_ALLOW_PRIVATE_WEBHOOK_TARGETS": "1",  # the receiver is on the bridge
        "COUPONSVC_LOOKUP_LIMIT_PER_ADDRESS": f"{LOOKUP_BUDGET}/hour",
        "COUPONSVC_LOOKUP_LIMIT_PER_KEY": "1000/hour",
        "COUPONSVC_ADMIN_SIGNIN_LIMIT_PER_ADDRESS": f"{SIGN_IN_BUDGET}/hour",
        "COUPONSVC_SWEEP_INTERVAL": "1",
        "PYTHONUNBUFFERED": "1",
    }, redis_url


def _with_instance(env: dict[str, str], directory: Path) -> dict[str, str]:
    directory.mkdir(parents=True, exist_ok=True)
    return {**env, "COUPONSVC_INSTANCE_PATH": str(directory)}


def _operator(site: Site, *args: str) -> str:
    """A `couponsvc` command run by an operator against PostgreSQL directly."""
    env = _with_instance({**site.env, "DATABASE_URL": site.direct_url}, site.base / "operator")
    done = subprocess.run([str(services.BIN / "couponsvc"), *args], env=env, cwd=services.REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-4000:])
    return done.stdout


def _ready(site: Site, name: str) -> bool:
    reply = site.node(name, "GET", "/readyz", timeout=5)
    return reply.status == 200


@pytest.fixture(scope="module")
def site(request):
    reason = _cannot_run()
    if reason is not None:
        if in_ci():
            pytest.fail(f"the multi-host test cannot run under CI: {reason}", pytrace=False)
        pytest.skip(f"the multi-host test needs root, network namespaces, PgBouncer, HAProxy "
                    f"and Redis Sentinel: {reason}")
    started = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="couponsvc-multihost-"))
    base.chmod(0o755)  # PostgreSQL and PgBouncer run as postgres under it
    logs = base / "logs"
    logs.mkdir()
    network = Network.create(HOSTS, extra_addresses=(BUDGET_SOURCE, SIGN_IN_SOURCE, OTHER_SOURCE))
    env, redis_url = _environment(network)
    db = network.hosts["db"]
    site = Site(network, base, logs, env, f"postgresql://postgres@{db.address}:{PG_PORT}/{SERVICE}",
                redis_url)
    failures_before, set_up = request.session.testsfailed, False
    try:
        _start(site)
        set_up = True
        FIGURES["set-up seconds"] = round(time.monotonic() - started, 1)
        yield site
    finally:
        _stop(site)
        network.destroy()
        _report(site, keep_logs=not set_up or request.session.testsfailed > failures_before)


def _start(site: Site) -> None:
    network, base, logs = site.network, site.base, site.logs
    db = network.hosts["db"]
    postgres = services.start_postgres(base, logs, host=db, listen=["127.0.0.1", db.address],
                                       trust=f"{network.prefix}.0/24", port=PG_PORT)
    site.postgres = postgres.service
    with psycopg.connect(f"postgresql://postgres@{db.address}:{PG_PORT}/postgres",
                         autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{SERVICE}"')
    site.pgbouncer = services.start_pgbouncer(
        base, logs, host=db, listen=db.address, port=BOUNCER_PORT, server_host="127.0.0.1",
        server_port=PG_PORT, pool_size=8)
    primary = network.hosts["r1"].address
    site.redis["r1"] = services.start_redis(base, logs, host=network.hosts["r1"])
    site.redis["r2"] = services.start_redis(base, logs, host=network.hosts["r2"], replica_of=primary)
    for name in SENTINELS:
        site.sentinels[name] = services.start_sentinel(
            base, logs, host=network.hosts[name], service_name=SERVICE, primary=primary, quorum=2)
    _operator(site, "db", "upgrade")
    site.platform = _operator(site, "create-key", "--role", "platform", "--label", "multihost").strip()
    for name in NODES:
        site.nodes[name] = services.start_node(
            logs, host=network.hosts[name], port=NODE_PORT,
            env=_with_instance(site.env, base / "instance" / name))
    for name in WORKERS:
        site.workers[name] = services.start_worker(
            logs, host=network.hosts[name], env=_with_instance(site.env, base / "instance" / name))
    site.haproxy = services.start_haproxy(
        base, logs, host=network.hosts["lb"], port=LB_PORT,
        backends={name: f"{network.hosts[name].address}:{NODE_PORT}" for name in NODES})
    for name in NODES:
        wait_for(lambda name=name: _ready(site, name), f"web node {name} ready",
                 service=site.nodes[name])
    wait_for(lambda: all(site.lb("GET", "/readyz", timeout=5).status == 200 for _ in NODES),
             "HAProxy passing requests to the nodes")
    wait_for(lambda: _workers_registered(site) >= len(WORKERS), "both workers registered in RQ")
    site.receiver = Receiver(network.gateway)


def _workers_registered(site: Site) -> int:
    from rq import Worker

    return len(Worker.all(connection=site.redis_client()))


def _stop(site: Site) -> None:
    if site.receiver is not None:
        site.receiver.close()
    order = [*site.workers.values(), *site.nodes.values(), site.haproxy,
             *site.sentinels.values(), *site.redis.values(), site.pgbouncer, site.postgres]
    for service in order:
        if service is not None:
            service.stop(wait=10)


def _report(site: Site, keep_logs: bool) -> None:
    text = json.dumps(FIGURES, indent=2, ensure_ascii=False)
    print(f"\nmulti-host figures:\n{text}")
    target = os.environ.get("COUPONSVC_MULTIHOST_FIGURES")
    if target:
        Path(target).write_text(text + "\n")
    if keep_logs or os.environ.get("COUPONSVC_MULTIHOST_KEEP"):
        print(f"multi-host logs kept in {site.logs}")
        return
    shutil.rmtree(site.base, ignore_errors=True)


# ------------------------------------------------------------------------------ load --
@dataclass
class Load:
    """Redeem every coupon through HAProxy from `threads` tills, each scan with an
    Idempotency-Key of its own that its retries keep. A scan whose answer is lost (the
    node died with it: 502 from HAProxy, a reset connection) is retried until answered."""

    site: Site
    shop: Shop
    threads: int = 12
    answers: dict[str, Reply] = field(default_factory=dict)  # code: the final answer
    lost: Counter = field(default_factory=Counter)  # code: answers lost before the final one
    transport_errors: list[str] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    done: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, coupons: list[dict], at: float, event: Callable[[], None]) -> float:
        """Redeem them all; call `event()` once `at` (a fraction) of them are answered.
        Returns the seconds the whole load took."""
        work: queue.Queue[str] = queue.Queue()
        for coupon in coupons:
            work.put(coupon["code"])
        fired = threading.Event()
        trigger_at = int(len(coupons) * at)

        def till() -> None:
            while True:
                try:
                    code = work.get_nowait()
                except queue.Empty:
                    return
                self._redeem(code)
                with self._lock:
                    self.done += 1
                    fire = self.done >= trigger_at and not fired.is_set()
                    if fire:
                        fired.set()
                if fire:
                    threading.Thread(target=event, daemon=True).start()

        started = time.monotonic()
        with ThreadPoolExecutor(self.threads, thread_name_prefix="till") as pool:
            for future in [pool.submit(till) for _ in range(self.threads)]:
                future.result()
        return time.monotonic() - started

    def _redeem(self, code: str) -> None:
        key = str(uuid.uuid4())
        for _ in range(100):
            try:
                reply = self.site.lb("POST", "redemptions", key=self.shop.scanner, body={"code": code},
                                     headers={"Idempotency-Key": key}, timeout=60)
            except (OSError, http.client.HTTPException) as error:
                with self._lock:
                    self.transport_errors.append(f"{code}: {error!r}")
                    self.lost[code] += 1
                time.sleep(0.2)
                continue
            with self._lock:
                self.statuses[reply.status] += 1
            if reply.status in (502, 503, 504):
                with self._lock:
                    self.lost[code] += 1
                time.sleep(0.2)
                continue
            self.answers[code] = reply
            return
        raise AssertionError(f"{code}: no answer after 100 tries")

    def acknowledged(self) -> dict[str, str]:
        """code: redemption id, for every scan answered 201."""
        return {code: reply.json["id"] for code, reply in self.answers.items() if reply.status == 201}


def _rows_and_events(site: Site, shop: Shop) -> tuple[dict[str, str], set[str]]:
    """The shop's redemptions in the database (id: code), and the redemption ids its
    `coupon.redeemed` events carry."""
    rows = dict(site.sql("SELECT id, coupon_code FROM redemptions WHERE merchant_id = %(m)s",
                         {"m": shop.merchant}))
    events = {row[0] for row in site.sql(
        "SELECT data->'redemption'->>'id' FROM events "
        "WHERE type = 'coupon.redeemed' AND merchant_id = %(m)s", {"m": shop.merchant})}
    return rows, events


# ----------------------------------------------------------------------------- tests --
def test_one_coupon_scanned_at_once_through_every_node_redeems_exactly_once(site):
    shop = site.shop()
    code = site.coupons(shop, 1)[0]["code"]
    racers = [("node", name) for name in NODES for _ in range(4)] + [("lb", None)] * 3
    barrier = threading.Barrier(len(racers))

    def scan(index: int) -> Reply:
        kind, name = racers[index]
        barrier.wait(timeout=60)
        if kind == "lb":
            return site.lb("POST", "redemptions", key=shop.scanner, body={"code": code})
        return site.node(name, "POST", "redemptions", key=shop.scanner, body={"code": code})

    with ThreadPoolExecutor(len(racers)) as pool:
        replies = list(pool.map(scan, range(len(racers))))
    told = Counter((reply.status, reply.code) for reply in replies)
    assert told == {(201, None): 1, (409, "coupon_already_redeemed"): len(racers) - 1}, told
    winner = next(reply for reply in replies if reply.status == 201)
    rows = site.sql("SELECT id FROM redemptions WHERE coupon_code = %(c)s", {"c": code})
    assert [row[0] for row in rows] == [winner.json["id"]]
    coupon = site.ok(site.node("w3", "GET", f"coupons/{code}", key=shop.scanner))
    assert coupon["status"] == "redeemed" and coupon["uses_left"] == 0


def test_a_qr_issued_through_one_node_verifies_and_redeems_on_the_others(site):
    shop = site.shop()
    coupon = site.coupons(shop, 1, node="w1")[0]
    keys = [site.ok(site.node(name, "GET", "qr-keys"))["keys"] for name in NODES]
    assert keys[0] and keys[1:] == [keys[0], keys[0]]  # one signing key, shared
    checked = site.ok(site.node("w2", "POST", "redemptions/validate", key=shop.scanner,
                                body={"qr": coupon["qr_payload"]}))
    assert checked["ok"] is True and checked["coupon"]["code"] == coupon["code"]
    # the capability URL signed on w1 (with SECRET_KEY) opens the QR image on w3, no key
    link = urlsplit(coupon["qr_url"])
    image = site.node("w3", "GET", f"{link.path}?{link.query}")
    assert image.status == 200 and image.headers["content-type"] == "image/png", image
    assert coupon["qr_url"].startswith(site.env["COUPONSVC_PUBLIC_URL"] + "/")
    redeemed = site.node("w3", "POST", "redemptions", key=shop.scanner, body={"qr": coupon["qr_payload"]})
    assert redeemed.status == 201, redeemed
    forged = coupon["qr_payload"][:-4] + ("AAAA" if not coupon["qr_payload"].endswith("AAAA") else "BBBB")
    refused = site.node("w1", "POST", "redemptions/validate", key=shop.scanner, body={"qr": forged})
    assert refused.status == 400 and refused.code == "invalid_qr", refused


def test_the_failed_look_up_budget_and_the_sign_in_limit_are_shared_by_every_node(site):
    shop = site.shop()
    real = site.coupons(shop, 1)[0]["code"]
    source = site.source(BUDGET_SOURCE)
    guesses = [codes.display(code) for code in codes.generate_many(LOOKUP_BUDGET + len(NODES))]
    # the whole budget, spread over the nodes: each node alone would allow all of it again
    for index, guess in enumerate(guesses[:LOOKUP_BUDGET]):
        reply = site.node(NODES[index % len(NODES)], "POST", "redemptions/validate",
                          key=shop.scanner, body={"code": guess}, source=source)
        assert reply.status == 404 and reply.code == "coupon_not_found", (index, reply)
    for name, guess in zip(NODES, guesses[LOOKUP_BUDGET:], strict=True):
        over = site.node(name, "POST", "redemptions/validate", key=shop.scanner,
                         body={"code": guess}, source=source)
        assert over.status == 429 and over.code == "rate_limited", (name, over)
        assert int(over.headers["retry-after"]) > 0
        refused_real = site.node(name, "POST", "redemptions/validate", key=shop.scanner,
                                 body={"code": real}, source=source)
        assert refused_real.status == 429, (name, refused_real)
    # through HAProxy the address is the client's (X-Forwarded-For, set by HAProxy)
    assert site.lb("POST", "redemptions/validate", key=shop.scanner, body={"code": real},
                   source=source).status == 429
    spoofed = site.lb("POST", "redemptions/validate", key=shop.scanner, body={"code": real},
                      source=source, headers={"X-Forwarded-For": "198.51.100.7"})
    assert spoofed.status == 429, spoofed
    other = site.lb("POST", "redemptions/validate", key=shop.scanner, body={"code": real},
                    source=site.source(OTHER_SOURCE))
    assert other.status == 200 and other.json["ok"] is True, other

    # the admin sign-in: a form drawn by one node is posted to the next (one SECRET_KEY),
    # and the failures of an address are counted once for all nodes
    source = site.source(SIGN_IN_SOURCE)
    statuses = []
    for attempt in range(SIGN_IN_BUDGET + len(NODES)):
        drawn_on, posted_to = NODES[attempt % 3], NODES[(attempt + 1) % 3]
        form = site.node(drawn_on, "GET", "/admin/sign-in", source=source,
                         headers={"Accept": "text/html"})
        assert form.status == 200, form
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)[1]
        cookie = form.headers["set-cookie"].split(";", 1)[0]
        answer = site.node(posted_to, "POST", "/admin/sign-in", source=source,
                           headers={"Cookie": cookie, "Accept": "text/html"},
                           form={"email": f"nobody-{attempt}@example.com", "password": "wrong",
                                 "csrf_token": token})
        statuses.append(answer.status)
    assert statuses == [401] * SIGN_IN_BUDGET + [429] * len(NODES), statuses


def test_each_periodic_job_runs_once_per_slot_across_all_workers(site):
    jobs = schedule({"SWEEP_INTERVAL": 1})
    every_second = [periodic for periodic in jobs if periodic.every == 1]
    assert every_second, jobs
    first = int(time.time()) + 1
    time.sleep(6)
    last = int(time.time()) - 1
    client = site.redis_client()
    ids = [periodic.job_id(slot) for periodic in every_second for slot in range(first, last)]
    minute = next(periodic for periodic in jobs if periodic.every == 60)
    ids.append(minute.job_id(time.time()))  # this minute's close-due

    def runs(job_id: str) -> list:
        with contextlib.suppress(Exception):
            return Job.fetch(job_id, connection=client).results()
        return []

    wait_for(lambda: all(runs(job_id) for job_id in ids), "every slot's periodic jobs to run",
             deadline=60)
    ran = {job_id: len(runs(job_id)) for job_id in ids}
    assert set(ran.values()) == {1}, {job_id: n for job_id, n in ran.items() if n != 1}
    # the workers' own logs: each slot's job started by one worker, once
    # (RQ logs a start as "Worker <name>: default: workers.relay.sweep() (<job id>)")
    logs = "\n".join(worker.log_path.read_text(errors="replace") for worker in site.workers.values())
    taken = Counter(re.findall(r"\(\) \((periodic-[a-z-]+-[0-9a-f]{10}-\d+)\)", logs))
    assert {job_id: taken[job_id] for job_id in ids} == dict.fromkeys(ids, 1)
    by_worker = Counter(Job.fetch(job_id, connection=client).worker_name for job_id in ids)
    FIGURES["periodic slots checked"] = len(ids)
    FIGURES["periodic slots run by each worker"] = dict(by_worker)


def test_a_web_node_killed_under_load_loses_no_acknowledged_redemption(site):
    shop = site.shop()
    coupons = [coupon for _ in range(3) for coupon in site.coupons(shop, 120)]
    victim = site.nodes["w2"]
    killed_at: list[float] = []

    def kill() -> None:
        killed_at.append(time.monotonic())
        victim.kill()

    load = Load(site, shop)
    seconds = load.run(coupons, at=0.3, event=kill)
    assert killed_at and not victim.alive()
    unexpected = {code: reply for code, reply in load.answers.items() if reply.status != 201}
    assert not unexpected, unexpected  # retried with the same Idempotency-Key: the same 201
    acknowledged = load.acknowledged()
    assert len(acknowledged) == len(coupons)
    rows, events = _rows_and_events(site, shop)
    missing = {code: redemption for code, redemption in acknowledged.items() if rows.get(redemption) != code}
    assert not missing, f"acknowledged but not in the database: {missing}"
    assert len(rows) == len(coupons), "a coupon redeemed twice, or a redemption nobody asked for"
    assert set(rows) <= events, f"redemptions without their coupon.redeemed event: {set(rows) - events}"
    FIGURES["node kill: redemptions"] = len(coupons)
    FIGURES["node kill: redemptions per second through HAProxy (3 nodes, then 2)"] = round(
        len(coupons) / seconds, 1)
    FIGURES["node kill: answers lost with the node, then retried"] = sum(load.lost.values())
    FIGURES["node kill: statuses seen"] = {str(k): v for k, v in sorted(load.statuses.items())}
    # the node comes back and takes its share again
    site.nodes["w2"] = services.start_node(site.logs, host=site.host("w2"), port=NODE_PORT,
                                           env=_with_instance(site.env, site.base / "instance" / "w2"))
    wait_for(lambda: _ready(site, "w2"), "web node w2 back", service=site.nodes["w2"])


def test_the_redis_primary_killed_under_load_fails_over_and_every_event_is_delivered(site):
    shop = site.shop()
    integration = site.ok(site.lb("POST", f"merchants/{shop.merchant}/integrations", key=shop.manager,
                                  body={"adapter": "webhook", "config": {"url": site.receiver.url},
                                        "events": ["coupon.redeemed"]}), 201)
    secret = integration["secret"]
    coupons = [coupon for _ in range(2) for coupon in site.coupons(shop, 120)]
    old, new = site.host("r1").address, site.host("r2").address
    assert site.primary() == old
    failover: dict[str, float] = {}

    def kill_primary() -> None:
        failover["killed"] = time.monotonic()
        site.redis["r1"].kill()
        wait_for(lambda: site.primary() == new, "the Sentinels to promote the replica", deadline=60)
        failover["promoted"] = time.monotonic()

    load = Load(site, shop)
    seconds = load.run(coupons, at=0.25, event=kill_primary)
    wait_for(lambda: "promoted" in failover, "the failover", deadline=60)
    # One Sentinel naming the new primary is not yet all of them agreeing: for a moment a
    # client asking them in turn may find none that vouches for a primary.
    wait_for(lambda: site.redis_client().execute_command("ROLE")[0] in (b"master", "master"),
             "a client through the Sentinels to reach the new primary", deadline=30)
    unexpected = {code: reply for code, reply in load.answers.items() if reply.status != 201}
    assert not unexpected, unexpected
    acknowledged = load.acknowledged()
    rows, events = _rows_and_events(site, shop)
    assert {redemption: code for code, redemption in acknowledged.items()} == rows
    assert set(rows) <= events
    wait_for(lambda: set(rows) <= site.receiver.redemption_ids(secret),
             "every coupon.redeemed event at the webhook receiver", deadline=DELIVERY_DEADLINE)
    delivered_at = time.monotonic()

    def statuses() -> dict[str, int]:
        return dict(site.sql(
            "SELECT d.status, count(*) FROM deliveries d JOIN integrations i "
            "ON i.id = d.integration_id WHERE i.merchant_id = %(m)s GROUP BY d.status",
            {"m": shop.merchant}))

    def all_succeeded() -> bool:
        found = statuses()
        assert found == {"succeeded": len(rows)}, found  # shown when the wait gives up
        return True

    # a drain records its round's outcomes at the round's end, after the receiver has them
    wait_for(all_succeeded, "every delivery recorded succeeded", deadline=DELIVERY_DEADLINE)
    FIGURES["redis failover: redemptions"] = len(coupons)
    FIGURES["redis failover: seconds from SIGKILL of the primary to the replica promoted"] = round(
        failover["promoted"] - failover["killed"], 2)
    FIGURES["redis failover: redemptions per second through HAProxy during it"] = round(
        len(coupons) / seconds, 1)
    FIGURES["redis failover: seconds from SIGKILL to every event delivered"] = round(
        delivered_at - failover["killed"], 1)
    FIGURES["redis failover: webhook requests received (at least once)"] = len(site.receiver.received)
