"""Numbering events in commit order, so that `GET /events?after=` never skips one.

`events.seq` is taken at INSERT, but PostgreSQL transactions commit in another order
than they took their sequence numbers: a reader paging by `seq` could step past an
event whose transaction commits a moment later. `assign_positions` gives a `position`
only to events whose transaction is older than every transaction still running
(`txid < pg_snapshot_xmin(pg_current_snapshot())`), oldest first, one sequencer at a
time (a transaction-scoped advisory lock). On SQLite a single writer commits in `seq`
order, so `position` is simply `seq`.

It runs in the relay sweep (`workers/relay.py`, every `COUPONSVC_SWEEP_INTERVAL`
seconds, on a worker or on the serving process's ticker without `REDIS_URL`), never in
a request: `GET /events` only reads, and can be served by a read replica.
"""

from __future__ import annotations

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from ..models import Event

SEQUENCER_LOCK = 0x636F75706F6E  # any constant shared by every process of this service


def assign_positions(session: Session) -> None:
    """Number the events certainly committed; the caller commits.

    The numbers are drawn once, in a materialized CTE: as a subquery, a nested loop that
    scanned it again for each row of `events` drew a number per pair of rows (gaps of
    the square of the batch), which PostgreSQL chose when its statistics showed few rows
    waiting. `events` is partitioned by month of `created_at` (migration 0015): the
    UPDATE finds each row by `(seq, created_at)` among the rows still without a position,
    so each partition is probed through its small `ix_events_unpositioned`."""
    if session.get_bind().dialect.name != "postgresql":
        session.execute(update(Event).where(Event.position.is_(None)).values(position=Event.seq)
                        .execution_options(synchronize_session=False))
        return
    if not session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": SEQUENCER_LOCK}).scalar():
        return  # another sequencer is numbering right now; its positions will be visible shortly
    session.execute(text(
        """
        WITH numbered AS MATERIALIZED (
            SELECT seq, created_at, nextval('events_position_seq') AS position
            FROM (SELECT seq, created_at FROM events
                  WHERE position IS NULL AND txid < pg_snapshot_xmin(pg_current_snapshot())
                  ORDER BY seq) AS ready
        )
        UPDATE events SET position = numbered.position
        FROM numbered
        WHERE events.seq = numbered.seq AND events.created_at = numbered.created_at
          AND events.position IS NULL
        """
    ))


def unpositioned_count(session: Session) -> int:
    return session.execute(select(func.count()).where(Event.position.is_(None))).scalar_one()
