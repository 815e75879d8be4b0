"""Refused attempts are stored, after the rollback, so a manager sees who tried what."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from .. import codes
from ..domain_error import DomainError
from ..models import RedemptionAttempt
from ..timeutil import utcnow
from .scan import Scan

INSERT_ATTEMPTS = insert(RedemptionAttempt.__table__)


def record_refusal(session: Session, scan: Scan, action: str, error: DomainError) -> None:
    session.execute(INSERT_ATTEMPTS.values(attempt_row(scan, action, error.code, utcnow())))


def attempt_row(scan: Scan, action: str, reason: str, now: datetime,
                scanned_at: datetime | None = None) -> dict[str, Any]:
    """The attempt of `scan` refused for `reason` (`scanned_at`: when a scan made offline
    was made), as a row of `redemption_attempts`; many go in at once with `INSERT_ATTEMPTS`."""
    principal = scan.principal
    return {
        "merchant_id": principal.merchant_id, "coupon_code": _code_of(scan), "action": action,
        "reason": reason, "raw_input": scan.raw[:300],
        "store_id": (scan.store_id or principal.store_id or "")[:40] or None,
        "api_key_id": principal.key_id, "device_id": scan.device_id[:100] if scan.device_id else None,
        "client_address": scan.client_address, "created_at": now, "scanned_at": scanned_at,
    }


def _code_of(scan: Scan) -> str | None:
    raw = scan.code
    if raw is None and scan.qr:
        parts = scan.qr.strip().split(".")
        raw = parts[1] if len(parts) == 5 else None
    if raw is None:
        return None
    try:
        return codes.canonical(raw)
    except codes.CodeError:
        return None
