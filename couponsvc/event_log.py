"""Reading the outbox in commit order: `GET /events?after=` never skips an event.

`assign_positions` numbers the events that are certainly committed, oldest
first, one sequencer at a time (a transaction-scoped advisory lock). On SQLite a
single writer commits in `seq` order, so `position` is simply `seq`.
"""

from __future__ import annotations

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from .models import Event

SEQUENCER_LOCK = 0x636F75706F6E  # any constant shared by every process of this service


def assign_positions(session: Session) -> None:
    if session.get_bind().dialect.name != "postgresql":
        session.execute(update(Event).where(Event.position.is_(None)).values(position=Event.seq)
                        .execution_options(synchronize_session=False))
        return
    if not session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": SEQUENCER_LOCK}).scalar():
        return  # another sequencer is numbering right now; its positions will be visible shortly
    session.execute(text(
        """
        UPDATE events SET position = numbered.position
        FROM (
            SELECT seq, nextval('events_position_seq') AS position
            FROM (SELECT seq FROM events
                  WHERE position IS NULL AND txid < pg_snapshot_xmin(pg_current_snapshot())
                  ORDER BY seq) AS ready
        ) AS numbered
        WHERE events.seq = numbered.seq
        """
    ))


def read_events(session: Session, *, merchant_id: str | None, after: int | None,
                type_: str | None, limit: int) -> tuple[list[Event], str | None]:
    query = select(Event).where(Event.position.is_not(None))
    if merchant_id is not None:
        query = query.where(Event.merchant_id == merchant_id)
    if type_:
        query = query.where(Event.type == type_)
    if after is not None:
        query = query.where(Event.position > after)
    rows = list(session.execute(query.order_by(Event.position).limit(limit + 1)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (str(rows[-1].position) if more else None)


def unpositioned_count(session: Session) -> int:
    return session.execute(select(func.count()).where(Event.position.is_(None))).scalar_one()
