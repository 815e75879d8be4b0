"""Failed-look-up budgets used up, as `lookup_blocks` records them (PostgreSQL); no Flask.

The failures are counted in the limiter's storage (`ratelimit.py`); the failure that
uses a budget up writes it here (`block`), in a transaction of its own, until its window
resets. What is here is what refuses: a look-up reads it first (`used_up`), and the
redeem's statement reads the table itself (`redeem/write.py`), asking `used_up` only
when it changed nothing, to answer 429 rather than the refusal it found: that refusal
would tell a guess that hit a coupon from one that missed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from .domain_error import DomainError, say_n
from .models import LookupBlock


def subject(kind: str, identity: str) -> str:
    """`key:<api key id>` or `addr:<client address>`."""
    return f"{kind}:{identity}"


class BudgetUsedUp(DomainError):
    """429 `rate_limited` while a budget is used up; `kind`: `key` or `addr`."""

    def __init__(self, kind: str, retry_after: int) -> None:
        self.kind = kind
        super().__init__("rate_limited", _detail(kind, retry_after), retry_after=retry_after)


def _detail(kind: str, retry_after: int):
    if kind == "key":
        return say_n("too many failed look-ups with this key; retry in %(num)d second",
                     "too many failed look-ups with this key; retry in %(num)d seconds", retry_after)
    return say_n("too many failed look-ups from this address; retry in %(num)d second",
                 "too many failed look-ups from this address; retry in %(num)d seconds", retry_after)


def refuse_if_used_up(session: Session, subjects: Sequence[str], now: datetime) -> None:
    """Raise `BudgetUsedUp` for the first of `subjects` used up at `now`."""
    blocked = dict(session.execute(
        select(LookupBlock.subject, LookupBlock.until)
        .where(LookupBlock.subject.in_(list(subjects)), LookupBlock.until > now)).all())
    for name in subjects:
        if name in blocked:
            raise BudgetUsedUp(name.split(":", 1)[0],
                               max(1, math.ceil((blocked[name] - now).total_seconds())))


def block(connection: Connection, name: str, until: datetime) -> None:
    """Record `name` used up until `until` (a later `until` already recorded stays)."""
    insert = postgresql.insert(LookupBlock).values(subject=name, until=until)
    connection.execute(insert.on_conflict_do_update(
        index_elements=[LookupBlock.subject],
        set_={"until": func.greatest(LookupBlock.until, insert.excluded.until)}))
