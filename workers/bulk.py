"""The bulk issuance job, and the sweep that queues again a bulk job whose enqueue or run was lost."""

from __future__ import annotations

from couponsvc import bulk, tasks
from couponsvc.extensions import db

from .job import job


@job(tasks.ISSUE_BULK)
def issue_bulk(job_id: str) -> str | None:
    done = bulk.issue_bulk(db.session, job_id)
    return None if done is None else done.status


@job(tasks.BULK_SWEEP)
def sweep() -> int:
    return bulk.requeue_lost(db.session)
