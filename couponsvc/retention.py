"""The periodic upkeep of what grows without end (docs/operations.md#partitions-and-retention).

One run, daily (`tasks.PARTITIONS`, `couponsvc partitions` by hand):
- on PostgreSQL, the monthly partitions: the next months' made ahead, and those older
  than `COUPONSVC_RETENTION_MONTHS` dropped, never one holding an open delivery
  (`partitions.py`); on SQLite, a development database of plain tables, nothing;
- on both, the `Idempotency-Key` records older than `COUPONSVC_IDEMPOTENCY_TTL` (never
  replayed again: `api/unit_of_work.py` takes an expired key over) and the look-up
  blocks whose `until` has passed (never read again: a block counts only until then).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from . import partitions
from .models import IdempotencyRecord, LookupBlock


@dataclass
class Upkeep:
    partitions: partitions.Report = field(default_factory=partitions.Report)
    idempotency_keys: int = 0  # records deleted
    lookup_blocks: int = 0


def run(session: Session, now: datetime, *, retention_months: int, idempotency_ttl: int) -> Upkeep:
    """One run of the upkeep at `now`; it commits its own steps."""
    done = Upkeep()
    if partitions.applies(session):
        partitions.create_ahead(session, now, done.partitions)
        partitions.drop_older(session, now, retention_months, done.partitions)
    records, blocks = IdempotencyRecord.__table__, LookupBlock.__table__
    done.idempotency_keys = session.execute(delete(records).where(
        records.c.created_at < now - timedelta(seconds=idempotency_ttl))).rowcount
    done.lookup_blocks = session.execute(delete(blocks).where(blocks.c.until < now)).rowcount
    session.commit()
    return done


def run_as_configured(session: Session, now: datetime, config) -> Upkeep:
    """`run` with the deployment's settings (`RETENTION_MONTHS`, `IDEMPOTENCY_TTL`)."""
    return run(session, now, retention_months=config["RETENTION_MONTHS"],
               idempotency_ttl=config["IDEMPOTENCY_TTL"])
