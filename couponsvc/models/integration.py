"""A merchant's integrations (adapter + config + subscribed events) and their deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    text,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.expression import FunctionElement

from ..ids import new_id
from ..timeutil import UTCDateTime, utcnow
from .base import Base

BigId = BigInteger().with_variant(Integer(), "sqlite")


class Integration(Base):
    __tablename__ = "integrations"
    __table_args__ = (Index("ix_integrations_merchant", "merchant_id", "id"),)

    STATUSES = ("active", "disabled")

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("int"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    adapter: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)  # without the credentials
    # the credential fields (`integrations.adapter.secret_fields`) as one JSON object,
    # encrypted under the data keys (`fernet:…`, `couponsvc.integration_credentials`)
    credentials: Mapped[str | None] = mapped_column(Text, default=None)
    events: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="active")
    timeout: Mapped[float] = mapped_column(default=15.0)
    disabled_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Subscription(Base):
    """One event type an integration receives (a table, so fan-out is one portable JOIN)."""

    __tablename__ = "integration_subscriptions"

    integration_id: Mapped[str] = mapped_column(ForeignKey("integrations.id"), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(40), primary_key=True)


class random_delivery_id(FunctionElement):  # noqa: N801
    """`dlv_` and 32 random hexadecimal digits, made by the database for each row it inserts,
    so that an `INSERT … SELECT` (the fan-out) gives every delivery its own."""

    type = String()
    inherit_cache = True


@compiles(random_delivery_id, "postgresql")
def _random_delivery_id_postgresql(element, compiler, **kw):
    return "('dlv_' || replace(CAST(gen_random_uuid() AS text), '-', ''))"


@compiles(random_delivery_id)
def _random_delivery_id_sqlite(element, compiler, **kw):
    return "('dlv_' || lower(hex(randomblob(16))))"


class Delivery(Base):
    """One event for one integration: delivered at least once, or dead after ~2 days; held
    while its integration is disabled (`couponsvc/outbox/hold.py`).

    `id` orders the deliveries (a drain claims an integration's oldest first, through the
    partial indexes below) and never leaves the service; clients see `public_id`, random,
    so that it tells nothing of how many deliveries other merchants have.
    """

    __tablename__ = "deliveries"
    # On PostgreSQL partitioned by month of `created_at`, which is its event's
    # (`outbox.fanout.delivery_rows`; migration 0015): the primary key is (id, created_at),
    # the unique (event_seq, integration_id, created_at) refuses what (event_seq,
    # integration_id) did, `public_id` (random) is indexed, not unique, and no foreign key
    # leads to `events` (nor from `delivery_attempts`). `id` alone is the ORM's key (filled
    # by its sequence). SQLite keeps the plain table and its keys.
    __table_args__ = (
        UniqueConstraint("event_seq", "integration_id", "created_at",
                         name="uq_deliveries_event_integration"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_integration", "integration_id", "id"),
        Index("ix_deliveries_public_id", "public_id"),
        # what a drain claims: the open deliveries of one integration, oldest first
        Index("ix_deliveries_open", "integration_id", "id",
              postgresql_where=text("status IN ('pending', 'failed')"),
              sqlite_where=text("status IN ('pending', 'failed')")),
        # what enabling an integration again releases (`couponsvc/outbox/hold.py`)
        Index("ix_deliveries_held", "integration_id", "id",
              postgresql_where=text("status = 'held'"), sqlite_where=text("status = 'held'")),
        # what the sweep asks of each integration: is any open delivery due?
        Index("ix_deliveries_open_due", "integration_id", "next_attempt_at",
              postgresql_where=text("status IN ('pending', 'failed')"),
              sqlite_where=text("status IN ('pending', 'failed')")),
    )

    STATUSES = ("pending", "succeeded", "failed", "dead", "held")  # held: its integration is disabled
    OPEN = ("pending", "failed")
    # Clients see `retrying` for a stored `failed`: it waits for its next try (not final);
    # `failed` stays a filter that finds the same deliveries, as it did before `retrying`.
    SHOWN = {"failed": "retrying"}
    SHOWN_STATUSES = ("pending", "succeeded", "retrying", "failed", "dead", "held")

    @classmethod
    def stored_status(cls, shown: str) -> str:
        """The stored status of a status as clients name it (`retrying` → `failed`)."""
        return next((stored for stored, name in cls.SHOWN.items() if name == shown), shown)

    @property
    def shown_status(self) -> str:
        return self.SHOWN.get(self.status, self.status)

    @classmethod
    def is_open(cls):
        """`status IN ('pending', 'failed')` written into the SQL, not bound: a prepared
        statement's generic plan can then use the partial indexes above."""
        return cls.status.in_(bindparam("open_statuses", list(cls.OPEN), expanding=True,
                                        literal_execute=True, unique=True))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(40), default=random_delivery_id())
    event_seq: Mapped[int] = mapped_column(BigId)
    integration_id: Mapped[str] = mapped_column(ForeignKey("integrations.id"))
    merchant_id: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_status_code: Mapped[int | None] = mapped_column(default=None)
    last_response: Mapped[str | None] = mapped_column(String(500), default=None)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    succeeded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)


class DeliveryAttempt(Base):
    """Every attempt, kept: when, how long, what came back."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (Index("ix_delivery_attempts_delivery", "delivery_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(BigId)
    number: Mapped[int]
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int]
    status_code: Mapped[int | None] = mapped_column(default=None)
    response: Mapped[str | None] = mapped_column(String(500), default=None)
    error: Mapped[str | None] = mapped_column(String(500), default=None)
    outcome: Mapped[str] = mapped_column(String(16))
