"""From events to deliveries: one row per (event, subscribed active integration).

Fan-out happens in the transaction that writes the events, so no event can exist
without its deliveries; their integrations are woken only after the commit
(`wakeup.py`), and the sweep (`sweep.py`) wakes whatever Redis lost.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert, literal, select
from sqlalchemy.orm import Session

from ..after_commit import after_commit
from ..models import Delivery, Event, Integration, Subscription
from ..timeutil import utcnow
from .wakeup import wake


def fan_out(session: Session, event_seqs: Sequence[int]) -> list[str]:
    """Create the deliveries of these (just written) events; wake their integrations after
    commit. The integrations that got deliveries."""
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
    integration_ids = list(session.execute(
        insert(Delivery).from_select(
            ["event_seq", "integration_id", "merchant_id", "status", "attempts", "next_attempt_at",
             "created_at", "updated_at"], targets)
        .returning(Delivery.integration_id)
    ).scalars())
    announce(session, integration_ids)
    return integration_ids


def announce(session: Session, integration_ids: Sequence[str]) -> None:
    """Wake these integrations' drains once the transaction has committed."""
    if integration_ids:
        after_commit(session, wake, sorted(set(integration_ids)))
