"""Switching an integration off and on without losing an event.

While an integration is disabled (by its merchant, by a 410 Gone, by days of
failures: `couponsvc/deliveries/health.py`) its deliveries are `held`: the fan-out
writes new ones `held` (`fanout.py`), and `disable` turns its open ones (`pending`,
`failed`) `held`. `enable` turns them `pending`, due now, and wakes the integration:
the drain sends them oldest first, as it always does.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from ..models import Delivery, Integration
from ..timeutil import utcnow
from .emit import emit
from .fanout import announce

_DELIVERIES = Delivery.__table__


def disable(session: Session, integration: Integration, reason: str, now: datetime) -> None:
    """Switch the integration off, say so (`integration.disabled`), hold its open deliveries."""
    if integration.status == "disabled":
        return
    integration.status, integration.disabled_reason, integration.disabled_at = "disabled", reason, now
    session.flush()
    d = _DELIVERIES.c
    session.execute(
        update(_DELIVERIES)
        .where(d.integration_id == integration.id, Delivery.is_open())
        .values(status="held", lease_until=None, updated_at=now)
    )
    emit(session, "integration.disabled", merchant_id=integration.merchant_id, data={
        "integration": {"id": integration.id, "adapter": integration.adapter,
                        "disabled_at": now.isoformat(), "reason": reason},
    })


def enable(session: Session, integration: Integration) -> None:
    """Switch the integration on again: what was held (or failing) is due now, in order."""
    if integration.status == "active":
        return
    now = utcnow()
    integration.status, integration.disabled_reason = "active", None
    integration.disabled_at = integration.failing_since = None
    session.flush()
    d = _DELIVERIES.c
    session.execute(
        update(_DELIVERIES)
        .where(d.integration_id == integration.id, d.status == "held")
        .values(status="pending", next_attempt_at=now, updated_at=now)
    )
    session.execute(  # and what was failing is tried now too, in its turn
        update(_DELIVERIES)
        .where(d.integration_id == integration.id, Delivery.is_open(), d.next_attempt_at > now)
        .values(next_attempt_at=now, updated_at=now)
    )
    announce(session, [integration.id])
