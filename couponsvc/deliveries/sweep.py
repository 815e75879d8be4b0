"""The relay's sweep: wake every integration that has deliveries due and unclaimed.

It is what makes delivery survive Redis and worker deaths, and what sends retries:
a drain job lost when Redis restarted empty, a delivery written while Redis was
down, a worker killed mid-call (its lease runs out), a retry seconds or hours away
all come down to a delivery that is due in the database with no live lease. Waking
is idempotent (`couponsvc/outbox/wakeup.py`): an integration whose drain is running is only flagged.
"""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ..models import Delivery, Integration
from ..outbox.wakeup import wake
from ..timeutil import utcnow


def due_integrations(session: Session) -> list[str]:
    """Active integrations with a delivery due and not leased: one probe of the partial
    index `ix_deliveries_open_due` per active integration, however long the backlog."""
    now = utcnow()
    due = (
        select(Delivery.id)
        .where(Delivery.integration_id == Integration.id, Delivery.is_open(),
               Delivery.next_attempt_at <= now,
               or_(Delivery.lease_until.is_(None), Delivery.lease_until < now))
        .exists()
    )
    found = list(session.execute(
        select(Integration.id).where(Integration.status == "active", due).order_by(Integration.id)
    ).scalars())
    session.rollback()
    return found


def wake_due(session: Session) -> int:
    """Wake the integrations with due deliveries; the number of drains this started."""
    return wake(due_integrations(session))
