"""One attempt at one delivery: claim it, call the adapter, record what happened.

The database, not RQ, decides what is due. A worker claims a delivery with a
compare-and-set on its `attempts` count and a lease (the integration's timeout plus
a margin); a worker killed mid-call leaves the lease to expire, and the sweep then
enqueues the delivery again. Only the claimer's own attempt count can record an
outcome, so a late answer from an expired lease cannot overwrite a newer one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from integrations.adapter import Context, DeliveryError, Outcome, PermanentError, RetryableError
from integrations.adapter import Event as AdapterEvent

from ..adapters import adapter_named, http_session
from ..events import emit
from ..models import Delivery, DeliveryAttempt, Event, Integration
from ..timeutil import utcnow
from .fanout import job_id
from .schedule import next_wait

LEASE_MARGIN = timedelta(seconds=15)
SHORT_WAIT = 120  # retries sooner than this are queued at once (RQ scheduler); later ones swept


@dataclass(frozen=True)
class Result:
    outcome: str  # succeeded | retry | dead | disabled | skipped
    wait: float | None = None


def attempt(session: Session, delivery_id: int) -> Result:
    now = utcnow()
    found = session.execute(
        select(Delivery, Integration).join(Integration, Integration.id == Delivery.integration_id)
        .where(Delivery.id == delivery_id)
    ).first()
    if found is None:
        return Result("skipped")
    delivery, integration = found
    if not _due(delivery, integration, now):
        session.rollback()
        return Result("skipped")
    attempts = delivery.attempts + 1
    claimed = session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.attempts == delivery.attempts,
               Delivery.status.in_(Delivery.OPEN))
        .values(attempts=attempts, updated_at=now,
                lease_until=now + timedelta(seconds=integration.timeout) + LEASE_MARGIN)
        .execution_options(synchronize_session=False)
    ).rowcount
    # Read everything the call needs before the commit expires the loaded objects.
    event = _adapter_event(session.get(Event, delivery.event_seq))
    integration_id, config = integration.id, integration.config
    adapter_name, timeout = integration.adapter, integration.timeout
    session.commit()
    if not claimed:
        return Result("skipped")

    started, clock = utcnow(), time.monotonic()
    try:
        outcome = _call(adapter_name, event, config, timeout)
        error = None
    except DeliveryError as failure:
        outcome, error = None, failure
    duration_ms = int((time.monotonic() - clock) * 1000)
    return _record(session, delivery_id, integration_id, attempts, started, duration_ms, outcome, error)


def _due(delivery: Delivery, integration: Integration, now: datetime) -> bool:
    return (delivery.status in Delivery.OPEN and integration.status == "active"
            and delivery.next_attempt_at <= now + timedelta(seconds=1)
            and (delivery.lease_until is None or delivery.lease_until < now))


def _call(adapter_name: str, event: AdapterEvent, config: dict, timeout: float) -> Outcome:
    adapter = adapter_named(adapter_name)
    if adapter is None:
        raise RetryableError(f"adapter {adapter_name!r} is not installed on this worker")
    context = Context(timeout=timeout,
                      allow_private_targets=current_app.config["ALLOW_PRIVATE_WEBHOOK_TARGETS"],
                      session=http_session())
    try:
        return adapter.deliver(event, config, context)
    except DeliveryError:
        raise
    except Exception as error:  # an adapter's own bug must not lose the event
        raise RetryableError(f"adapter {adapter_name} failed: {type(error).__name__}: {error}") from error


def _adapter_event(event: Event) -> AdapterEvent:
    return AdapterEvent(id=event.id, type=event.type, created_at=event.created_at, data=event.data,
                        merchant_id=event.merchant_id, coupon_seq=event.coupon_seq)


def _record(session: Session, delivery_id: int, integration_id: str, attempts: int, started: datetime,
            duration_ms: int, outcome: Outcome | None, error: DeliveryError | None) -> Result:
    now = utcnow()
    values = {"lease_until": None, "updated_at": now}
    if error is None:
        result = Result("succeeded")
        values |= {"status": "succeeded", "succeeded_at": now, "last_status_code": outcome.status_code,
                   "last_response": outcome.excerpt, "last_error": None}
    else:
        values |= {"last_status_code": error.status_code, "last_error": str(error)[:500],
                   "last_response": error.excerpt}
        wait = None
        if isinstance(error, RetryableError):
            wait = next_wait(attempts, error.retry_after)
        if isinstance(error, PermanentError) and error.disable:
            result = Result("disabled")
            values |= {"status": "dead"}
        elif wait is None:
            result = Result("dead")
            values |= {"status": "dead"}
        else:
            result = Result("retry", wait)
            values |= {"status": "failed", "next_attempt_at": now + timedelta(seconds=wait)}
    recorded = session.execute(
        update(Delivery).where(Delivery.id == delivery_id, Delivery.attempts == attempts)
        .values(**values).execution_options(synchronize_session=False)
    ).rowcount
    if not recorded:  # our lease expired and another worker took the delivery over
        session.rollback()
        return Result("skipped")
    session.execute(insert(DeliveryAttempt).values(
        delivery_id=delivery_id, number=attempts, started_at=started, duration_ms=duration_ms,
        status_code=(outcome.status_code if outcome else error.status_code),
        response=(outcome.excerpt if outcome else error.excerpt), error=str(error)[:500] if error else None,
        outcome=result.outcome,
    ))
    _update_integration(session, integration_id, result, error, now)
    session.commit()
    if result.outcome == "retry" and result.wait <= SHORT_WAIT:
        from ..jobs import enqueue

        enqueue("workers.deliver.deliver", delivery_id, queue="deliveries",
                job_id=job_id(delivery_id, attempts), timeout=120, delay=result.wait)
    return result


def _update_integration(session: Session, integration_id: str, result: Result,
                        error: DeliveryError | None, now: datetime) -> None:
    if result.outcome == "succeeded":  # no write, and no lock, unless it had been failing
        session.execute(update(Integration).where(Integration.id == integration_id,
                                                  Integration.failing_since.is_not(None))
                        .values(failing_since=None).execution_options(synchronize_session=False))
        return
    integration = session.get(Integration, integration_id, with_for_update=True)
    integration.failing_since = integration.failing_since or now
    limit = timedelta(seconds=current_app.config["DISABLE_FAILING_AFTER"])
    if result.outcome == "disabled":
        disable(session, integration, f"the receiver answered {error.status_code}: gone", now)
    elif now - integration.failing_since >= limit and integration.status == "active":
        disable(session, integration, f"every delivery has failed since "
                                      f"{integration.failing_since.isoformat()}", now)


def disable(session: Session, integration: Integration, reason: str, now: datetime) -> None:
    if integration.status == "disabled":
        return
    integration.status, integration.disabled_reason, integration.disabled_at = "disabled", reason, now
    emit(session, "integration.disabled", merchant_id=integration.merchant_id, data={
        "integration": {"id": integration.id, "adapter": integration.adapter,
                        "disabled_at": now.isoformat(), "reason": reason},
    })

