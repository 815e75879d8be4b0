"""The outbox, in order, for catch-up after an outage."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from ..extensions import db
from ..outbox.feed import read_events
from ..principal import MANAGER, PLATFORM
from .bearer import current_principal, requires
from .pagination import integer_cursor
from .schemas.common import page_schema
from .schemas.events import EventListArgs, EventOut

blp = Blueprint("events", __name__, url_prefix="/api/v1", description="Events (the outbox)")


@blp.route("/events")
class Events(MethodView):
    @requires(PLATFORM, MANAGER)
    @blp.arguments(EventListArgs(), location="query")
    @blp.response(200, page_schema(EventOut, "EventPage"))
    def get(self, args):
        """Every event, in commit order; pass `next` back as `after` to resume. Only reads:
        events are numbered by the relay sweep (`couponsvc/outbox/positions.py`)."""
        principal = current_principal()
        rows, cursor = read_events(
            db.session, merchant_id=None if principal.role == PLATFORM else principal.merchant_id,
            after=_after(args["after"]), type_=args.get("type"), limit=args["limit"])
        return {"data": rows, "next": cursor}


def _after(raw: str | None) -> int | None:
    return None if raw is None else integer_cursor(raw)
