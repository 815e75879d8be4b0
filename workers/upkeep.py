"""The daily upkeep: monthly partitions made ahead and dropped past the retention, expired
idempotency records and look-up blocks deleted (couponsvc/retention.py)."""

from __future__ import annotations

from flask import current_app

from couponsvc import retention, tasks
from couponsvc.extensions import db
from couponsvc.timeutil import utcnow

from .job import job


@job(tasks.PARTITIONS)
def partitions() -> dict:
    done = retention.run_as_configured(db.session, utcnow(), current_app.config)
    return {"created": done.partitions.created, "dropped": done.partitions.dropped,
            "kept": done.partitions.kept, "moved": done.partitions.moved,
            "idempotency_keys": done.idempotency_keys, "lookup_blocks": done.lookup_blocks}
