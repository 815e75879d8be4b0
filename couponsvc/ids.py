"""Opaque, time-ordered identifiers: `cmp_01JD8Y3K2Q9V7M4T6X0A5B8C1D`.

48 bits of milliseconds then 80 random bits, Crockford base32, so ids sort in
creation order (cursor pagination relies on it) and cannot be guessed.
"""

from __future__ import annotations

import os
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(prefix: str) -> str:
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"
