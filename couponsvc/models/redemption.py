"""Redemptions at the till, and every refused attempt."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ..timeutil import UTCDateTime, utcnow
from .base import Base


class Redemption(Base):
    __tablename__ = "redemptions"
    __table_args__ = (
        Index("ix_redemptions_coupon", "coupon_code"),
        Index("ix_redemptions_merchant", "merchant_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    coupon_code: Mapped[str] = mapped_column(ForeignKey("coupons.code"))
    campaign_id: Mapped[str] = mapped_column(String(40))
    merchant_id: Mapped[str] = mapped_column(String(40))
    store_id: Mapped[str] = mapped_column(String(40))
    api_key_id: Mapped[str] = mapped_column(String(40))
    device_id: Mapped[str | None] = mapped_column(String(100), default=None)
    uses: Mapped[int] = mapped_column(default=1)
    redeemed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reversed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    reversal_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    reversed_by_key_id: Mapped[str | None] = mapped_column(String(40), default=None)


class RedemptionAttempt(Base):
    """A refused redeem or validate: who tried what, where, and why it was refused."""

    __tablename__ = "redemption_attempts"
    __table_args__ = (
        Index("ix_attempts_merchant", "merchant_id", "id"),
        Index("ix_attempts_code", "coupon_code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    merchant_id: Mapped[str | None] = mapped_column(String(40))
    coupon_code: Mapped[str | None] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(40))
    raw_input: Mapped[str] = mapped_column(String(300))
    store_id: Mapped[str | None] = mapped_column(String(40))
    api_key_id: Mapped[str | None] = mapped_column(String(40))
    device_id: Mapped[str | None] = mapped_column(String(100))
    client_address: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
