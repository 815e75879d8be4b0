"""One attempt at one delivery: the adapter call, timed, and what it means.

Only a 2xx (an `Outcome`) succeeds. A `RetryableError` is tried again after the
backoff of `schedule.py` (or the receiver's `Retry-After`, within bounds) until the
attempts run out, then the delivery is `dead`; a `PermanentError` is dead at once,
and one that says so (410 Gone) disables the integration, its delivery held with the
others (`couponsvc/outbox/hold.py`).

Each attempt is counted (`couponsvc_deliveries_total{adapter,status}`) and logged: the
delivery, event, adapter, result, HTTP status and duration, under the request id of the
job (`couponsvc/job_context.py`); never the body, the configuration or the error's text.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from integrations.adapter import Context, DeliveryError, Outcome, PermanentError, RetryableError
from integrations.adapter import Event as AdapterEvent

from ..adapters import adapter_named
from ..metrics.catalog import DELIVERIES
from ..metrics.switch import counting
from ..timeutil import utcnow
from .schedule import next_wait

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attempt:
    delivery_id: int
    number: int
    started_at: datetime
    duration_ms: int
    outcome: Outcome | None
    error: DeliveryError | None
    wait: float | None = None  # seconds until the next attempt, for a retry (jitter drawn once)

    @property
    def result(self) -> str:
        """succeeded | retry | dead | disabled"""
        if self.error is None:
            return "succeeded"
        if isinstance(self.error, PermanentError):
            return "disabled" if self.error.disable else "dead"
        return "retry" if self.wait is not None else "dead"

    def delivery_values(self, now: datetime) -> dict[str, Any]:
        """The delivery's columns after this attempt (every key always present)."""
        values = {"status": None, "succeeded_at": None, "next_attempt_at": None,
                  "last_status_code": None, "last_response": None, "last_error": None}
        if self.error is None:
            return values | {"status": "succeeded", "succeeded_at": now,
                             "last_status_code": self.outcome.status_code, "last_response": self.outcome.excerpt}
        values |= {"last_status_code": self.error.status_code, "last_response": self.error.excerpt,
                   "last_error": str(self.error)[:500]}
        if self.result == "retry":
            return values | {"status": "failed", "next_attempt_at": now + timedelta(seconds=self.wait)}
        if self.result == "disabled":  # 410 Gone: held with the rest, sent again if it is enabled
            return values | {"status": "held"}
        return values | {"status": "dead"}

    def log_row(self) -> dict[str, Any]:
        """The attempt's row in `delivery_attempts`."""
        source = self.outcome if self.error is None else self.error
        return {"delivery_id": self.delivery_id, "number": self.number, "started_at": self.started_at,
                "duration_ms": self.duration_ms, "status_code": source.status_code,
                "response": source.excerpt, "error": str(self.error)[:500] if self.error else None,
                "outcome": self.result}


def attempt(delivery_id: int, number: int, adapter_name: str, event: AdapterEvent, config: dict,
            context: Context) -> Attempt:
    started, clock = utcnow(), time.monotonic()
    try:
        outcome, error = call(adapter_name, event, config, context), None
    except DeliveryError as failure:
        outcome, error = None, failure
    wait = next_wait(number, error.retry_after) if isinstance(error, RetryableError) else None
    made = Attempt(delivery_id, number, started, int((time.monotonic() - clock) * 1000), outcome, error, wait)
    _tell(made, adapter_name, event)
    return made


def _tell(made: Attempt, adapter_name: str, event: AdapterEvent) -> None:
    if counting():
        DELIVERIES.labels(adapter_name, made.result).inc()
    source = made.outcome if made.error is None else made.error
    log.info("delivery %s attempt %d: %s", made.delivery_id, made.number, made.result, extra={
        "delivery_id": made.delivery_id, "attempt": made.number, "event_id": event.id,
        "event_type": event.type, "adapter": adapter_name, "result": made.result,
        "status_code": source.status_code, "duration_ms": made.duration_ms,
        "error": type(made.error).__name__ if made.error is not None else None})


def call(adapter_name: str, event: AdapterEvent, config: dict, context: Context) -> Outcome:
    adapter = adapter_named(adapter_name)
    if adapter is None:
        raise RetryableError(f"adapter {adapter_name!r} is not installed on this worker")
    try:
        return adapter.deliver(event, config, context)
    except DeliveryError:
        raise
    except Exception as error:  # an adapter's own bug must not lose the event
        raise RetryableError(f"adapter {adapter_name} failed: {type(error).__name__}: {error}") from error
