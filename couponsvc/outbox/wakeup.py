"""Waking an integration's drain: at most one drain job per integration at a time.

Deliveries are not queued one job each. A commit that creates deliveries (or a sweep
that finds some due) *wakes* their integrations; waking sets the integration's
"dirty" flag and, only when no drain holds the integration's lock, takes the lock and
queues one drain job (`workers.deliver.drain`). The drain clears the flag, claims
what is due in batches, and before it stops checks the flag once more, atomically
with releasing the lock, so a delivery committed while it worked is never left
behind. The same flag-and-lock protocol runs on Redis (Lua, so several web and
worker processes on several machines agree) or, without `REDIS_URL`, in this
process.

The lock expires (`LOCK_TTL`, extended by the drain while it works), so a drain
killed outright blocks its integration only until then; the relay sweep wakes every
integration with due deliveries each `COUPONSVC_SWEEP_INTERVAL`, which also repairs
a flag or a job lost with Redis. One integration is drained by one job at a time:
a slow ERP occupies one worker, never all of them.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
from collections.abc import Iterable

from ..jobs import enqueue, runner
from ..tasks import DRAIN

log = logging.getLogger(__name__)

LOCK_TTL = 20.0  # seconds; a working drain extends it (to cover its call in flight)
JOB_TIMEOUT = DRAIN.timeout  # the drain's work budget, plus one call in flight, plus recording
FLAG_TTL = JOB_TIMEOUT  # a flag must outlive any drain that should see it; a stale one costs a round

_WAKE = """
redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
"""
_KEEP = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0
"""
_FINISH = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""


class RedisDrains:
    """The flag and lock in Redis: `couponsvc:drain:<integration>:lock|dirty`."""

    def __init__(self, redis) -> None:
        self.redis = redis
        self._wake = redis.register_script(_WAKE)
        self._keep = redis.register_script(_KEEP)
        self._finish = redis.register_script(_FINISH)
        self._release = redis.register_script(_RELEASE)

    @staticmethod
    def _keys(integration_id: str) -> list[str]:
        return [f"couponsvc:drain:{integration_id}:lock", f"couponsvc:drain:{integration_id}:dirty"]

    def wake(self, integration_id: str) -> str | None:
        """Flag the integration; a new lock token when a drain must be started."""
        token = secrets.token_hex(8)
        taken = self._wake(keys=self._keys(integration_id), args=[token, _ms(LOCK_TTL), _ms(FLAG_TTL)])
        return token if taken else None

    def begin(self, integration_id: str) -> None:
        """The drain is about to look: what was flagged until now, it will see."""
        self.redis.delete(self._keys(integration_id)[1])

    def keep(self, integration_id: str, token: str, ttl: float = LOCK_TTL) -> bool:
        """Extend the lock; False when another drain holds it (this one must stop)."""
        return bool(self._keep(keys=self._keys(integration_id)[:1], args=[token, _ms(ttl)]))

    def finish(self, integration_id: str, token: str) -> bool:
        """Release the lock and stop, unless flagged since `begin` (then drain again)."""
        return bool(self._finish(keys=self._keys(integration_id), args=[token]))

    def release(self, integration_id: str, token: str) -> None:
        self._release(keys=self._keys(integration_id)[:1], args=[token])


class LocalDrains:
    """The same protocol for the in-process runner (no Redis): one process, one lock."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._holders: dict[str, str] = {}
        self._dirty: set[str] = set()

    def wake(self, integration_id: str) -> str | None:
        with self._mutex:
            self._dirty.add(integration_id)
            if integration_id in self._holders:
                return None
            token = self._holders[integration_id] = secrets.token_hex(8)
            return token

    def begin(self, integration_id: str) -> None:
        with self._mutex:
            self._dirty.discard(integration_id)

    def keep(self, integration_id: str, token: str, ttl: float = LOCK_TTL) -> bool:
        with self._mutex:
            holder = self._holders.setdefault(integration_id, token)
            return holder == token

    def finish(self, integration_id: str, token: str) -> bool:
        with self._mutex:
            if integration_id in self._dirty:
                return False
            if self._holders.get(integration_id) == token:
                del self._holders[integration_id]
            return True

    def release(self, integration_id: str, token: str) -> None:
        with self._mutex:
            if self._holders.get(integration_id) == token:
                del self._holders[integration_id]


def drains(app=None) -> RedisDrains | LocalDrains:
    """This process's drain state, kept beside its job runner (`jobs.runner`)."""
    jobs = runner(app)
    found = jobs.app.extensions.get("couponsvc.drains")
    if found is None:  # setdefault: two threads asking first share the one that lands
        found = jobs.app.extensions.setdefault(
            "couponsvc.drains", LocalDrains() if jobs.in_process else RedisDrains(jobs.redis()))
    return found


def wake(integration_ids: Iterable[str]) -> int:
    """Wake these integrations' drains; the number of drain jobs this started."""
    started = 0
    state = drains()
    for integration_id in dict.fromkeys(integration_ids):
        token = state.wake(integration_id)
        if token is None:
            continue  # a drain holds the lock and will see the flag
        try:
            enqueue(DRAIN, integration_id, token, job_id=f"drain-{integration_id}-{token}")
        except Exception:
            # Redis failed between the two calls: give the lock back if we can; if not
            # it expires, and the sweep wakes the integration again.
            log.warning("could not queue the drain of %s", integration_id, exc_info=True)
            with contextlib.suppress(Exception):
                state.release(integration_id, token)
            raise
        started += 1
    return started


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
