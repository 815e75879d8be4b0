"""Reading the outbox in commit order (`GET /events`): numbered events only, by `position`.

Nothing here writes; `positions.py` numbers the events, in the relay sweep.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Event


def read_events(session: Session, *, merchant_id: str | None, after: int | None,
                type_: str | None, limit: int) -> tuple[list[Event], str | None]:
    """A page of events after position `after`, and the cursor of the next page (None at the end)."""
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
