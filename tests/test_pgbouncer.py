"""The service's key paths through a real PgBouncer in transaction mode.

A PgBouncer of the test's own (Debian's package, `scripts/lib/bootstrap.sh`:
ensure_pgbouncer) listens on a free local port in front of the test PostgreSQL with TWO
server connections per database, so the app's connections (and this module's racing
threads) take turns on them: what one transaction leaves on a server connection (a
prepared statement, a temporary table, a `SET`, a session advisory lock, a held cursor,
a LISTEN) is found by the next client's transaction, which is what transaction pooling
forbids. The app runs with `COUPONSVC_DB_PREPARE=off` (PgBouncer before 1.22 cannot
carry psycopg's prepared statements); every path is run more than psycopg's prepare
threshold (5) times. After the paths, both server connections are inspected for
anything left behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
from pathlib import Path

import psycopg
import pytest
from rq import Queue, SimpleWorker
from sqlalchemy import event
from sqlalchemy.engine import make_url
from standardwebhooks.webhooks import Webhook

from couponsvc import bulk, codes
from couponsvc.extensions import db
from couponsvc.jobs import runner
from tests.conftest import PG_URL, REDIS_URL, _empty_tables, make_app
from tests.factories import Client, Shop, iso, now
from tests.integrations.receiver import Receiver
from tests.multihost import services
from tests.racing import free_port

pytestmark = pytest.mark.postgresql

POOL_SIZE = 2  # server connections per database: every test path shares them
REPEAT = 7  # more than psycopg's prepare_threshold (5)
# Parameters PgBouncer itself keeps in step with each client (it SETs them on the server)
TRACKED = {"client_encoding", "datestyle", "timezone", "standard_conforming_strings",
           "application_name"}
SESSION_STATE = re.compile(
    r"^\s*(SET\s+(?!LOCAL\b)|RESET\b|LISTEN\b|PREPARE\b|DISCARD\b|LOAD\b)"
    r"|\bpg_(try_)?advisory_lock(_shared)?\s*\(|\bWITH\s+HOLD\b"
    r"|\bCREATE\s+(GLOBAL\s+|LOCAL\s+)?TEMP(ORARY)?\s+TABLE\b(?![^;]*\bON\s+COMMIT\s+DROP\b)",
    re.IGNORECASE)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="module")
def bouncer(migrated):
    """(PgBouncer's URL of the test database, its port)."""
    if services.program("pgbouncer") is None:
        reason = "pgbouncer is not installed (./scripts/test installs it from apt as root)"
        if in_ci():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    url = make_url(migrated)
    server = make_url(PG_URL)
    base = Path(tempfile.mkdtemp(prefix="couponsvc-pgbouncer-"))
    base.chmod(0o755)  # PgBouncer runs as postgres under root
    port = free_port()
    service = services.start_pgbouncer(
        base, base, listen="127.0.0.1", port=port, server_host=server.host or "127.0.0.1",
        server_port=server.port or 5432, pool_size=POOL_SIZE,
        database_user=server.username or "postgres")
    try:
        yield url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False), port
    finally:
        service.stop()


@pytest.fixture
def pooled(bouncer, instance_path):
    """The app on PgBouncer, prepared statements off; empty tables and Redis."""
    import redis

    app = make_app(bouncer[0], instance_path, DB_PREPARE=False, ALLOW_PRIVATE_WEBHOOK_TARGETS=True)
    redis.Redis.from_url(REDIS_URL).flushdb()
    statements: list[str] = []
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute",
                     lambda conn, cursor, statement, *rest: statements.append(statement))
        _empty_tables()
    app.statements = statements
    yield app
    app.extensions["couponsvc.jobs"].wait_idle()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _work_off(app) -> None:
    connection = runner(app).redis()
    with app.app_context():
        SimpleWorker([Queue(name, connection=connection) for name in ("deliveries", "default", "bulk")],
                     connection=connection).work(burst=True)


