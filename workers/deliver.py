"""The delivery job: one attempt at one delivery."""

from __future__ import annotations

from couponsvc.deliveries.attempt import attempt
from couponsvc.extensions import db

from . import queues
from .job import job


@job(queues.DELIVERIES)
def deliver(delivery_id: int) -> str:
    return attempt(db.session, delivery_id).outcome
