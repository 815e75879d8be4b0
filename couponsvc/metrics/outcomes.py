"""`@counted`: count a domain decision, by outcome, where the decision is made.

The decorated function's return is `success`; a `DomainError` it raises is its code
(`coupon_already_redeemed`, `sold_out`, ...); anything else, `error`. With a histogram,
its time is observed too. A refusal inside `tentative()` is not counted: it is made, and
counted, again. Off (`switch.py`), the call goes straight through. Each
outcome's child of the counter is kept (`labels()` looks it up under a lock each time).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import wraps
from typing import Any

from prometheus_client import Counter, Histogram

from ..domain_error import DomainError
from .switch import counting


def counted(counter: Counter, success: str, seconds: Histogram | None = None) -> Callable:
    children: dict[str, Any] = {}

    def child(outcome: str):
        found = children.get(outcome)
        if found is None:
            found = children[outcome] = counter.labels(outcome)
        return found

    def decorate(fn: Callable) -> Callable:
        @wraps(fn)
        def counted_call(*args: Any, **kwargs: Any) -> Any:
            if not counting():
                return fn(*args, **kwargs)
            started = time.perf_counter()
            outcome: str | None = "error"
            try:
                result = fn(*args, **kwargs)
                outcome = success
                return result
            except DomainError as error:
                outcome = None if _TENTATIVE.get() else error.code
                raise
            finally:
                if outcome is not None:
                    child(outcome).inc()
                    if seconds is not None:
                        seconds.observe(time.perf_counter() - started)

        return counted_call

    return decorate


_TENTATIVE: ContextVar[bool] = ContextVar("couponsvc_tentative", default=False)


@contextmanager
def tentative() -> Iterator[None]:
    """Decisions made inside are not counted when refused: the caller makes the same
    decision again, which counts it (the redeem's lane hands a refusal on to Flask)."""
    token = _TENTATIVE.set(True)
    try:
        yield
    finally:
        _TENTATIVE.reset(token)
