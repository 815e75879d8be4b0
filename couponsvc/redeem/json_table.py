"""Many rows sent as one JSON parameter and read as a table, on either backend.

`jsonb_to_recordset` on PostgreSQL, `json_each` with `json_extract` on SQLite: one bound
value however many rows, so a statement over 500 scans is as cheap to build and send as
one over a single scan (executemany or a VALUES list would bind every cell).

A time is sent as the backend stores times, so that SQL compares it with stored ones:
ISO 8601, read as `timestamptz`, on PostgreSQL; `UTCDateTime`'s text on SQLite.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    FromClause,
    Text,
    bindparam,
    cast,
    column,
    func,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

from ..timeutil import UTCDateTime

TIME = DateTime(timezone=True)


def json_table(dialect: Dialect, name: str, columns: Sequence[tuple[str, TypeEngine]],
               rows: Sequence[dict[str, Any]]) -> FromClause:
    """`rows` (dicts of the `columns`; a `TIME` column holds aware datetimes) as a table
    named `name`, bound as the parameter `name`."""
    times = [key for key, type_ in columns if isinstance(type_, DateTime)]
    stored = _stored_time(dialect)
    document = bindparam(name, json.dumps(
        [{**row, **{key: stored(row[key]) for key in times}} for row in rows]), type_=Text())
    if dialect.name == "postgresql":
        return (func.jsonb_to_recordset(cast(document, JSONB))
                .table_valued(*(column(key, type_) for key, type_ in columns))
                .render_derived(name=name, with_types=True))
    each = func.json_each(document).table_valued("value")

    def read(key: str, type_: TypeEngine):  # SQLite's CAST AS DATETIME would make a number of the text
        value = func.json_extract(each.c.value, f"$.{key}")
        return (type_coerce(value, UTCDateTime()) if isinstance(type_, DateTime) else cast(value, type_)).label(key)

    return select(*(read(key, type_) for key, type_ in columns)).subquery(name)


def _stored_time(dialect: Dialect):
    if dialect.name == "postgresql":
        return _iso
    return UTCDateTime().dialect_impl(dialect).bind_processor(dialect)


def _iso(moment: datetime) -> str:
    return moment.isoformat()
