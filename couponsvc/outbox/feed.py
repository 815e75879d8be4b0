"""Reading the outbox in commit order (`GET /events`): numbered events only, by `position`.

Nothing here writes; `positions.py` numbers the events, in the relay sweep. A reader
resumes after a position (what a page's cursor holds) or after an event it was sent
(its id, a webhook's `webhook-id`): an event not numbered yet comes after every numbered
one, since positions are given in commit order, so nothing is after it yet.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Event


class UnknownEvent(LookupError):
    """No event with this id that the reader may see."""


def position_of(session: Session, event_id: str, *, merchant_id: str | None) -> int | None:
    """The position of the event `event_id` (of `merchant_id`, unless None: every merchant),
    None when it is not numbered yet; `UnknownEvent` when there is none the reader may see."""
    query = select(Event.position).where(Event.id == event_id)
    if merchant_id is not None:
        query = query.where(Event.merchant_id == merchant_id)
    found = session.execute(query).first()
    if found is None:
        raise UnknownEvent(event_id)
    return found.position


def read_events(session: Session, *, merchant_id: str | None, after: int | None,
                type_: str | None, limit: int, not_yet: bool = False) -> tuple[list[Event], int | None]:
    """A page of events after position `after`, and the position to resume after (None at
    the end). `not_yet`: resuming after an event not numbered yet, so the page is empty."""
    if not_yet:
        return [], None
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
    return rows, (rows[-1].position if more else None)
