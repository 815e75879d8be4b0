"""The outbox, in order, for catch-up after an outage."""

from __future__ import annotations

from flask.views import MethodView

from ..errors import DomainError
from ..extensions import db
from ..outbox.feed import UnknownEvent, position_of, read_events
from ..principal import MANAGER, PLATFORM
from .bearer import current_principal, requires
from .blueprint import Blueprint
from .pagination import integer_cursor, number_token
from .schemas.common import page_schema
from .schemas.events import EventListArgs, EventOut

blp = Blueprint("events", __name__, url_prefix="/api/v1", description="Events (the outbox)")


@blp.route("/events")
class Events(MethodView):
    @requires(PLATFORM, MANAGER)
    @blp.arguments(EventListArgs(), location="query")
    @blp.response(200, page_schema(EventOut, "EventPage"))
    def get(self, args):
        """Every event, in commit order; pass `next` back as `after` to resume, or an event's
        id (`evt_…`, a webhook's `webhook-id` or `webhook-cursor`) to resume after that event.
        Only reads: events are numbered by the relay sweep (`couponsvc/outbox/positions.py`)."""
        principal = current_principal()
        merchant_id = principal.merchant_scope
        after, not_yet = _after(args["after"], merchant_id)
        rows, last = read_events(db.session, merchant_id=merchant_id, after=after, type_=args.get("type"),
                                 limit=args["limit"], not_yet=not_yet)
        return {"data": rows, "next": None if last is None else number_token("events", last)}


def _after(raw: str | None, merchant_id: str | None) -> tuple[int | None, bool]:
    """The position to read after, and whether it is an event not numbered yet."""
    if raw is None:
        return None, False
    if not raw.startswith("evt_"):
        return integer_cursor(raw, "events"), False
    try:
        position = position_of(db.session, raw, merchant_id=merchant_id)
    except UnknownEvent:
        raise DomainError("validation_error", "after names no event this key can see",
                          errors={"after": ["No such event."]}) from None
    return position, position is None
