"""Bulk issuance: codes with no order, for distribution campaigns.

`request_bulk` reserves the inventory at once (so `sold_out` answers the request)
and queues a job; `issue_bulk` writes the codes in chunks of `CHUNK`, each chunk
one transaction, so a million codes take a few dozen round trips, not a million.
On PostgreSQL a chunk is COPYed into a temporary table and moved into `coupons`
with `ON CONFLICT DO NOTHING`; a code that already exists is simply drawn again.
"""

from __future__ import annotations

import logging
from functools import partial

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from . import codes
from .after_commit import after_commit
from .errors import DomainError
from .events import emit
from .issuance import coupon_insert, coupon_row
from .jobs import enqueue
from .models import Campaign, Coupon, Job
from .timeutil import utcnow

log = logging.getLogger(__name__)

CHUNK = 100_000
JOB = "workers.bulk.issue_bulk"


def request_bulk(session: Session, campaign: Campaign, count: int) -> Job:
    if campaign.status not in Campaign.OPEN:
        raise DomainError("campaign_not_on_sale", f"coupons of a {campaign.status} campaign cannot be issued")
    reserved = session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id, Campaign.status.in_(Campaign.OPEN),
               Campaign.max_coupons.is_(None) | (Campaign.issued + count <= Campaign.max_coupons))
        .values(issued=Campaign.issued + count)
        .returning(Campaign.id)
        .execution_options(synchronize_session=False)
    ).first()
    if reserved is None:
        session.refresh(campaign)
        if campaign.status not in Campaign.OPEN:
            raise DomainError("campaign_not_on_sale")
        raise DomainError("sold_out", f"{(campaign.max_coupons or 0) - campaign.issued} coupons left")
    job = Job(kind="bulk_issue", merchant_id=campaign.merchant_id, campaign_id=campaign.id,
              requested=count)
    session.add(job)
    session.flush()
    after_commit(session, partial(enqueue, JOB, job.id, queue="bulk", job_id=f"bulk-{job.id}"))
    return job


def issue_bulk(session: Session, job_id: str) -> Job:
    """Write the job's codes; safe to run again after a crash (it resumes from `done`)."""
    job = session.get(Job, job_id)
    if job is None or job.status == "succeeded":
        return job
    job.status, job.started_at = "running", job.started_at or utcnow()
    session.commit()
    try:
        while job.done < job.requested:
            campaign = session.get(Campaign, job.campaign_id, populate_existing=True)
            if campaign.status not in Campaign.OPEN:
                raise DomainError("campaign_not_on_sale", f"the campaign became {campaign.status}")
            # Codes handed out with no purchase wait for the tip like sold ones, unless
            # the deal has no group threshold at all (min_group_size 1).
            waiting = campaign.tipped_at is None and campaign.min_group_size > 1
            status = "pending" if waiting else "active"
            template = coupon_row(campaign, status=status, order_id=None, now=utcnow())
            size = min(CHUNK, job.requested - job.done)
            written = _write_chunk(session, template, size)
            job.done += written
            emit(session, "coupon.issued", merchant_id=campaign.merchant_id, data={
                "campaign_id": campaign.id, "job_id": job.id, "count": written,
                "issued_so_far": job.done, "requested": job.requested, "status": status,
            })
            session.commit()
    except Exception as error:
        session.rollback()
        job = session.get(Job, job_id, populate_existing=True)
        _release(session, job)
        job.status, job.error, job.finished_at = "failed", str(error)[:1000], utcnow()
        session.commit()
        log.exception("bulk job %s failed", job_id)
        return job
    job.status, job.finished_at = "succeeded", utcnow()
    session.commit()
    return job


def _release(session: Session, job: Job) -> None:
    """Give back the inventory a failed job reserved but did not write."""
    session.execute(update(Campaign).where(Campaign.id == job.campaign_id)
                    .values(issued=Campaign.issued - (job.requested - job.done))
                    .execution_options(synchronize_session=False))


def _write_chunk(session: Session, template: dict, size: int) -> int:
    written = 0
    while written < size:
        batch = codes.generate_many(size - written)
        if session.get_bind().dialect.name == "postgresql":
            written += _copy_chunk(session, template, batch)
        else:
            result = session.execute(coupon_insert(session), [{**template, "code": c} for c in batch])
            written += result.rowcount
    return written


def _copy_chunk(session: Session, template: dict, batch: list[str]) -> int:
    connection = session.connection()
    connection.execute(text("CREATE TEMP TABLE IF NOT EXISTS bulk_codes (code varchar(16)) ON COMMIT DELETE ROWS"))
    raw = connection.connection.driver_connection
    with raw.cursor() as cursor, cursor.copy("COPY bulk_codes (code) FROM STDIN") as copy:
        copy.write("\n".join(batch) + "\n")
    columns = ", ".join(template)
    values = ", ".join(f":{name}" for name in template)
    result = connection.execute(text(
        f"INSERT INTO coupons (code, {columns}) SELECT code, {values} FROM bulk_codes "
        "ON CONFLICT (code) DO NOTHING"), template)
    connection.execute(text("TRUNCATE bulk_codes"))
    return result.rowcount


def export_rows(session: Session, campaign: Campaign, status: str | None):
    """Yield the campaign's coupons in code order, a server-side cursor at a time."""
    query = select(Coupon.code, Coupon.status, Coupon.uses_total, Coupon.uses_left,
                   Coupon.valid_from, Coupon.valid_until, Coupon.order_id, Coupon.created_at) \
        .where(Coupon.campaign_id == campaign.id).order_by(Coupon.code)
    if status:
        query = query.where(Coupon.status == status)
    yield from session.execute(query.execution_options(yield_per=10_000))
