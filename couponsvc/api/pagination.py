"""Cursor pagination: `?limit=&after=` → `{"data": [...], "next": cursor | null}`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import DomainError
from ..extensions import db


def cursor_page(query, column, *, after: str | None, limit: int, integer: bool = False,
                prefix: str = "", descending: bool = False,
                present: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """Run `query` ordered by `column` (unique; increasing, or decreasing when
    `descending`) from just after `after`. A cursor is the last row's `column` value,
    with `prefix` in front (`dlv_123`); `present` turns each row into what is listed."""
    if after:
        value = _cursor(after, integer, prefix)
        query = query.where(column < value if descending else column > value)
    ordered = column.desc() if descending else column
    rows = list(db.session.execute(query.order_by(ordered).limit(limit + 1)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = f"{prefix}{getattr(rows[-1], column.key)}" if more else None
    return {"data": [present(row) for row in rows] if present else rows, "next": cursor}


def _cursor(after: str, integer: bool, prefix: str):
    raw = after.removeprefix(prefix)
    if not integer:
        return raw
    if raw.isdigit() and len(raw) <= 18:  # within a bigint
        return int(raw)
    raise DomainError("validation_error", "after is not a cursor this list gave",
                      errors={"after": ["Not a valid cursor."]})
