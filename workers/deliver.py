"""The delivery job: drain one integration's due deliveries (couponsvc/deliveries/drain.py)."""

from __future__ import annotations

from flask import current_app

from couponsvc import tasks
from couponsvc.deliveries.drain import drain as drain_integration
from couponsvc.extensions import db
from couponsvc.qr_keys import data_keys

from .job import job


@job(tasks.DRAIN)
def drain(integration_id: str, token: str) -> int:
    config = current_app.config
    return drain_integration(db.session, integration_id, token, keys=data_keys(),
                             allow_private_targets=config["ALLOW_PRIVATE_WEBHOOK_TARGETS"],
                             disable_failing_after=config["DISABLE_FAILING_AFTER"])
