"""The delivery job: drain one integration's due deliveries (couponsvc/deliveries/drain.py)."""

from __future__ import annotations

from couponsvc import tasks
from couponsvc.deliveries.drain import drain as drain_integration
from couponsvc.extensions import db

from .job import job


@job(tasks.DRAIN)
def drain(integration_id: str, token: str) -> int:
    return drain_integration(db.session, integration_id, token)
