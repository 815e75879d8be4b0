"""The relay's sweep: enqueue every delivery that is due and not being worked on.

It is what makes delivery survive Redis: a job lost when Redis restarted empty, a
delivery written while Redis was down, a worker killed mid-call (its lease runs
out), a retry hours away. Enqueueing uses the attempt's deterministic job id, so a
job still waiting in Redis is not queued twice.
"""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ..jobs import enqueue
from ..models import Delivery, Integration
from ..timeutil import utcnow
from .fanout import DELIVER, QUEUE, job_id

BATCH = 1000
OVERDUE = 30  # seconds past its time after which a delivery's queued job is not trusted


def enqueue_due(session: Session, limit: int = BATCH) -> int:
    now = utcnow()
    due = session.execute(
        select(Delivery.id, Delivery.attempts, Delivery.next_attempt_at)
        .join(Integration, Integration.id == Delivery.integration_id)
        .where(Delivery.status.in_(Delivery.OPEN), Delivery.next_attempt_at <= now,
               or_(Delivery.lease_until.is_(None), Delivery.lease_until < now),
               Integration.status == "active")
        .order_by(Delivery.next_attempt_at).limit(limit)
    ).all()
    session.rollback()
    queued = 0
    for delivery_id, attempts, due_at in due:
        if enqueue(DELIVER, delivery_id, queue=QUEUE, job_id=_sweep_job_id(delivery_id, attempts, due_at, now),
                   timeout=120):
            queued += 1
    return queued


def _sweep_job_id(delivery_id: int, attempts: int, due_at, now) -> str:
    """The attempt's own id while it may still be waiting in Redis; once it is overdue
    by more than OVERDUE, a new id each OVERDUE period: a job that exists in Redis but
    will never run (its scheduler died with Redis, say) must not block the delivery.
    Should both run, the claim's compare-and-set lets only one of them call out."""
    late = (now - due_at).total_seconds()
    if late <= OVERDUE:
        return job_id(delivery_id, attempts)
    return f"{job_id(delivery_id, attempts)}-overdue-{int(now.timestamp() // OVERDUE)}"
