"""Opaque, time-ordered identifiers: `cmp_01JD8Y3K2Q9V7M4T6X0A5B8C1D`.

A prefix, then a ULID (`python-ulid`): 48 bits of milliseconds then 80 random bits,
Crockford base32, 26 characters, so ids cannot be guessed and sort in creation order,
which cursor pagination relies on. Within one process they are strictly increasing,
also within one millisecond and across threads: the generator's monotonic policy
continues a millisecond's ids from the previous one by adding 1 to its random part
(as the ULID specification describes), and `new_id` takes one lock around both
reading the clock and drawing the id, with a clock that never goes back (the library
reads its clock outside its lock, so two threads could otherwise pass each other, and
an NTP step back would restart the order). Processes draw independently: across
processes, ids made in the same millisecond are in random order. A forked child
(gunicorn, RQ's work horse) starts a generator of its own, so it cannot continue its
parent's last id exactly as a sibling does. The random bits come from
`randomness.take`, a page of `os.urandom` at a time (a draw per id let go of the GIL).
"""

from __future__ import annotations

import os
import threading
import time

from ulid import ULIDGenerator

from . import randomness

_lock = threading.Lock()
_last_ms = 0


def _clock() -> int:
    """Milliseconds since the epoch, never less than the last reading (called under _lock)."""
    global _last_ms
    _last_ms = max(_last_ms, time.time_ns() // 1_000_000)
    return _last_ms


def _new_generator() -> ULIDGenerator:
    # StrictMonotonicPolicy (the default): in one millisecond, each id is the previous
    # plus 1; it raises rather than wrap when the 80 bits run out (~2**79 ids on average).
    return ULIDGenerator(clock=_clock, randomness=_random_part)


def _random_part(_timestamp: int) -> bytes:
    return randomness.take(10)  # 80 bits


_generator = _new_generator()


def _after_fork_in_child() -> None:
    global _lock, _generator
    _lock = threading.Lock()
    _generator = _new_generator()


os.register_at_fork(after_in_child=_after_fork_in_child)


def new_id(prefix: str) -> str:
    with _lock:
        value = _generator.generate()
    return f"{prefix}_{value}"
