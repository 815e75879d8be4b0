"""From events to deliveries: one row per (event, subscribed active integration).

Fan-out happens in the transaction that writes the events, so no event can exist
without its deliveries; the delivery jobs are enqueued only after the commit, and
the sweep (`sweep.py`) enqueues whatever Redis lost.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert, literal, select
from sqlalchemy.orm import Session

from ..after_commit import after_commit
from ..jobs import enqueue
from ..models import Delivery, Event, Integration, Subscription
from ..timeutil import utcnow

DELIVER = "workers.deliver.deliver"
QUEUE = "deliveries"


def fan_out(session: Session, event_seqs: Sequence[int]) -> list[int]:
    """Create the deliveries of these (just written) events; enqueue them after commit."""
    if not event_seqs:
        return []
    now = utcnow()
    targets = (
        select(Event.seq, Integration.id, Integration.merchant_id, literal("pending"), literal(0),
               literal(now, Delivery.next_attempt_at.type), literal(now, Delivery.created_at.type),
               literal(now, Delivery.updated_at.type))
        .join(Subscription, Subscription.event_type == Event.type)
        .join(Integration, (Integration.id == Subscription.integration_id)
              & (Integration.merchant_id == Event.merchant_id) & (Integration.status == "active"))
        .where(Event.seq.in_(list(event_seqs)))
    )
    ids = list(session.execute(
        insert(Delivery).from_select(
            ["event_seq", "integration_id", "merchant_id", "status", "attempts", "next_attempt_at",
             "created_at", "updated_at"], targets)
        .returning(Delivery.id)
    ).scalars())
    announce(session, ids)
    return ids


def announce(session: Session, delivery_ids: Sequence[int]) -> None:
    """Enqueue the first attempt of new deliveries once the transaction has committed."""
    if delivery_ids:
        after_commit(session, enqueue_first_attempts, list(delivery_ids))


def enqueue_first_attempts(delivery_ids: list[int]) -> None:
    for delivery_id in delivery_ids:
        enqueue(DELIVER, delivery_id, queue=QUEUE, job_id=job_id(delivery_id, 0), timeout=120)


def job_id(delivery_id: int, attempts: int) -> str:
    """Deterministic: the relay cannot enqueue the same attempt twice (RQ unique=True)."""
    return f"deliver-{delivery_id}-{attempts}"

