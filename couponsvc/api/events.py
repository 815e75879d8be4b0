"""The outbox, in order, for catch-up after an outage."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from ..errors import DomainError
from ..event_log import assign_positions, read_events
from ..extensions import db
from ..principal import MANAGER, PLATFORM
from .bearer import current_principal, requires
from .schemas.common import page_schema
from .schemas.events import EventListArgs, EventOut

blp = Blueprint("events", __name__, url_prefix="/api/v1", description="Events (the outbox)")


@blp.route("/events")
class Events(MethodView):
    @requires(PLATFORM, MANAGER)
    @blp.arguments(EventListArgs(), location="query")
    @blp.response(200, page_schema(EventOut, "EventPage"))
    def get(self, args):
        """Every event, in commit order; pass `next` back as `after` to resume."""
        principal = current_principal()
        assign_positions(db.session)
        db.session.commit()
        rows, cursor = read_events(
            db.session, merchant_id=None if principal.role == PLATFORM else principal.merchant_id,
            after=_after(args["after"]), type_=args.get("type"), limit=args["limit"])
        return {"data": rows, "next": cursor}


def _after(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise DomainError("validation_error", "after is not a cursor this list gave",
                          errors={"after": ["Not a valid cursor."]}) from None
