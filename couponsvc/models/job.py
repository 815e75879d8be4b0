"""Background jobs a client polls (bulk issuance), and the claim a run holds on one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..ids import new_id
from ..timeutil import UTCDateTime, utcnow
from .base import Base


class Job(Base):
    __tablename__ = "jobs"

    STATUSES = ("queued", "running", "succeeded", "failed")

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("job"))
    kind: Mapped[str] = mapped_column(String(32))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    campaign_id: Mapped[str | None] = mapped_column(ForeignKey("campaigns.id"), default=None)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    requested: Mapped[int] = mapped_column(default=0)
    done: Mapped[int] = mapped_column(default=0)
    # A run claims the job (claims + 1) under a lease it renews with every chunk; the
    # bulk sweep queues again a job that is queued, or running with its lease run out.
    claims: Mapped[int] = mapped_column(default=0, server_default="0")
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
