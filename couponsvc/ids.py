"""Opaque, time-ordered identifiers: `cmp_01JD8Y3K2Q9V7M4T6X0A5B8C1D`.

A prefix, then a ULID (https://github.com/ulid/spec): 48 bits of milliseconds then 80
random bits, Crockford base32, 26 characters, so ids cannot be guessed and sort in
creation order, which cursor pagination relies on. Within one process they are strictly
increasing, also within one millisecond and across threads: a millisecond's next id
continues from the previous one by adding 1 to its random part (the specification's
monotonic generation; past the last of the 80 bits, ~2**79 ids in a millisecond on
average, it raises rather than wrap), all under one lock, with a clock that never goes
back (an NTP step back would otherwise restart the order). Processes draw
independently: across processes, ids made in the same millisecond are in random order.
A forked child (gunicorn, RQ's work horse) starts afresh, so it cannot continue its
parent's last id exactly as a sibling does. The random bits come from
`randomness.take`, a page of `os.urandom` at a time (a draw per id let go of the GIL).

Drawn and written here rather than by `python-ulid` (whose generator this replaced, and
whose writing the tests hold this to): its generator and its `str()` of a ULID, loops in
Python, cost 48,000 instructions an id, and a redeem makes two (docs/benchmarks.md). The
26 characters are the millisecond's 10 (written once a millisecond) and the random
part's 16, written 10 bits at a time from a table of every pair of symbols.
"""

from __future__ import annotations

import os
import threading
import time

from . import randomness

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32
_PAIRS = [first + second for first in ALPHABET for second in ALPHABET]  # 10 bits each
_RANDOM_MAX = (1 << 80) - 1
_RANDOM_SHIFTS = range(70, -1, -10)  # the random part's 80 bits, 10 at a time


class _State:
    """The last id drawn: its millisecond (as written) and its random part."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ms = -1
        self.ms_text = ""
        self.random = 0


_state = _State()


def new_id(prefix: str) -> str:
    with _state.lock:
        state = _state
        ms = max(state.ms, time.time_ns() // 1_000_000)  # a clock that never goes back
        if ms == state.ms:
            if state.random == _RANDOM_MAX:
                raise OverflowError("no id left in this millisecond")
            state.random += 1
        else:
            state.ms, state.ms_text = ms, _time_text(ms)
            state.random = int.from_bytes(randomness.take(10), "big")
        random, ms_text = state.random, state.ms_text
    return f"{prefix}_{ms_text}{_random_text(random)}"


def _time_text(ms: int) -> str:
    """A millisecond's 48 bits as the 10 symbols that begin its ULIDs (2 zero bits first)."""
    if not 0 <= ms < 1 << 48:
        raise OverflowError("the time does not fit a ULID")
    return "".join([ALPHABET[(ms >> shift) & 31] for shift in range(45, -1, -5)])


def _random_text(random: int) -> str:
    """The 80 random bits as the 16 symbols that end a ULID."""
    return "".join([_PAIRS[(random >> shift) & 1023] for shift in _RANDOM_SHIFTS])


def _after_fork_in_child() -> None:
    global _state
    _state = _State()


os.register_at_fork(after_in_child=_after_fork_in_child)