def test_the_engine_never_prepares_with_db_prepare_off(pooled):
    with pooled.app_context():
        raw = db.engine.raw_connection()
        try:
            assert raw.driver_connection.prepare_threshold is None
        finally:
            raw.close()


def test_the_key_paths_run_through_pgbouncer_in_transaction_mode(pooled, bouncer, monkeypatch):
    client = Client(pooled)
    shop = Shop(client, min_group_size=2, max_coupons=5000)
    # the tipping point: the second order makes every coupon active
    first = shop.coupons(1)
    assert first[0]["status"] == "pending"
    coupons = shop.coupons(REPEAT * 4)
    assert client.ok(client.get(f"coupons/{first[0]['code']}"))["status"] == "active"

    # redeem and validate, by code and by QR, with and without an Idempotency-Key
    redeemed = []
    for index, coupon in enumerate(coupons[:REPEAT]):
        client.ok(client.post("redemptions/validate", {"code": coupon["code"]}, key=shop.scanner))
        headers = {"Idempotency-Key": f"pgbouncer-{index}"}
        answer = client.ok(client.post("redemptions", {"qr": coupon["qr_payload"]}, key=shop.scanner,
                                       headers=headers), 201)
        again = client.ok(client.post("redemptions", {"qr": coupon["qr_payload"]}, key=shop.scanner,
                                      headers=headers), 201)
        assert again["id"] == answer["id"]
        redeemed.append(answer)
    for coupon in coupons[REPEAT:2 * REPEAT]:
        client.ok(shop.redeem(coupon["code"]), 201)
        assert client.post("redemptions", {"code": coupon["code"]}, key=shop.scanner).status_code == 409
    for miss in codes.generate_many(REPEAT):
        assert shop.redeem(miss).status_code == 404
    # reversal, void (revocations take a transaction-scoped advisory lock), the revocation list
    for redemption in redeemed:
        client.ok(client.post(f"redemptions/{redemption['id']}/reverse", {"reason": "wrong table"},
                              key=shop.manager))
    for coupon in coupons[2 * REPEAT:3 * REPEAT]:
        client.ok(client.post(f"coupons/{coupon['code']}/void", key=shop.manager))
    revoked = client.ok(client.get("revocations", key=shop.scanner))
    assert {coupon["code"] for coupon in coupons[2 * REPEAT:3 * REPEAT]} <= \
        {item["code"] for item in revoked["data"]}
    # an offline batch
    batch = [{"qr": coupon["qr_payload"], "store_id": shop.store["id"], "scanned_at": iso(now()),
              "device_id": "till-1", "nonce": f"n-{index}"}
             for index, coupon in enumerate(coupons[3 * REPEAT:])]
    items = client.ok(client.post("redemptions/batch", {"items": batch}, key=shop.scanner))["items"]
    assert [item["status"] for item in items] == ["accepted"] * len(batch)

    # many tills at once on one coupon: one wins, through two server connections
    contested = shop.coupon()["code"]
    replies, barrier = [], threading.Barrier(8)

    def till():
        http = pooled.test_client()
        barrier.wait(timeout=30)
        replies.append(http.post("/api/v1/redemptions", json={"code": contested},
                                 headers={"Authorization": f"Bearer {shop.scanner}"}))

    threads = [threading.Thread(target=till) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(reply.status_code for reply in replies) == [201] + [409] * 7

    # bulk issuance through RQ: COPY into a staging table, several chunks
    monkeypatch.setattr(bulk, "CHUNK", 300)
    job = client.ok(client.post(f"campaigns/{shop.campaign['id']}/coupons/bulk", {"count": 1000},
                                key=shop.manager), 202)
    # webhooks: a delivery drain (its claims and leases) to a local receiver
    with Receiver() as receiver:
        integration = client.ok(client.post(
            f"merchants/{shop.merchant['id']}/integrations",
            {"adapter": "webhook", "config": {"url": receiver.url + "/hook"},
             "events": ["coupon.redeemed"]}, key=shop.manager), 201)
        for coupon in shop.coupons(REPEAT):
            client.ok(shop.redeem(coupon["code"]), 201)
        _work_off(pooled)
        verifier = Webhook(integration["secret"])
        delivered = [verifier.verify(request.body, request.headers) for request in receiver.requests]
    assert len([payload for payload in delivered if payload["type"] == "coupon.redeemed"]) == REPEAT
    done = client.ok(client.get(f"jobs/{job['id']}", key=shop.manager))
    assert done["status"] == "succeeded" and done["done"] == 1000
    # the export streams through a server-side cursor, inside its transaction
    export = client.get(f"campaigns/{shop.campaign['id']}/coupons.csv", key=shop.manager)
    assert export.status_code == 200 and export.get_data(as_text=True).count("\n") > 1000
    # the event feed: positions numbered under a transaction-scoped advisory lock
    events = client.events()
    assert len([item for item in events if item["type"] == "coupon.redeemed"]) >= 3 * REPEAT
    client.ok(client.get(f"campaigns/{shop.campaign['id']}/stats", key=shop.manager))

    sent = [statement for statement in pooled.statements if SESSION_STATE.search(statement)]
    assert not sent, f"statements that keep state in the server session: {sent}"
    _nothing_left_on_the_server_connections(bouncer[0])


def _nothing_left_on_the_server_connections(url: str) -> None:
    """Hold both server connections at once (two open transactions) and look at each."""
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with contextlib.ExitStack() as stack:
        seen = []
        for _ in range(POOL_SIZE):
            connection = stack.enter_context(psycopg.connect(conninfo, prepare_threshold=None))
            backend = connection.execute("SELECT pg_backend_pid()").fetchone()[0]
            left = {
                "prepared statements": connection.execute(
                    "SELECT name FROM pg_prepared_statements").fetchall(),
                "temporary tables": connection.execute(
                    "SELECT relname FROM pg_class WHERE relpersistence = 't' "
                    "AND relnamespace = pg_my_temp_schema()").fetchall(),
                "settings": [row for row in connection.execute(
                    "SELECT name, setting FROM pg_settings WHERE source = 'session'").fetchall()
                    if row[0].lower() not in TRACKED],
                "advisory locks": connection.execute(
                    "SELECT objid FROM pg_locks WHERE locktype = 'advisory' "
                    "AND pid = pg_backend_pid()").fetchall(),
                "cursors": connection.execute("SELECT name FROM pg_cursors").fetchall(),
                "listening": connection.execute("SELECT pg_listening_channels()").fetchall(),
            }
            assert not any(left.values()), (backend, left)
            seen.append(backend)
        assert len(set(seen)) == POOL_SIZE, seen  # both server connections were looked at


def test_pgbouncer_before_1_21_breaks_psycopgs_prepared_statements(bouncer):
    """Why COUPONSVC_DB_PREPARE=off exists: with psycopg's default threshold, a statement
    run often enough is prepared on one server connection and looked for on another."""
    version = services.pgbouncer_version()
    if version is None or version >= (1, 21):
        pytest.skip(f"PgBouncer {version} carries prepared statements (max_prepared_statements)")
    conninfo = bouncer[0].replace("postgresql+psycopg://", "postgresql://")
    errors = []
    with contextlib.ExitStack() as stack:
        connections = [stack.enter_context(psycopg.connect(conninfo, autocommit=True))
                       for _ in range(POOL_SIZE + 1)]
        for _ in range(REPEAT):
            for connection in connections:
                try:
                    connection.execute("SELECT %s::int + 1", (1,)).fetchone()
                except psycopg.Error as error:
                    errors.append(type(error).__name__)
    assert errors, "prepared statements went through: is PgBouncer in transaction mode?"
