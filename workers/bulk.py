"""The bulk issuance job."""

from __future__ import annotations

from couponsvc import bulk
from couponsvc.extensions import db

from .job import job


@job("bulk")
def issue_bulk(job_id: str) -> str:
    return bulk.issue_bulk(db.session, job_id).status
