"""The outbox relay's periodic work: wake integrations with due deliveries, close campaigns at sales end."""

from __future__ import annotations

from couponsvc import campaigns
from couponsvc.deliveries.sweep import wake_due
from couponsvc.extensions import db

from . import queues
from .job import job


@job(queues.DEFAULT)
def sweep() -> int:
    return wake_due(db.session)


@job(queues.DEFAULT)
def close_due() -> int:
    closed = 0
    for campaign_id in campaigns.due_campaign_ids(db.session):
        if campaigns.close_campaign(db.session, campaign_id):
            closed += 1
        db.session.commit()
    return closed
