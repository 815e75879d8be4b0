"""Figures that are slow to count, kept for a minute; quick ones are never kept.

Counting a platform's thirty days of redemptions, or the coupons of a campaign that handed
out hundreds of thousands, reads that many index entries however well indexed: tens to
hundreds of milliseconds. A page asks again within the minute for the figures it counted
last, unless counting them took less than `SLOW` seconds (then they are counted on every
view and never stale). A page shows when kept figures were counted (`Counted.as_of`).
Kept per app and process (each gunicorn worker counts once a minute at most); an action
on a campaign forgets that campaign's figures (`forget`). The app setting
`ADMIN_FIGURES_SLOW` (seconds; None: keep nothing) replaces `SLOW`, for tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cachetools import TTLCache
from flask import current_app

from ..timeutil import utcnow

SLOW = 0.02  # seconds: figures that took longer to count are kept
KEPT_FOR = 60  # seconds
_EXTENSION = "couponsvc.admin_figures"


@dataclass(frozen=True)
class Counted:
    value: Any
    as_of: datetime | None  # when kept figures were counted; None: counted for this view


@dataclass
class _Kept:
    entries: TTLCache = field(default_factory=lambda: TTLCache(maxsize=512, ttl=KEPT_FOR))
    lock: threading.Lock = field(default_factory=threading.Lock)


def _kept() -> _Kept:
    kept = current_app.extensions.get(_EXTENSION)
    if kept is None:
        kept = current_app.extensions.setdefault(_EXTENSION, _Kept())
    return kept


def figures(key: Hashable, count: Callable[[], Any]) -> Counted:
    """`count()`, or what it answered under `key` less than KEPT_FOR seconds ago if that
    took longer than SLOW to count."""
    kept = _kept()
    with kept.lock:
        found = kept.entries.get(key)
    if found is not None:
        return found
    slow = current_app.config.get("ADMIN_FIGURES_SLOW", SLOW)
    started = time.perf_counter()
    value = count()
    if slow is not None and time.perf_counter() - started > slow:
        with kept.lock:
            kept.entries[key] = Counted(value, utcnow())
    return Counted(value, None)


def forget(*keys: Hashable) -> None:
    kept = _kept()
    with kept.lock:
        for key in keys:
            kept.entries.pop(key, None)
