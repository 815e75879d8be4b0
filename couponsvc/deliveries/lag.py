"""How far behind the deliveries are: the age of the oldest delivery that is due.

A delivery is due from its `next_attempt_at` while it is open (pending, or failed and
waiting for its retry); one being sent (leased) is still due. Held deliveries (their
integration is disabled) wait for a person, not for the workers, and are not lag. One
probe of `ix_deliveries_due` (status, next_attempt_at) per open status, however long
the backlog: cheap enough for every scrape of /metrics.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..models import Delivery


def oldest_due(session: Session, now: datetime) -> datetime | None:
    """The `next_attempt_at` of the oldest open delivery due at `now`; None when none is."""
    firsts = [
        select(func.min(Delivery.next_attempt_at))
        .where(Delivery.status == status, Delivery.next_attempt_at <= now)
        .scalar_subquery()
        for status in Delivery.OPEN
    ]
    found = [moment for moment in session.execute(select(*firsts)).one() if moment is not None]
    return min(found, default=None)


def lag_seconds(session: Session, now: datetime) -> float:
    """Seconds since the oldest due delivery came due; 0 when none waits."""
    oldest = oldest_due(session, now)
    return 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
