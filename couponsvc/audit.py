"""The audit log: who did what in the admin, when, from which address. No Flask here.

Every admin action that changes something writes one `AuditEntry` in the transaction of
the change (`record`; the caller commits), and so do sign-ins, refused sign-ins and
lock-outs. `entries` reads them back for the audit page, newest first, with a cursor:
an operator sees every entry (or one merchant's), a manager only their merchant's.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from .domain_error import DomainError, say
from .models import AuditEntry
from .principal import Principal
from .stored_text import clean, storable
from .timeutil import to_utc, utcnow


def record(session: Session, principal: Principal | None, action: str, *, target_type: str = "",
           target_id: str | None = "", merchant_id: str | None = None, address: str = "",
           email: str = "", detail: dict[str, Any] | None = None,
           at: datetime | None = None) -> AuditEntry:
    """Add an entry (the caller commits). `principal` is None for someone not signed in
    (a refused sign-in); `email` is the person's, or the one typed."""
    entry = AuditEntry(at=at or utcnow(), user_id=principal.user_id if principal else None,
                       user_email=clean(email)[:320], merchant_id=merchant_id, action=action[:64],
                       target_type=clean(target_type)[:32], target_id=clean(str(target_id or ""))[:64],
                       address=clean(address)[:64], detail=_plain(detail or {}))
    session.add(entry)
    return entry


def _plain(value: Any) -> Any:
    """What JSON can hold: datetimes as ISO text, other unknown values as text."""
    if isinstance(value, dict):
        return {clean(str(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return clean(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


@dataclass(frozen=True)
class Page:
    entries: list[AuditEntry]
    next: str | None


def entries(session: Session, principal: Principal, *, merchant_id: str | None = None,
            action: str | None = None, after: str | None = None, limit: int = 50) -> Page:
    """The entries the principal may see, newest first, from just after the cursor `after`.

    A manager sees their merchant's entries whatever `merchant_id` says; an operator every
    entry, or one merchant's. `action` matches a whole action (`person.create`) or its
    family (`person`). A cursor that is not one of ours is `validation_error`.
    """
    if not all(storable(value) for value in (merchant_id or "", action or "", after or "")):
        raise DomainError("validation_error", say("The request is not valid"),
                          errors={"query": [say("Contains a character that cannot be stored "
                                                "(NUL or a lone surrogate).")]})
    query = select(AuditEntry)
    scope = principal.merchant_scope
    if scope is not None:
        query = query.where(AuditEntry.merchant_id == scope)
    elif merchant_id:
        query = query.where(AuditEntry.merchant_id == merchant_id)
    if action:
        query = query.where(or_(AuditEntry.action == action,
                                AuditEntry.action.startswith(f"{action}.", autoescape=True)))
    if after:
        at, entry_id = _decode(after)
        query = query.where(or_(AuditEntry.at < at, and_(AuditEntry.at == at, AuditEntry.id < entry_id)))
    rows = list(session.scalars(query.order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
                                .limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(entries=rows, next=_encode(rows[-1]) if more else None)


def actions(session: Session, principal: Principal) -> list[str]:
    """The actions there are entries of (for the filter), within what the principal sees."""
    query = select(AuditEntry.action).distinct()
    if principal.merchant_scope is not None:
        query = query.where(AuditEntry.merchant_id == principal.merchant_scope)
    return sorted(session.scalars(query.limit(500)))


def _encode(entry: AuditEntry) -> str:
    raw = f"{to_utc(entry.at).isoformat()}|{entry.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, entry_id = raw.split("|", 1)
        moment = to_utc(datetime.fromisoformat(at))
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise DomainError("validation_error", say("The cursor is not valid"),
                          errors={"after": [say("Not a cursor of this list.")]}) from None
    if not entry_id.startswith("aud_") or len(entry_id) > 40 or not storable(entry_id):
        raise DomainError("validation_error", say("The cursor is not valid"),
                          errors={"after": [say("Not a cursor of this list.")]})
    return moment, entry_id
