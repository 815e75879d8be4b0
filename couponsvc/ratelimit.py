"""Failed coupon look-ups are rate limited per API key and per client address.

Only failures count (`coupon_not_found`, `invalid_code`, `invalid_qr`): a till
that scans real coupons all day is never slowed. Once a key or an address has used
up its budget of misses (30 and 60 a minute by default), every look-up of that key
or address answers `429 rate_limited` with `Retry-After` until the window resets,
hits included: otherwise someone guessing over budget would still be told which of
their guesses are real coupons.
The client address is `request.remote_addr`, which `COUPONSVC_TRUSTED_PROXIES`
(werkzeug's ProxyFix, set up in `create_app`) takes from `X-Forwarded-For`.
Counting uses `limits`, the rate-limiting library under Flask-Limiter, with its
Redis storage when `REDIS_URL` is set and memory otherwise, and a fixed window. The
Redis storage is given the client of `redis_client.py` (Sentinel's primary for a
`redis+sentinel://` URL), so every web node counts in the same place and reads what it
counted from the primary, never from a replica that may lag.
Flask-Limiter itself is not installed into the app: it hooks every request
(before, after, teardown) to evaluate route limits, which cost about 5% of a
redemption's CPU for limits this service never declares through it.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from contextlib import contextmanager

from flask import Flask, current_app, request
from limits import parse
from limits.storage import RedisStorage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .domain_error import DomainError, say_n
from .metrics.catalog import LOOKUPS_RATE_LIMITED
from .metrics.switch import counting
from .redis_client import redis_client

FAILED_LOOKUPS = frozenset({"coupon_not_found", "invalid_code", "invalid_qr"})


def init_app(app: Flask) -> None:
    uri = app.config.get("RATELIMIT_STORAGE_URI") or app.config.get("REDIS_URL") or "memory://"
    if uri.startswith(("redis://", "rediss://", "redis+sentinel://", "redis+unix://", "unix://")):
        client = redis_client(uri, socket_timeout=0.5, socket_connect_timeout=0.5)
        storage = RedisStorage("redis://", connection_pool=client.connection_pool,
                               key_prefix="couponsvc")
    else:
        storage = storage_from_string(uri, key_prefix="couponsvc")
    app.extensions["couponsvc.limiter"] = FixedWindowRateLimiter(storage)
    app.extensions["couponsvc.lookup_connections"] = threading.local()  # see _mget
    app.extensions["couponsvc.lookup_limits"] = (
        parse(app.config["LOOKUP_LIMIT_PER_KEY"]),
        parse(app.config["LOOKUP_LIMIT_PER_ADDRESS"]),
    )


def _buckets(key_id: str | None):
    per_key, per_address = current_app.extensions["couponsvc.lookup_limits"]
    buckets = [(per_address, "addr", client_address())]
    if key_id is not None:
        buckets.insert(0, (per_key, "key", key_id))
    return buckets


def client_address() -> str:
    return request.remote_addr or "unknown"


@contextmanager
def guarded_lookup(key_id: str | None):
    """Refuse a look-up (429) while its key or address is over budget; count a failed one.

    A look-up asks the limiter's storage once before it runs (one MGET on Redis),
    and once more only when it fails.
    """
    enabled = current_app.config["RATELIMIT_ENABLED"]
    if enabled:
        _refuse_over_budget(key_id)
    try:
        yield
    except DomainError as error:
        if error.code in FAILED_LOOKUPS and enabled:
            _count_failure(key_id)
        raise


def _refuse_over_budget(key_id: str | None) -> None:
    strategy = current_app.extensions["couponsvc.limiter"]
    buckets = _buckets(key_id)
    try:
        counts = _counts(strategy.storage, buckets)
    except Exception:  # a limiter that cannot reach Redis must not stop the till
        current_app.logger.warning("rate limit storage unavailable", exc_info=True)
        return
    for (item, kind, identity), count in zip(buckets, counts, strict=True):
        if count >= item.amount:
            _refuse(strategy, item, kind, identity)


def _counts(storage, buckets) -> list[int]:
    """The failures counted in each bucket's current window."""
    keys = [item.key_for("lookup", kind, identity) for item, kind, identity in buckets]
    if isinstance(storage, RedisStorage):
        values = _mget(storage.get_connection(True), [storage.prefixed_key(key) for key in keys])
        return [int(value or 0) for value in values]
    return [storage.get(key) for key in keys]


