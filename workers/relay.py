"""The outbox relay's periodic work: number new events and wake integrations with due deliveries;
close campaigns at sales end."""

from __future__ import annotations

from couponsvc import campaigns, tasks
from couponsvc.deliveries.sweep import wake_due
from couponsvc.extensions import db
from couponsvc.outbox.positions import assign_positions

from .job import job


@job(tasks.RELAY_SWEEP)
def sweep() -> int:
    """Number the events committed since the last sweep (`GET /events` only reads), then
    wake the integrations with due deliveries; the number of drains started."""
    assign_positions(db.session)
    db.session.commit()
    return wake_due(db.session)


@job(tasks.CLOSE_DUE)
def close_due() -> int:
    closed = 0
    for campaign_id in campaigns.due_campaign_ids(db.session):
        if campaigns.close_campaign(db.session, campaign_id):
            closed += 1
        db.session.commit()
    return closed
