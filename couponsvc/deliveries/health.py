"""An integration's health: failing since when, and disabled when it is gone or failing for days.

A 410 Gone disables the integration at once, and so does an adapter's refusal that says
retrying cannot help until a person acts (a `PermanentError` with `disable`: Weibo's
expired access token), with the adapter's words as the reason. Otherwise an integration whose every
attempt has failed for `COUPONSVC_DISABLE_FAILING_AFTER` (3 days by default) is
disabled. A merchant may also switch it off (`PATCH … {"status": "disabled"}`). Every
way, an `integration.disabled` event says so, with the reason, and its deliveries are
held until the merchant enables the integration again (`couponsvc/outbox/hold.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from ..models import Integration
from ..outbox.hold import disable
from .attempt import Attempt


def note_attempts(session: Session, integration_id: str, attempts: Sequence[Attempt], now: datetime,
                  *, disable_after: int, was_failing: bool = True) -> None:
    """Note a round of attempts; `was_failing=False` (the integration had no failing_since
    when the round began) spares a success its UPDATE. An integration failing for
    `disable_after` seconds (COUPONSVC_DISABLE_FAILING_AFTER) is disabled."""
    results = {attempt.result for attempt in attempts}
    if not results:
        return
    if "succeeded" in results and "disabled" not in results:
        if not was_failing:
            return
        # no write, and no lock, unless it had been failing
        session.execute(update(Integration).where(Integration.id == integration_id,
                                                  Integration.failing_since.is_not(None))
                        .values(failing_since=None).execution_options(synchronize_session=False))
        return
    integration = session.get(Integration, integration_id, with_for_update=True)
    integration.failing_since = integration.failing_since or now
    if "disabled" in results:
        gone = next(a for a in attempts if a.result == "disabled")
        disable(session, integration, disabled_reason(gone), now)
        return
    limit = timedelta(seconds=disable_after)
    if now - integration.failing_since >= limit and integration.status == "active":
        disable(session, integration, f"every delivery has failed since "
                                      f"{integration.failing_since.isoformat()}", now)



def disabled_reason(attempt: Attempt) -> str:
    """Why the attempt disables its integration: a 410, or what the adapter said."""
    error = attempt.error
    if error.status_code == 410:
        return f"the receiver answered {error.status_code}: gone"
    return str(error)[:500]
