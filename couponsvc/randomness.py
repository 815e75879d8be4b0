"""Random bytes for ids and request ids, drawn from the operating system a page at a time.

`os.urandom` lets go of the GIL for its system call. A request draws three times (its
request id and two ids), and under gunicorn's threads each letting go hands the GIL to
another thread: a thread switch that cost more than the draw (docs/benchmarks.md, "The
redeem's thread switches"). `take(n)` hands out slices of a 4 KiB draw instead, each
thread from its own, so threads never share bytes and need no lock. The bytes are the
operating system's, as `os.urandom` gives them; none is handed out twice. A forked child
(gunicorn's workers, RQ's work horse) starts with nothing drawn, so it never hands out
what its parent also holds.
"""

from __future__ import annotations

import os
import threading

PAGE = 4096

_local = threading.local()


def take(n: int) -> bytes:
    """`n` random bytes (n <= PAGE), as `os.urandom(n)` would give them."""
    page = getattr(_local, "page", b"")
    at = getattr(_local, "at", 0)
    if at + n > len(page):
        page, at = os.urandom(PAGE), 0
        _local.page = page
    _local.at = at + n
    return page[at:at + n]


def _after_fork_in_child() -> None:
    global _local
    _local = threading.local()


os.register_at_fork(after_in_child=_after_fork_in_child)
