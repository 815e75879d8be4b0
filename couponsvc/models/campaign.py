"""Campaigns (group-buy deals), the stores that honour them, and buyers' counts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..ids import new_id
from ..timeutil import UTCDateTime, utcnow
from .base import Base

campaign_stores = Table(
    "campaign_stores",
    Base.metadata,
    Column("campaign_id", ForeignKey("campaigns.id"), primary_key=True),
    Column("store_id", ForeignKey("stores.id"), primary_key=True),
)


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        Index("ix_campaigns_merchant", "merchant_id", "id"),
        Index("ix_campaigns_due", "status", "sales_end"),
    )

    STATUSES = ("draft", "active", "paused", "ended", "failed", "cancelled")
    OPEN = ("active", "paused")

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("cmp"))
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    price: Mapped[int]
    list_price: Mapped[int | None]
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    sales_start: Mapped[datetime] = mapped_column(UTCDateTime)
    sales_end: Mapped[datetime] = mapped_column(UTCDateTime)
    min_group_size: Mapped[int] = mapped_column(default=1)
    max_coupons: Mapped[int | None] = mapped_column(default=None)
    per_customer_limit: Mapped[int | None] = mapped_column(default=None)
    uses_per_coupon: Mapped[int] = mapped_column(default=1)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    sold: Mapped[int] = mapped_column(default=0)
    issued: Mapped[int] = mapped_column(default=0)
    tipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    qr_kid: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    stores = relationship("Store", secondary=campaign_stores, lazy="selectin", order_by="Store.id")

    @property
    def tipped(self) -> bool:
        return self.tipped_at is not None

    @property
    def store_ids(self) -> list[str]:
        return [store.id for store in self.stores]


class CustomerPurchase(Base):
    """How many coupons one (normalised) customer bought of one campaign."""

    __tablename__ = "customer_purchases"

    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    customer_ref: Mapped[str] = mapped_column(String(200), primary_key=True)
    quantity: Mapped[int] = mapped_column(default=0)
