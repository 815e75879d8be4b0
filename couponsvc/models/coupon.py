"""Orders and the coupons they (or a bulk job) issue."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ..ids import new_id
from ..timeutil import UTCDateTime, utcnow
from .base import Base


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_campaign", "campaign_id", "status"),
        # what `GET /orders` finds by (`couponsvc.orders.orders_query`)
        Index("ix_orders_merchant", "merchant_id", "id"),
        Index("ix_orders_customer_ref", "customer_ref", "id"),
        Index("ix_orders_payment_ref", "payment_ref", "id"),
        # what the dashboard's sold today reads (migration 0012)
        Index("ix_orders_merchant_time", "merchant_id", "created_at", postgresql_include=["quantity"]),
    )

    STATUSES = ("pending", "confirmed", "refund_pending")

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ord"))
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    customer_ref: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int]
    payment_ref: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Coupon(Base):
    """A coupon; `code` (12 symbols, canonical, no hyphens) is its identity.

    `status` stores pending | active | redeemed | voided; `expired` is derived at
    read time from `valid_until`, so no sweep is needed to expire coupons.
    `seq` counts this coupon's events, so a receiver can drop a stale one.
    """

    __tablename__ = "coupons"
    __table_args__ = (
        Index("ix_coupons_campaign", "campaign_id", "status"),
        Index("ix_coupons_order", "order_id"),
    )

    STORED_STATUSES = ("pending", "active", "redeemed", "voided")

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    order_id: Mapped[str | None] = mapped_column(ForeignKey("orders.id"), default=None)
    status: Mapped[str] = mapped_column(String(16))
    uses_total: Mapped[int]
    uses_left: Mapped[int]
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    seq: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    void_reason: Mapped[str | None] = mapped_column(String(500), default=None)

    def public_status(self, now: datetime) -> str:
        if self.status in ("pending", "active") and now >= self.valid_until:
            return "expired"
        return self.status


class Revocation(Base):
    """Codes voided or refunded, in order, for offline scanners (`GET /revocations`)."""

    __tablename__ = "revocations"

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(16))
    merchant_id: Mapped[str] = mapped_column(String(40), index=True)
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
