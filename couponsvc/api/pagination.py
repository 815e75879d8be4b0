"""Cursor pagination: `?limit=&after=` → `{"data": [...], "next": cursor | null}`.

A cursor is one the list could have given, or `422 validation_error`: a number within
a bigint for lists in numeric order, an id of the listed kind (`cmp_` and 26 Crockford
base32 characters for campaigns) for lists in id order. A malformed cursor is never an
empty page (the client would think it had read everything) nor a database error.
"""

from __future__ import annotations

import re
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
        value = _cursor(after, integer, prefix, column)
        query = query.where(column < value if descending else column > value)
    ordered = column.desc() if descending else column
    rows = list(db.session.execute(query.order_by(ordered).limit(limit + 1)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = f"{prefix}{getattr(rows[-1], column.key)}" if more else None
    return {"data": [present(row) for row in rows] if present else rows, "next": cursor}


# The prefix of the ids of each table listed in id order (`couponsvc.ids.new_id`).
ID_PREFIXES = {"merchants": "mer", "stores": "sto", "api_keys": "key", "campaigns": "cmp",
               "integrations": "int", "redemptions": "red", "orders": "ord", "jobs": "job"}
_ID = re.compile(r"([a-z]{3})_[0-9A-HJKMNP-TV-Z]{26}")


def integer_cursor(after: str, prefix: str = "") -> int:
    """The number in a cursor of a list in numeric order; 422 unless it is one."""
    raw = after[len(prefix):] if after.startswith(prefix) else ""
    if raw.isascii() and raw.isdigit() and len(raw) <= 18:  # within a bigint
        return int(raw)
    raise _not_a_cursor()


def _cursor(after: str, integer: bool, prefix: str, column) -> Any:
    if integer:
        return integer_cursor(after, prefix)
    found = _ID.fullmatch(after)
    expected = ID_PREFIXES.get(column.table.name)
    if found is None or (expected is not None and found.group(1) != expected):
        raise _not_a_cursor()
    return after


def _not_a_cursor() -> DomainError:
    return DomainError("validation_error", "after is not a cursor this list gave",
                       errors={"after": ["Not a valid cursor."]})
