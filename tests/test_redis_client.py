"""REDIS_URL through Redis Sentinel: the URL's form, the client, and the app on it.

A private redis-server and one Sentinel watching it run on free local ports (no failover
here: tests/multihost/ kills a primary). The app's failed-look-up budget, its RQ queues
and its readiness check all reach Redis through `redis+sentinel://`.
"""

from __future__ import annotations

import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
import redis
from rq import Queue

from couponsvc import codes
from couponsvc.config import ConfigError, load_settings
from couponsvc.extensions import db
from couponsvc.jobs import enqueue, runner
from couponsvc.redis_client import SentinelURL, parse_sentinel_url, redis_client
from couponsvc.tasks import RELAY_SWEEP
from tests.conftest import _empty_tables, make_app
from tests.deliveries.processes import REDIS_SERVER, start_redis, stop
from tests.factories import Client, Shop, problem
from tests.racing import free_port, wait_until

SERVICE = "couponsvc-test"


# ---------------------------------------------------------------------- the URL's form --
@pytest.mark.parametrize(("url", "parsed"), [
    ("redis+sentinel://10.0.0.1:26379/couponsvc",
     SentinelURL((("10.0.0.1", 26379),), "couponsvc")),
    ("redis+sentinel://a:1,b:2,c/couponsvc/3",
     SentinelURL((("a", 1), ("b", 2), ("c", 26379)), "couponsvc", 3)),
    ("redis+sentinel://:s%40cret@a:1/svc/",
     SentinelURL((("a", 1),), "svc", 0, None, "s@cret")),
    ("redis+sentinel://user:pw@[::1]:26380,[fd00::2]/svc/15",
     SentinelURL((("::1", 26380), ("fd00::2", 26379)), "svc", 15, "user", "pw")),
])
def test_a_sentinel_url_names_the_sentinels_the_service_and_the_database(url, parsed):
    assert parse_sentinel_url(url) == parsed


@pytest.mark.parametrize("url", [
    "redis+sentinel:///couponsvc",  # no Sentinel
    "redis+sentinel://a:1",  # no service
    "redis+sentinel://a:1/svc/zero",  # the database is a number
    "redis+sentinel://a:1/svc/0/more",
    "redis+sentinel://a:port/svc",
    "redis+sentinel://a:70000/svc",
    "redis+sentinel://:1/svc",
])
def test_a_malformed_sentinel_url_stops_the_boot_naming_redis_url(url):
    with pytest.raises(ConfigError, match="^REDIS_URL: "):
        load_settings({"REDIS_URL": url}, tempfile.gettempdir())


def test_a_plain_redis_url_is_taken_as_it_is_and_an_empty_one_means_no_redis():
    folder = tempfile.gettempdir()
    assert load_settings({"REDIS_URL": "redis://r:6379/2"}, folder)["REDIS_URL"] == "redis://r:6379/2"
    assert load_settings({"REDIS_URL": ""}, folder)["REDIS_URL"] is None
    assert load_settings({"COUPONSVC_DB_PREPARE": "off"}, folder)["DB_PREPARE"] is False
    assert load_settings({}, folder)["DB_PREPARE"] is True


# ----------------------------------------------------------------- a Sentinel, for real --
@pytest.fixture(scope="module")
def sentinel():
    """(Redis URL of the primary, Sentinel URL of it on database 7)."""
    folder = Path(tempfile.mkdtemp(prefix="couponsvc-sentinel-"))
    url, primary = start_redis(folder)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    sentinel_port = free_port()
    config = folder / "sentinel.conf"
    config.write_text(f"port {sentinel_port}\nbind 127.0.0.1\ndaemonize no\ndir {folder}\n"
                      f"sentinel monitor {SERVICE} 127.0.0.1 {port} 1\n")
    log = open(folder / "sentinel.log", "ab")  # noqa: SIM115 - the child process owns it
    try:
        process = subprocess.Popen([REDIS_SERVER, str(config), "--sentinel"], stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    finally:
        log.close()
    try:
        asking = redis.Redis(port=sentinel_port, socket_timeout=1, socket_connect_timeout=1)
        wait_until(lambda: _answers(asking), "the Sentinel to know its primary", 30)
        yield f"redis://127.0.0.1:{port}/7", f"redis+sentinel://127.0.0.1:{sentinel_port}/{SERVICE}/7"
    finally:
        stop(process)
        stop(primary, graceful=False)


def _answers(asking: redis.Redis) -> bool:
    try:
        return asking.execute_command("SENTINEL", "get-master-addr-by-name", SERVICE) is not None
    except redis.RedisError:
        return False


def test_the_client_reaches_the_primary_the_sentinel_names_on_the_url_database(sentinel):
    direct_url, sentinel_url = sentinel
    client = redis_client(sentinel_url, socket_timeout=2, socket_connect_timeout=1)
    client.set("couponsvc:probe", "through sentinel")
    assert redis.Redis.from_url(direct_url).get("couponsvc:probe") == b"through sentinel"
    assert client.connection_pool.connection_kwargs["db"] == 7


class _Interrupted(Exception):
    pass


def test_a_read_interrupted_on_a_sentinel_connection_does_not_answer_the_next_command(sentinel):
    """A signal (an RQ stop, a job timeout) raising inside a blocking read: the reply still
    to come must not be read as the next command's answer."""
    client = redis_client(sentinel[1], socket_timeout=5, socket_connect_timeout=1)
    assert client.ping() is True  # one pooled connection, used again below

    def interrupt(signum, frame):
        raise _Interrupted

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 0.2)
    try:
        with pytest.raises(_Interrupted):
            client.blpop(["couponsvc:nothing"], timeout=1)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    # at once, as RQ's worker registers its death when told to stop in its dequeue
    with client.pipeline() as pipeline:
        pipeline.sadd("couponsvc:set", "x").hset("couponsvc:hash", "a", "1").expire("couponsvc:hash", 60)
        assert pipeline.execute() == [1, 1, True]
    assert client.hget("couponsvc:hash", "a") == b"1"
    assert client.ping() is True


def test_the_app_counts_failed_look_ups_and_queues_jobs_through_the_sentinel(sentinel, migrated,
                                                                            instance_path):
    direct_url, sentinel_url = sentinel
    direct = redis.Redis.from_url(direct_url)
    direct.flushdb()
    app = make_app(migrated, instance_path, REDIS_URL=sentinel_url,
                   RATELIMIT_STORAGE_URI=sentinel_url, LOOKUP_LIMIT_PER_ADDRESS="3/hour")
    with app.app_context():
        _empty_tables()
    try:
        client = Client(app)
        shop = Shop(client)
        real = shop.coupon()["code"]
        for _ in range(3):
            problem(shop.redeem(codes.generate()), 404, "coupon_not_found")
        problem(client.post("redemptions/validate", {"code": real}, key=shop.scanner), 429,
                "rate_limited")
        assert any(key.startswith(b"couponsvc") for key in direct.keys("*lookup*"))
        with app.app_context():
            assert enqueue(RELAY_SWEEP, job_id="sentinel-probe") is True
            assert enqueue(RELAY_SWEEP, job_id="sentinel-probe") is False  # unique, as RQ keeps it
            assert "sentinel-probe" in Queue("default", connection=runner(app).redis()).job_ids
        assert "sentinel-probe" in Queue("default", connection=direct).job_ids
        ready = client.get("/readyz", key=None)
        assert ready.status_code == 200 and ready.get_json()["checks"]["queue"] == "ok"
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        direct.flushdb()
