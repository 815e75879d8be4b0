"""Reading and voiding coupons, and the revocation feed for offline scanners.

The feed pages by `revocations.seq`, which must then follow commit order, or a scanner
resuming after seq 6 would never see a seq 5 committed a moment later. On PostgreSQL,
transactions commit in another order than they take sequence numbers, so writers of
revocations take `lock_revocations` (a transaction-scoped advisory lock, held to the
commit) right before they insert: one at a time, each seq is taken after the previous
writer committed. Voids are rare next to reads; SQLite has one writer anyway.
"""

from __future__ import annotations

from sqlalchemy import insert, select, text, update
from sqlalchemy.orm import Session

from . import codes
from .domain_error import DomainError, say
from .models import Coupon, Redemption, Revocation
from .outbox import payload
from .outbox.emit import emit
from .principal import Principal
from .timeutil import utcnow


def find_coupon(session: Session, principal: Principal, raw_code: str) -> Coupon:
    try:
        code = codes.canonical(raw_code)
    except codes.CodeError:
        raise DomainError("invalid_code", say("the code is mistyped")) from None
    coupon = session.get(Coupon, code)
    if coupon is None or not principal.sees(coupon.merchant_id):
        raise DomainError("coupon_not_found")
    return coupon


def redemptions_of(session: Session, code: str) -> list[Redemption]:
    return list(session.execute(
        select(Redemption).where(Redemption.coupon_code == code).order_by(Redemption.redeemed_at)
    ).scalars())


def void_coupon(session: Session, principal: Principal, raw_code: str, reason: str = "") -> Coupon:
    coupon = find_coupon(session, principal, raw_code)
    now = utcnow()
    row = session.execute(
        update(Coupon.__table__)
        .where(Coupon.code == coupon.code, Coupon.status.in_(("pending", "active")))
        .values(status="voided", voided_at=now, void_reason=reason or None, seq=Coupon.seq + 1)
        .returning(Coupon.seq)
    ).first()
    session.refresh(coupon)
    if row is None:
        raise DomainError("invalid_state", say("a coupon that is %(status)s cannot be voided",
                                               status=coupon.status))
    lock_revocations(session)
    session.execute(insert(Revocation.__table__).values(
        code=coupon.code, merchant_id=coupon.merchant_id, reason="voided", created_at=now))
    emit(session, "coupon.voided", merchant_id=coupon.merchant_id, coupon_code=coupon.code,
         coupon_seq=row.seq, data=payload.voided(
             merchant_id=coupon.merchant_id, reason=reason, coupon_data=payload.coupon(
                 code=coupon.code, campaign_id=coupon.campaign_id, order_id=coupon.order_id,
                 uses_left=coupon.uses_left, seq=row.seq, status="voided")))
    return coupon


REVOCATION_WRITERS = 0x7265766F6B65  # any constant shared by every process of this service


def lock_revocations(session: Session) -> None:
    """Call right before inserting revocations: until this transaction ends, no other
    can insert one, so `revocations.seq` follows commit order (see the module's doc)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": REVOCATION_WRITERS})


def revocations_after(session: Session, merchant_id: str | None, after: int | None,
                      limit: int) -> tuple[list[Revocation], int]:
    """Up to `limit` revocations (of `merchant_id`, or all) after the cursor `after`,
    oldest first, and the cursor to resume from: the last row's, or `after` itself when
    there was none. Every page answers one, the last included, so an offline scanner
    that has read everything asks again later with it and gets only what is new."""
    query = select(Revocation)
    if merchant_id is not None:
        query = query.where(Revocation.merchant_id == merchant_id)
    if after is not None:
        query = query.where(Revocation.seq > after)
    rows = list(session.execute(query.order_by(Revocation.seq).limit(limit)).scalars())
    return rows, rows[-1].seq if rows else (after or 0)
