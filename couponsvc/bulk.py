"""Bulk issuance: codes with no order, for distribution campaigns.

`request_bulk` reserves the inventory at once (so `sold_out` answers the request)
and queues a job; `issue_bulk` writes the codes in chunks of `CHUNK`, each chunk
one transaction, so a million codes take a few dozen round trips, not a million.
On PostgreSQL a chunk is COPYed into a temporary table and moved into `coupons`
with `ON CONFLICT DO NOTHING`; a code that already exists is simply drawn again.

A job is written once however often it runs. A run claims it (`claims` + 1, a lease
of `LEASE`) with one conditional UPDATE, so a second run finds it held and does
nothing; each chunk moves `done` on only if the run still holds the claim and `done`
is what it read, in the chunk's own transaction, so a run that lost its lease (a
worker stopped too long) writes nothing more. `lost_jobs` and `requeue_lost` are the
bulk sweep: a job queued whose enqueue was lost (Redis down at the commit, or
restarted empty) or a job whose run died is queued again under `run_id`, an RQ job
id unique per claim, so a job still in Redis is not queued twice.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.orm import Session

from . import codes
from .after_commit import after_commit
from .domain_error import DomainError, say
from .issuance import coupon_insert, coupon_row
from .jobs import enqueue
from .models import Campaign, Coupon, Job
from .orders import short_of_stock
from .outbox.emit import emit
from .tasks import ISSUE_BULK
from .timeutil import utcnow

log = logging.getLogger(__name__)

CHUNK = 100_000
KIND = "bulk_issue"
LEASE = timedelta(minutes=5)  # renewed with every chunk; a chunk takes seconds


def request_bulk(session: Session, campaign: Campaign, count: int, *, limit: int) -> Job:
    """Reserve `count` codes and queue their job; `limit` is `COUPONSVC_BULK_MAX`."""
    if count > limit:
        raise DomainError("validation_error", f"count must be at most {limit}",
                          errors={"count": [f"Must be at most {limit}."]})
    if campaign.status not in Campaign.OPEN:
        raise DomainError("campaign_not_on_sale", say("no coupons can be issued while the campaign "
                                                      "is %(status)s", status=campaign.status))
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
        raise short_of_stock(campaign, count)
    job = Job(kind=KIND, merchant_id=campaign.merchant_id, campaign_id=campaign.id,
              requested=count)
    session.add(job)
    session.flush()
    after_commit(session, partial(enqueue, ISSUE_BULK, job.id, job_id=run_id(job.id, 0)))
    return job


def run_id(job_id: str, claims: int) -> str:
    """The RQ job id of the run that will make claim `claims` + 1 on the job."""
    return f"bulk-{job_id}-{claims}"


def lost_jobs(session: Session) -> list[tuple[str, int]]:
    """(job id, claims) of every bulk job no run holds: queued, or running with its
    lease run out. A queued job may still be in Redis; `run_id` tells them apart."""
    now = utcnow()
    found = session.execute(
        select(Job.id, Job.claims)
        .where(Job.kind == KIND, or_(Job.status == "queued",
                                     and_(Job.status == "running", Job.lease_until < now)))
        .order_by(Job.created_at)
    ).all()
    session.rollback()
    return [(row.id, row.claims) for row in found]


def requeue_lost(session: Session) -> int:
    """The bulk sweep: queue every lost job again; the number queued (an RQ job that is
    still there, under the same run id, is not queued twice)."""
    return sum(enqueue(ISSUE_BULK, job_id, job_id=run_id(job_id, claims))
               for job_id, claims in lost_jobs(session))


def _claim(session: Session, job_id: str) -> int | None:
    """Take the job for this run: its claim number, or None when it is done, failed
    or held by a live run."""
    now = utcnow()
    claims = session.execute(
        update(Job)
        .where(Job.id == job_id, or_(Job.status == "queued",
                                     and_(Job.status == "running", Job.lease_until < now)))
        .values(status="running", claims=Job.claims + 1, lease_until=now + LEASE,
                started_at=func.coalesce(Job.started_at, now))
        .returning(Job.claims)
        .execution_options(synchronize_session=False)
    ).scalar()
    session.commit()
    return claims


def _advance(session: Session, job_id: str, claims: int, done: int, written: int) -> bool:
    """Count a chunk written in this transaction, if this run still holds the job."""
    moved = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.claims == claims, Job.done == done)
        .values(done=done + written, lease_until=utcnow() + LEASE)
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    ).first()
    return moved is not None


def issue_bulk(session: Session, job_id: str) -> Job | None:
    """Write the job's codes, once however many runs are queued; a run after a crash
    resumes from `done`."""
    claims = _claim(session, job_id)
    job = session.get(Job, job_id, populate_existing=True)
    if claims is None:
        return job
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
            if not _advance(session, job_id, claims, job.done, written):
                session.rollback()  # another run holds the job now: these codes were never written
                log.warning("bulk job %s: claim %s was taken over", job_id, claims)
                return session.get(Job, job_id, populate_existing=True)
            emit(session, "coupon.issued", merchant_id=campaign.merchant_id, data={
                "campaign_id": campaign.id, "job_id": job.id, "count": written,
                "issued_so_far": job.done + written, "requested": job.requested, "status": status,
            })
            session.commit()
            job = session.get(Job, job_id, populate_existing=True)
    except Exception as error:
        session.rollback()
        job = session.get(Job, job_id, populate_existing=True)
        if job.claims != claims:
            return job
        _release(session, job)
        job.status, job.error, job.finished_at = "failed", str(error)[:1000], utcnow()
        job.lease_until = None
        session.commit()
        log.exception("bulk job %s failed", job_id)
        return job
    job.status, job.finished_at, job.lease_until = "succeeded", utcnow(), None
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
    # Dropped at the chunk's commit: nothing outlives the transaction on the server
    # connection, which PgBouncer in transaction mode hands to another client next.
    connection.execute(text("CREATE TEMP TABLE IF NOT EXISTS bulk_codes (code varchar(16)) ON COMMIT DROP"))
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
