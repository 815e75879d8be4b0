"""Failed coupon look-ups are rate limited per API key and per client address.

Only failures count (`coupon_not_found`, `invalid_code`, `invalid_qr`): a till
that scans real coupons all day is never slowed, while someone guessing codes
is stopped after a few dozen misses with `429 rate_limited` and `Retry-After`.
Storage is Flask-Limiter's (Redis when `REDIS_URL` is set, memory otherwise);
the strategy is a fixed window, the cheapest to check on every scan.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager

from flask import Flask, current_app, request
from limits import parse

from .errors import DomainError
from .extensions import limiter

FAILED_LOOKUPS = frozenset({"coupon_not_found", "invalid_code", "invalid_qr"})


def init_app(app: Flask) -> None:
    redis_url = app.config.get("REDIS_URL")
    app.config.setdefault("RATELIMIT_STORAGE_URI", redis_url or "memory://")
    app.config.setdefault("RATELIMIT_STRATEGY", "fixed-window")
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "couponsvc")
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    limiter.init_app(app)
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
    """Refuse when the limit is used up; count the look-up if it fails."""
    check_lookups(key_id)
    try:
        yield
    except DomainError as error:
        if error.code in FAILED_LOOKUPS:
            count_failed_lookup(key_id)
        raise


def check_lookups(key_id: str | None) -> None:
    """Refuse with 429 when this key or address has used up its failed look-ups."""
    if not current_app.config["RATELIMIT_ENABLED"]:
        return
    strategy = limiter.limiter
    for item, kind, identity in _buckets(key_id):
        if not _safe(strategy.test, item, "lookup", kind, identity):
            _refuse(strategy, item, kind, identity)


def count_failed_lookup(key_id: str | None) -> None:
    if not current_app.config["RATELIMIT_ENABLED"]:
        return
    strategy = limiter.limiter
    for item, kind, identity in _buckets(key_id):
        _safe(strategy.hit, item, "lookup", kind, identity)


def _refuse(strategy, item, kind: str, identity: str) -> None:
    stats = strategy.get_window_stats(item, "lookup", kind, identity)
    retry_after = max(1, math.ceil(stats.reset_time - time.time()))
    raise DomainError("rate_limited",
                      f"too many failed look-ups from this {'key' if kind == 'key' else 'address'}; "
                      f"retry in {retry_after} s",
                      retry_after=retry_after)


def _safe(call, *args) -> bool:
    """A rate limiter that cannot reach Redis must not stop the till: fail open."""
    try:
        return call(*args)
    except Exception:
        current_app.logger.warning("rate limit storage unavailable", exc_info=True)
        return True
