"""A campaign's coupons as CSV, streamed: the API's `coupons.csv` and the admin's."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from sqlalchemy.orm import Session

from .. import codes
from ..bulk import export_rows
from ..models import Campaign

COLUMNS = ["code", "display", "status", "uses_total", "uses_left", "valid_from", "valid_until",
           "order_id", "created_at"]
_ROWS_PER_CHUNK = 2000


def coupons_csv(session: Session, campaign: Campaign, status: str | None = None) -> Iterator[str]:
    """The header, then every coupon of `campaign` (of `status`) in code order, a chunk of
    `_ROWS_PER_CHUNK` lines at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for n, row in enumerate(export_rows(session, campaign, status), start=1):
        writer.writerow([row.code, codes.display(row.code), row.status, row.uses_total, row.uses_left,
                         row.valid_from.isoformat(), row.valid_until.isoformat(), row.order_id or "",
                         row.created_at.isoformat()])
        if n % _ROWS_PER_CHUNK == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
