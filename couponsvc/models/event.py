"""The outbox: every state change writes one row here in its own transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import UserDefinedType

from ..timeutil import UTCDateTime, utcnow
from .base import Base


class XID8(UserDefinedType):
    """PostgreSQL's 64-bit transaction id type (filled by `pg_current_xact_id()`)."""

    cache_ok = True

    def get_col_spec(self, **kw):
        return "xid8"


# BigInteger on PostgreSQL, INTEGER PRIMARY KEY (rowid) on SQLite.
SeqType = BigInteger().with_variant(Integer(), "sqlite")


class Event(Base):
    """One event. `seq` is taken at INSERT; `position` once it is certainly committed.

    On PostgreSQL, transactions commit in another order than they took `seq`, so a
    reader paging by `seq` could step past a row that commits later. `position` is
    given only to rows whose transaction is older than every running one
    (`txid < pg_snapshot_xmin`), in one sequencer at a time, so paging by
    `position` never skips a row. See `couponsvc.outbox.positions`.
    """

    __tablename__ = "events"
    # On PostgreSQL the table is partitioned by month of `created_at` (migration 0015): its
    # primary key is (seq, created_at), `id` and `position` are indexed, not unique (ids are
    # random, positions come from one sequence), and the position indexes hold numbered
    # events only. `seq` alone stays the ORM's key: only its sequence fills it, so it is
    # unique, and `session.get(Event, seq)` finds the one row. SQLite keeps the plain table
    # of migration 0001 (unique `id` and `position`).
    __table_args__ = (
        Index("ix_events_id", "id"),
        Index("ix_events_position", "position", postgresql_where=text("position IS NOT NULL")),
        Index("ix_events_merchant", "merchant_id", "position",
              postgresql_where=text("position IS NOT NULL")),
        Index("ix_events_unpositioned", "seq", postgresql_where=text("position IS NULL"),
              sqlite_where=text("position IS NULL")),
    )

    TYPES = (
        "campaign.published", "campaign.tipped", "campaign.ended", "campaign.failed",
        "campaign.cancelled", "order.confirmed", "order.refund_pending", "coupon.issued",
        "coupon.redeemed", "coupon.redemption_reversed", "coupon.voided", "ping",
        "integration.disabled",
    )

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(40))
    type: Mapped[str] = mapped_column(String(40))
    merchant_id: Mapped[str | None] = mapped_column(String(40))
    coupon_code: Mapped[str | None] = mapped_column(String(16), default=None)
    coupon_seq: Mapped[int | None] = mapped_column(default=None)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    position: Mapped[int | None] = mapped_column(SeqType, default=None)
    txid: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(XID8(), "postgresql"), default=None,
        server_default=None)
