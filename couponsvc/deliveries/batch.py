"""The database side of a drain: claim a batch of due deliveries, record their attempts.

Core statements on the session's connection (same transaction): the ORM's execution
layer cost more CPU than the statements themselves, a drain's round being six of them.

Claiming is one UPDATE of up to `limit` due deliveries of one integration, oldest
first, skipping rows another drain has locked (PostgreSQL's `FOR UPDATE SKIP
LOCKED`; SQLite has one writer). It counts the attempt and sets a lease; a drain
killed mid-batch leaves the lease to run out, and the sweep wakes the integration
again. The claimed attempt number is the claimer's token: recording checks it, so a
late answer from an expired lease cannot overwrite a newer attempt's. `release` gives back
claims a drain did not call (out of time), `hold` those its channel's rate limit stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from integrations.adapter import Event as AdapterEvent

from ..models import Delivery, DeliveryAttempt, Event
from .attempt import Attempt

_deliveries = Delivery.__table__


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    number: int  # the attempt this claim makes (the delivery's `attempts` after the claim)
    event: AdapterEvent


def claim(session: Session, integration_id: str, limit: int, now: datetime, lease_until: datetime) -> list[Claimed]:
    due = (
        select(Delivery.id)
        .where(Delivery.integration_id == integration_id, Delivery.is_open(),
               Delivery.next_attempt_at <= now,
               or_(Delivery.lease_until.is_(None), Delivery.lease_until < now))
        .order_by(Delivery.id).limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = session.connection().execute(
        update(_deliveries).where(_deliveries.c.id.in_(due.scalar_subquery()))
        .values(attempts=_deliveries.c.attempts + 1, lease_until=lease_until, updated_at=now)
        .returning(_deliveries.c.id, _deliveries.c.attempts, _deliveries.c.event_seq)
    ).all()
    if not rows:
        return []
    events = _events(session, [row.event_seq for row in rows])
    return [Claimed(row.id, row.attempts, events[row.event_seq]) for row in sorted(rows, key=lambda r: r.id)]


def _events(session: Session, seqs: Sequence[int]) -> dict[int, AdapterEvent]:
    found = session.connection().execute(
        select(Event.seq, Event.id, Event.type, Event.created_at, Event.data, Event.merchant_id, Event.coupon_seq)
        .where(Event.seq.in_(set(seqs)))
    ).all()
    return {row.seq: AdapterEvent(id=row.id, type=row.type, created_at=row.created_at, data=row.data,
                                  merchant_id=row.merchant_id, coupon_seq=row.coupon_seq) for row in found}


def record(session: Session, attempts: Sequence[Attempt], now: datetime) -> list[Attempt]:
    """Store these attempts' outcomes; the ones recorded (still ours to record)."""
    if not attempts:
        return []
    current = dict(session.connection().execute(
        select(Delivery.id, Delivery.attempts)
        .where(Delivery.id.in_([a.delivery_id for a in attempts])).with_for_update()
    ).all())
    ours = [a for a in attempts if current.get(a.delivery_id) == a.number]
    if not ours:
        return []
    session.connection().execute(
        update(_deliveries)
        .where(_deliveries.c.id == bindparam("b_id"), _deliveries.c.attempts == bindparam("b_number"))
        .values(status=bindparam("b_status"), lease_until=None, updated_at=now,
                succeeded_at=func.coalesce(bindparam("b_succeeded_at", type_=_deliveries.c.succeeded_at.type),
                                           _deliveries.c.succeeded_at),
                next_attempt_at=func.coalesce(
                    bindparam("b_next_attempt_at", type_=_deliveries.c.next_attempt_at.type),
                    _deliveries.c.next_attempt_at),
                last_status_code=bindparam("b_last_status_code"), last_response=bindparam("b_last_response"),
                last_error=bindparam("b_last_error")),
        [{"b_id": a.delivery_id, "b_number": a.number,
          **{f"b_{key}": value for key, value in a.delivery_values(now).items()}} for a in ours],
    )
    session.connection().execute(insert(DeliveryAttempt.__table__), [a.log_row() for a in ours])
    return ours


def release(session: Session, claimed: Sequence[Claimed]) -> None:
    """Give back claims this drain will not call after all (it ran out of time)."""
    if not claimed:
        return
    session.connection().execute(
        update(_deliveries)
        .where(_deliveries.c.id == bindparam("b_id"), _deliveries.c.attempts == bindparam("b_number"))
        .values(attempts=_deliveries.c.attempts - 1, lease_until=None),
        [{"b_id": c.delivery_id, "b_number": c.number} for c in claimed],
    )


def hold(session: Session, integration_id: str, claimed: Sequence[Claimed], until: datetime,
         now: datetime) -> None:
    """The channel's rate limit is reached: give back these claims uncounted (they were not
    attempted) and make them, and every other delivery of the integration due before
    `until` and not leased, due at `until`, when the limit's window lets them through."""
    if claimed:
        session.connection().execute(
            update(_deliveries)
            .where(_deliveries.c.id == bindparam("b_id"), _deliveries.c.attempts == bindparam("b_number"))
            .values(attempts=_deliveries.c.attempts - 1, lease_until=None, next_attempt_at=until,
                    updated_at=now),
            [{"b_id": c.delivery_id, "b_number": c.number} for c in claimed],
        )
    session.connection().execute(
        update(_deliveries)
        .where(_deliveries.c.integration_id == integration_id, Delivery.is_open(),
               _deliveries.c.next_attempt_at < until,
               or_(_deliveries.c.lease_until.is_(None), _deliveries.c.lease_until < now))
        .values(next_attempt_at=until, updated_at=now)
    )
