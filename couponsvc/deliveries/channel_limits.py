"""Keeping every integration under its channel's published rate limits.

An adapter declares what its channel accepts (`integrations.limits`: WeCom's robot 20
messages a minute, Feishu's bot 100 a minute and 5 a second, Weibo 30 posts an hour,
Discourse's admin API 60 requests a minute...) and how much of it a delivery takes. Before
each call the drain asks `admit`: within every limit, the delivery's use is counted and
it goes; over one, it is not sent and the drain learns how long until the window lets it
through. The drain then holds it and the integration's other due deliveries until then,
without counting an attempt (`batch.hold`), instead of sending them to collect 429s and
burning their retries; the relay sweep wakes the integration when they come due.

Counting uses `limits` (the library under the lookup rate limiter) with its moving-window
strategy, so no window of `seconds` ever holds more than `count`, not just each aligned
minute; in Redis when `REDIS_URL` is set (every worker of every machine shares one count
per integration), in the process otherwise (the embedded default has one process). Keys
are `couponsvc:LIMITER/channel/<integration>/<unit>/<count>/<seconds>/second`.
A limiter that cannot reach Redis lets deliveries through (the channel's own refusals are
still retried): an outage of the counter must not stop delivery.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence

from limits import RateLimitItemPerSecond
from limits.storage import RedisStorage, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from integrations.limits import RateLimit

from ..redis_client import redis_client

log = logging.getLogger(__name__)

NAMESPACE = "channel"
MIN_WAIT = 0.05  # seconds: the clock of the moving window is not the database's


class ChannelLimiter:
    def __init__(self, storage: Storage) -> None:
        self._windows = MovingWindowRateLimiter(storage)

    @classmethod
    def from_url(cls, redis_url: str | None) -> ChannelLimiter:
        """Counting in the Redis `redis_url` names (its Sentinels' primary for
        `redis+sentinel://`), or in this process without one."""
        if redis_url:
            client = redis_client(redis_url, socket_timeout=2, socket_connect_timeout=2)
            return cls(RedisStorage("redis://", connection_pool=client.connection_pool, key_prefix="couponsvc"))
        return cls(storage_from_string("memory://"))

    def admit(self, integration_id: str, limits: Sequence[RateLimit],
              use: Mapping[str, int]) -> float | None:
        """None when the delivery may go now (its use is counted); otherwise the seconds
        until every window it would overflow has room for it."""
        wanted = [(_item(limit), min(use.get(limit.unit, 0), limit.count), limit)
                  for limit in limits if use.get(limit.unit, 0) > 0]
        if not wanted:
            return None
        try:
            if len(wanted) == 1:  # one window: its atomic acquire is the test (one round trip)
                item, cost, limit = wanted[0]
                if self._windows.hit(item, NAMESPACE, integration_id, limit.unit, cost=cost):
                    return None
                return self._wait(item, integration_id, limit.unit)
            waits = [self._wait(item, integration_id, limit.unit) for item, cost, limit in wanted
                     if not self._windows.test(item, NAMESPACE, integration_id, limit.unit, cost=cost)]
            if waits:
                return max(waits)
            for item, cost, limit in wanted:
                self._windows.hit(item, NAMESPACE, integration_id, limit.unit, cost=cost)
        except Exception:  # the counter's storage is away (Redis down): deliver anyway
            log.warning("channel rate limits of %s could not be counted", integration_id, exc_info=True)
        return None

    def _wait(self, item: RateLimitItemPerSecond, integration_id: str, unit: str) -> float:
        reset, _ = self._windows.get_window_stats(item, NAMESPACE, integration_id, unit)
        return max(reset - time.time(), MIN_WAIT)

    def clear(self, integration_id: str, limits: Sequence[RateLimit]) -> None:
        for limit in limits:
            self._windows.clear(_item(limit), NAMESPACE, integration_id, limit.unit)


def _item(limit: RateLimit) -> RateLimitItemPerSecond:
    return RateLimitItemPerSecond(limit.count, limit.seconds)
