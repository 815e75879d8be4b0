"""From events to deliveries: one row per (event, subscribed integration of its merchant).

The rule is stated once, as SQLAlchemy Core, in `delivery_rows`: the Python fan-out
(`fan_out`, after `emit`) inserts from it, and the PostgreSQL redeem statement
(`couponsvc/redeem/write.py`) puts `insert_deliveries(...)` in its chain of
data-modifying CTEs. An active integration's delivery is `pending`; a disabled one's
is `held`, kept until the integration is enabled again (`hold.py`).

Fan-out happens in the transaction that writes the events, so no event exists without
its deliveries; the integrations that got pending ones are woken only after the
commit (`wakeup.py`), and the relay sweep wakes whatever Redis lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Insert, Select, case, insert, literal, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement, FromClause

from ..after_commit import after_commit
from ..models import Delivery, Event, Integration, Subscription
from ..timeutil import utcnow
from .wakeup import wake

_DELIVERIES = Delivery.__table__
_INTEGRATIONS = Integration.__table__
_SUBSCRIPTIONS = Subscription.__table__
COLUMNS = ("event_seq", "integration_id", "merchant_id", "status", "attempts", "next_attempt_at",
           "created_at", "updated_at")


def delivery_rows(events: FromClause, now: datetime | ColumnElement) -> Select:
    """The deliveries of `events` (any selectable with columns `seq`, `type`,
    `merchant_id`, `created_at`), as a SELECT of `COLUMNS`: one row per integration of the
    event's merchant subscribed to its type, `pending` when the integration is active,
    `held` when it is disabled. `now` is a datetime or a SQL expression (a bind parameter).

    A delivery's `created_at` is its event's: on PostgreSQL both tables are partitioned
    by month of that time (migration 0015), so a delivery lives in its event's month,
    `(event_seq, integration_id, created_at)` is unique as `(event_seq, integration_id)`
    was, and retention drops a month's events and deliveries together."""
    if isinstance(now, datetime):
        now = literal(now, _DELIVERIES.c.next_attempt_at.type)
    i, s = _INTEGRATIONS.c, _SUBSCRIPTIONS.c
    return (
        select(events.c.seq, i.id, i.merchant_id,
               case((i.status == "active", "pending"), else_="held"), literal(0), now,
               events.c.created_at, now)
        .select_from(events)
        .join(_SUBSCRIPTIONS, s.event_type == events.c.type)
        .join(_INTEGRATIONS, (i.id == s.integration_id) & (i.merchant_id == events.c.merchant_id))
    )


def insert_deliveries(events: FromClause, now: datetime | ColumnElement) -> Insert:
    """INSERT the deliveries of `events` (see `delivery_rows`), RETURNING each row's
    `integration_id` and `status`: wake the integrations of the `pending` ones."""
    return (insert(_DELIVERIES).from_select(list(COLUMNS), delivery_rows(events, now))
            .returning(_DELIVERIES.c.integration_id, _DELIVERIES.c.status))


def fan_out(session: Session, event_seqs: Sequence[int]) -> list[str]:
    """Create the deliveries of these (just written) events; wake their integrations after
    commit. The integrations that got pending deliveries."""
    if not event_seqs:
        return []
    events = select(Event.seq, Event.type, Event.merchant_id, Event.created_at) \
        .where(Event.seq.in_(list(event_seqs))).subquery("new_events")
    return fan_out_from(session, events, utcnow())


def fan_out_from(session: Session, events: FromClause, now: datetime) -> list[str]:
    """`fan_out` for the events of a selectable (columns `seq`, `type`, `merchant_id`,
    `created_at`)."""
    written = session.execute(insert_deliveries(events, now)).all()
    integration_ids = sorted({row.integration_id for row in written if row.status == "pending"})
    announce(session, integration_ids)
    return integration_ids


def announce(session: Session, integration_ids: Sequence[str]) -> None:
    """Wake these integrations' drains once the transaction has committed."""
    if integration_ids:
        after_commit(session, wake, sorted(set(integration_ids)))
