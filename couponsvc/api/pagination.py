"""Cursor pagination: `?limit=&after=` → `{"data": [...], "next": cursor | null}`."""

from __future__ import annotations

from typing import Any

from ..errors import DomainError
from ..extensions import db


def cursor_page(query, column, *, after: str | None, limit: int, integer: bool = False) -> dict[str, Any]:
    """Run `query` ordered by `column` (unique, increasing) from just after `after`."""
    if after:
        query = query.where(column > _cursor(after, integer))
    rows = list(db.session.execute(query.order_by(column).limit(limit + 1)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return {"data": rows, "next": str(getattr(rows[-1], column.key)) if more else None}


def _cursor(after: str, integer: bool):
    if not integer:
        return after
    try:
        return int(after)
    except ValueError:
        raise DomainError("validation_error", "after is not a cursor this list gave",
                          errors={"after": ["Not a valid cursor."]}) from None
