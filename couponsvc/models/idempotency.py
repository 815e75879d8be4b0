"""Stored answers for `Idempotency-Key` replays, scoped to the API key that made them.

A record is one API key's use of one `Idempotency-Key`: another key sending the same
header is another request. `body` is the answer as sent, encrypted with the data keys
(`fernet:` prefix), except where `renderer` names how to draw the answer from a
snapshot of the outcome written by the statement that made it (the idempotent redeem
on PostgreSQL: `couponsvc/redeem/write.py`); such a snapshot carries no secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..timeutil import UTCDateTime, utcnow
from .base import Base


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"

    api_key_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]  # 0: claimed, the answer not yet stored
    headers: Mapped[str] = mapped_column(Text, default="{}")
    body: Mapped[str] = mapped_column(Text)
    renderer: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


@dataclass(frozen=True)
class Claim:
    """What a statement needs to claim a key and store its answer with its change."""

    api_key_id: str
    key: str
    request_hash: str
