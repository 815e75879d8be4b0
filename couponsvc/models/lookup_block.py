"""Look-up budgets used up: a key or an address refused until its window resets.

The failed look-ups themselves are counted in the limiter's storage (Redis), and that
count is what decides (`couponsvc/ratelimit.py`). On PostgreSQL, a budget used up is
also written here, so that the redeem's one statement can refuse a key or an address
that is over budget without asking Redis first (`redeem/write.py`): `subject` is
`key:<api key id>` or `addr:<client address>`, `until` the end of the window.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ..timeutil import UTCDateTime
from .base import Base


class LookupBlock(Base):
    __tablename__ = "lookup_blocks"

    subject: Mapped[str] = mapped_column(String(200), primary_key=True)
    until: Mapped[datetime] = mapped_column(UTCDateTime)