def _mget(client: Redis, keys: list[str]) -> list[bytes | None]:
    """`client.mget(keys)` on a connection of this thread's own, without the client's
    pool, retries and reply callbacks, which cost more than a third of a redeem's Redis
    budget read (the pool checks each connection it hands out with a poll). A
    connection that fails is dropped: sent once more, connected anew, on a connection
    error (Redis restarted), as the client would; never reused after anything else.
    `connect()` comes first (nothing to do once connected): a Sentinel connection asks the
    Sentinels for the primary there, while `send_command` alone would connect to its
    default address (localhost:6379)."""
    local = current_app.extensions["couponsvc.lookup_connections"]
    connection = getattr(local, "connection", None)
    if connection is None:
        connection = local.connection = client.connection_pool.make_connection()
    try:
        try:
            connection.connect()
            connection.send_command("MGET", *keys)
            return connection.read_response()
        except (RedisConnectionError, RedisTimeoutError):
            connection.disconnect()
            connection.connect()
            connection.send_command("MGET", *keys)
            return connection.read_response()
    except BaseException:
        connection.disconnect()  # nothing half read is left for the next request
        raise


def _count_failure(key_id: str | None) -> None:
    strategy = current_app.extensions["couponsvc.limiter"]
    for item, kind, identity in _buckets(key_id):
        if not _safe(strategy.hit, item, "lookup", kind, identity):
            _refuse(strategy, item, kind, identity)


def _refuse(strategy, item, kind: str, identity: str) -> None:
    if counting():  # couponsvc_lookups_rate_limited_total{kind}: key | address
        LOOKUPS_RATE_LIMITED.labels("address" if kind == "addr" else kind).inc()
    stats = strategy.get_window_stats(item, "lookup", kind, identity)
    retry_after = max(1, math.ceil(stats.reset_time - time.time()))
    detail = (say_n("too many failed look-ups with this key; retry in %(num)d second",
                    "too many failed look-ups with this key; retry in %(num)d seconds", retry_after)
              if kind == "key" else
              say_n("too many failed look-ups from this address; retry in %(num)d second",
                    "too many failed look-ups from this address; retry in %(num)d seconds", retry_after))
    raise DomainError("rate_limited", detail, retry_after=retry_after)


def _safe(call, *args) -> bool:
    """A rate limiter that cannot reach Redis must not stop the till: fail open."""
    try:
        return call(*args)
    except Exception:
        current_app.logger.warning("rate limit storage unavailable", exc_info=True)
        return True


class LookupBudget:
    """The same budget for a request that looks many coupons up at once (the offline batch,
    `redeem/batch.py`, which knows no Flask): refused while over budget, like a single
    look-up; then its failures are counted together, and when they are more than the
    budget has left the whole request is `429` (the counts are kept), so a batch cannot
    tell which of more guesses than the budget allows are real coupons."""

    def __init__(self, key_id: str | None) -> None:
        self.key_id = key_id
        self.enabled = current_app.config["RATELIMIT_ENABLED"]

    def refuse_over_budget(self) -> None:
        if self.enabled:
            _refuse_over_budget(self.key_id)

    def count_failures(self, failures: int) -> None:
        if not (self.enabled and failures):
            return
        strategy = current_app.extensions["couponsvc.limiter"]
        for item, kind, identity in _buckets(self.key_id):
            if not _safe(functools.partial(strategy.hit, cost=failures), item, "lookup", kind, identity):
                _refuse(strategy, item, kind, identity)
