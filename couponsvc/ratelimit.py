"""Failed coupon look-ups are rate limited per API key and per client address.

Only failures count (`coupon_not_found`, `invalid_code`, `invalid_qr`): a till
that scans real coupons all day is never slowed. Once a key or an address has used
up its budget of misses (30 and 60 a minute by default), every look-up of that key
or address answers `429 rate_limited` with `Retry-After` until the window resets,
hits included: otherwise someone guessing over budget would still be told which of
their guesses are real coupons.
The client address is `request.remote_addr`, which `COUPONSVC_TRUSTED_PROXIES`
(werkzeug's ProxyFix, set up in `create_app`) takes from `X-Forwarded-For`; an IPv6
client's budget is its /64's (`address_identity.py`: it may take a new address from it
for every guess).
Counting uses `limits`, the rate-limiting library under Flask-Limiter, with its
Redis storage when `REDIS_URL` is set and memory otherwise, and a fixed window. The
Redis storage is given the client of `redis_client.py` (Sentinel's primary for a
`redis+sentinel://` URL), so every web node counts in the same place and reads what it
counted from the primary, never from a replica that may lag.
Flask-Limiter itself is not installed into the app: it hooks every request
(before, after, teardown) to evaluate route limits, which cost about 5% of a
redemption's CPU for limits this service never declares through it.

Where a budget used up is known: on PostgreSQL, in `lookup_blocks` (`lookup_blocks.py`),
which the failure that uses it up writes and which the redeem's one statement reads
itself, so a redeem asks neither Redis nor the database anything more; on SQLite (one
process, the embedded default), from the counts, read before each look-up.
"""

from __future__ import annotations

import math
import threading
import time
from contextlib import contextmanager
from datetime import UTC, datetime

from flask import Flask, current_app, request
from limits import parse
from limits.storage import RedisStorage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from . import lookup_blocks
from .address_identity import address_identity
from .domain_error import DomainError
from .extensions import db
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


def _buckets(key_id: str | None, address: str | None = None):
    per_key, per_address = current_app.extensions["couponsvc.lookup_limits"]
    buckets = [(per_address, "addr", address_identity(address or client_address()))]
    if key_id is not None:
        buckets.insert(0, (per_key, "key", key_id))
    return buckets


def client_address() -> str:
    return request.remote_addr or "unknown"


def budget_subjects(key_id: str | None, address: str) -> tuple[str, ...]:
    """The budgets of a request from `address` (`client_address()`) as `lookup_blocks`
    names them, for a statement that reads the table itself (`guarded_lookup(...,
    in_statement=True)`); () when not limiting or where budgets are not kept there (SQLite)."""
    if not (current_app.config["RATELIMIT_ENABLED"] and _mirrored()):
        return ()
    return tuple(lookup_blocks.subject(kind, identity)
                 for _item, kind, identity in _buckets(key_id, address))


@contextmanager
def guarded_lookup(key_id: str | None, *, in_statement: bool = False):
    """Refuse a look-up (429) while its key or address is over budget; count a failed one.

    A look-up asks whether a budget is used up before it runs. `in_statement`: the look-up
    is the redeem, whose statement refuses while a budget is used up (`budget_subjects`,
    PostgreSQL) and whose domain function, when it failed, asks and raises
    `lookup_blocks.BudgetUsedUp`: nothing is asked here.
    """
    enabled = current_app.config["RATELIMIT_ENABLED"]
    if enabled and not (in_statement and _mirrored()):
        _refuse_over_budget(key_id)
    try:
        yield
    except lookup_blocks.BudgetUsedUp as error:
        _counted_refusal(error.kind)
        raise
    except DomainError as error:
        if enabled and error.code in FAILED_LOOKUPS:
            _count(key_id, 1)
        raise


def _mirrored() -> bool:
    """Whether budgets used up are written to `lookup_blocks` and read from there."""
    mirrored = current_app.extensions.get("couponsvc.lookup_blocks")
    if mirrored is None:
        mirrored = current_app.extensions["couponsvc.lookup_blocks"] = db.engine.dialect.name == "postgresql"
    return mirrored


def _refuse_over_budget(key_id: str | None) -> None:
    buckets = _buckets(key_id)
    if _mirrored():
        _refuse_blocked(buckets)
        return
    strategy = current_app.extensions["couponsvc.limiter"]
    try:
        counts = _counts(strategy.storage, buckets)
    except Exception:  # a limiter that cannot reach Redis must not stop the till
        current_app.logger.warning("rate limit storage unavailable", exc_info=True)
        return
    for (item, kind, identity), count in zip(buckets, counts, strict=True):
        if count >= item.amount:
            _refuse(kind, _retry_after(strategy, item, kind, identity))


def _refuse_blocked(buckets) -> None:
    """429 while `lookup_blocks` holds one of these budgets (the key's first)."""
    names = [lookup_blocks.subject(kind, identity) for _item, kind, identity in buckets]
    try:
        lookup_blocks.refuse_if_used_up(db.session, names, datetime.now(UTC))
    except lookup_blocks.BudgetUsedUp as error:
        _counted_refusal(error.kind)
        raise


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


def _count(key_id: str | None, failures: int) -> None:
    """Count failed look-ups in every budget of the request; a budget they use up is
    written to `lookup_blocks` (PostgreSQL), and one they go beyond is 429 at once."""
    strategy = current_app.extensions["couponsvc.limiter"]
    for item, kind, identity in _buckets(key_id):
        key = item.key_for("lookup", kind, identity)
        try:
            count = strategy.storage.incr(key, item.get_expiry(), amount=failures)
        except Exception:  # a rate limiter that cannot reach Redis must not stop the till
            current_app.logger.warning("rate limit storage unavailable", exc_info=True)
            continue
        if count < item.amount:
            continue
        retry_after = _retry_after(strategy, item, kind, identity)
        if _mirrored():
            _block(kind, identity, retry_after)
        if count > item.amount:
            _refuse(kind, retry_after)


def _retry_after(strategy, item, kind: str, identity: str) -> int:
    """Seconds until the budget's window resets."""
    try:
        reset = strategy.get_window_stats(item, "lookup", kind, identity).reset_time
    except Exception:
        current_app.logger.warning("rate limit storage unavailable", exc_info=True)
        reset = time.time() + item.get_expiry()
    return max(1, math.ceil(reset - time.time()))


def _block(kind: str, identity: str, seconds: int) -> None:
    """Write a budget used up, in a transaction of its own: the request may roll back."""
    with db.engine.begin() as connection:
        lookup_blocks.block(connection, lookup_blocks.subject(kind, identity),
                            datetime.fromtimestamp(time.time() + seconds, UTC))


def _refuse(kind: str, retry_after: int) -> None:
    _counted_refusal(kind)
    raise lookup_blocks.BudgetUsedUp(kind, retry_after)


def _counted_refusal(kind: str) -> None:
    if counting():  # couponsvc_lookups_rate_limited_total{kind}: key | address
        LOOKUPS_RATE_LIMITED.labels("address" if kind == "addr" else kind).inc()


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
        if self.enabled and failures:
            _count(self.key_id, failures)
