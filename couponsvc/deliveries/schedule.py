"""When to try a failed delivery again (Standard Webhooks: exponential backoff with jitter).

The first retry comes after about 5 s; the waits grow to 12 h; the last attempt is
about 52 h after the first, after which the delivery is dead (a person can retry it).
A `Retry-After` from the receiver (429, 503) is honoured when longer, up to 6 h.
"""

from __future__ import annotations

import random

# seconds before attempt 2, 3, ...: 13 attempts in all over ~52 hours
WAITS = (5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 43200, 43200, 43200)
MAX_ATTEMPTS = len(WAITS) + 1
JITTER = 0.2
MAX_RETRY_AFTER = 6 * 3600


def next_wait(attempts: int, retry_after: float | None = None, rng: random.Random | None = None) -> float | None:
    """Seconds to wait after `attempts` failed attempts, or None when it is time to give up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    base = WAITS[attempts - 1]
    wait = base * (1 + (rng or random).uniform(-JITTER, JITTER))
    if retry_after is not None:
        wait = max(wait, min(float(retry_after), MAX_RETRY_AFTER))
    return wait
