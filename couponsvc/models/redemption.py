"""Redemptions at the till, every refused attempt, and the outcomes of offline scans."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, PrimaryKeyConstraint, String, text
from sqlalchemy.orm import Mapped, mapped_column

from ..timeutil import UTCDateTime, utcnow
from .base import Base


class Redemption(Base):
    """A use of a coupon. `redeemed_at` is when couponsvc recorded it; `scanned_at` when the
    till scanned the coupon (the same moment online; the device's time for a scan made
    offline); `uploaded_at` is set only for an offline scan, when its batch arrived."""

    __tablename__ = "redemptions"
    # On PostgreSQL partitioned by month of `redeemed_at` (migration 0015), its primary key
    # (id, redeemed_at); `id` alone is the ORM's key (made for each redemption, unique).
    __table_args__ = (
        Index("ix_redemptions_coupon", "coupon_code"),
        Index("ix_redemptions_merchant", "merchant_id", "id"),
        # what a campaign's figures and the dashboard read (migration 0012)
        Index("ix_redemptions_campaign", "campaign_id", "redeemed_at",
              postgresql_include=["store_id", "reversed_at", "uses"]),
        Index("ix_redemptions_merchant_time", "merchant_id", "redeemed_at",
              postgresql_include=["reversed_at"]),
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
    scanned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    uploaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    reversed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    reversal_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    reversed_by_key_id: Mapped[str | None] = mapped_column(String(40), default=None)


class RedemptionAttempt(Base):
    """A refused redeem or validate: who tried what, where, and why it was refused."""

    __tablename__ = "redemption_attempts"
    # On PostgreSQL partitioned by month of `created_at` (migration 0015), its primary key
    # (id, created_at); `id` alone is the ORM's key (filled by its sequence, unique).
    __table_args__ = (
        Index("ix_attempts_merchant", "merchant_id", "id"),
        Index("ix_attempts_code", "coupon_code", postgresql_where=text("coupon_code IS NOT NULL")),
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
    scanned_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)  # offline scans


class OfflineScan(Base):
    """An offline scan uploaded in a batch (`POST /redemptions/batch`) and its first outcome,
    kept per merchant, device and the device's nonce, so that the same scan uploaded again
    is answered the same and never redeemed twice. `fingerprint` tells a repeat of the
    scan from another scan sent under the same nonce."""

    __tablename__ = "offline_scans"
    __table_args__ = (PrimaryKeyConstraint("merchant_id", "device_id", "nonce"),)

    merchant_id: Mapped[str] = mapped_column(String(40))
    device_id: Mapped[str] = mapped_column(String(100))
    nonce: Mapped[str] = mapped_column(String(100))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # accepted | conflict | rejected
    reason: Mapped[str | None] = mapped_column(String(40))
    redemption_id: Mapped[str | None] = mapped_column(String(40))
    coupon_code: Mapped[str | None] = mapped_column(String(16))
    store_id: Mapped[str | None] = mapped_column(String(40))
    api_key_id: Mapped[str | None] = mapped_column(String(40))
    scanned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)
