"""Redeeming a coupon at the till.

One conditional UPDATE decides: it can only match a coupon that is active, in
its validity, honoured at this store, with enough uses left, and belonging to
the caller's merchant. It locks and checks in one statement, so of any number
of concurrent scans of a single-use coupon exactly one matches. The redemption
row and the outbox event follow in the same transaction; the caller commits.
When nothing matched, `why_not` reads the coupon to say why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, case, exists, insert, or_, select, update
from sqlalchemy.orm import Session

from ..auth import PLATFORM, Principal
from ..errors import DomainError
from ..events import emit
from ..ids import new_id
from ..models import Campaign, Coupon, Redemption, Store, campaign_stores
from ..qr.keyring import KeyRing
from ..timeutil import utcnow
from .check import why_not
from .scan import Scan, Target, resolve

_COUPONS = Coupon.__table__
_CAMPAIGNS = Campaign.__table__


@dataclass(frozen=True)
class Redeemed:
    id: str
    coupon: dict[str, Any]
    store_id: str
    uses: int
    redeemed_at: datetime
    device_id: str | None


def redeem(session: Session, scan: Scan, ring: KeyRing) -> Redeemed:
    target = resolve(scan, ring)
    principal = scan.principal
    now = utcnow()
    row = session.execute(_statement(principal.role == PLATFORM, target.campaign_id is not None), {
        "p_code": target.code, "p_uses": scan.uses, "p_now": now, "p_store_id": target.store_id,
        "p_merchant_id": principal.merchant_id, "p_campaign_id": target.campaign_id,
    }).first()
    if row is None:
        raise refusal(session, principal, target, scan.uses, now)
    redemption_id = new_id("red")
    session.execute(_INSERT_REDEMPTION, {
        "id": redemption_id, "coupon_code": target.code, "campaign_id": row.campaign_id,
        "merchant_id": row.merchant_id, "store_id": target.store_id, "api_key_id": principal.key_id,
        "device_id": scan.device_id, "uses": scan.uses, "redeemed_at": now,
    })
    coupon = {
        "code": target.code, "status": row.status, "uses_total": row.uses_total,
        "uses_left": row.uses_left, "valid_from": row.valid_from, "valid_until": row.valid_until,
        "campaign_id": row.campaign_id, "order_id": row.order_id,
    }
    emit(session, "coupon.redeemed", merchant_id=row.merchant_id, coupon_code=target.code,
         coupon_seq=row.seq, data={
             "merchant_id": row.merchant_id,
             "coupon": {"code": target.code, "campaign_id": row.campaign_id,
                        "order_id": row.order_id, "uses_left": row.uses_left},
             "redemption": {"id": redemption_id, "store_id": target.store_id, "uses": scan.uses,
                            "redeemed_at": now.isoformat(), "device_id": scan.device_id},
             "campaign": {"id": row.campaign_id, "title": row.title, "price": row.price,
                          "currency": row.currency},
         })
    return Redeemed(id=redemption_id, coupon=coupon, store_id=target.store_id, uses=scan.uses,
                    redeemed_at=now, device_id=scan.device_id)


def refusal(session: Session, principal: Principal, target: Target, uses: int,
            now: datetime) -> DomainError:
    coupon = session.get(Coupon, target.code, populate_existing=True)
    if coupon is None or not principal.sees(coupon.merchant_id):
        return DomainError("coupon_not_found")
    if target.campaign_id is not None and coupon.campaign_id != target.campaign_id:
        return DomainError("invalid_qr", "the QR does not match this coupon's campaign")
    # A concurrent reversal can make a coupon redeemable between the UPDATE and this
    # read; the till then simply scans again.
    return why_not(session, coupon, target.store_id, uses, now) or DomainError(
        "coupon_already_redeemed", "the coupon changed while it was being redeemed; scan again")


_INSERT_REDEMPTION = insert(Redemption.__table__)


@cache
def _statement(any_merchant: bool, signed_campaign: bool):
    """The conditional UPDATE, built once per variant; values come as bound parameters."""
    c = _COUPONS.c
    links = campaign_stores.c
    now = bindparam("p_now", type_=c.valid_from.type)
    store_id, uses = bindparam("p_store_id"), bindparam("p_uses")
    conditions = [
        c.code == bindparam("p_code"),
        c.status == "active",
        c.uses_left >= uses,
        c.valid_from <= now,
        c.valid_until > now,
        exists().where(Store.id == store_id, Store.merchant_id == c.merchant_id),
        or_(
            ~exists().where(links.campaign_id == c.campaign_id),
            exists().where(links.campaign_id == c.campaign_id, links.store_id == store_id),
        ),
    ]
    if not any_merchant:
        conditions.append(c.merchant_id == bindparam("p_merchant_id"))
    if signed_campaign:
        conditions.append(c.campaign_id == bindparam("p_campaign_id"))

    def campaign(column):
        return select(column).where(_CAMPAIGNS.c.id == c.campaign_id).scalar_subquery()

    return (
        update(_COUPONS)
        .where(*conditions)
        .values(
            uses_left=c.uses_left - uses,
            status=case((c.uses_left - uses == 0, "redeemed"), else_=c.status),
            seq=c.seq + 1,
        )
        .returning(
            c.campaign_id, c.merchant_id, c.order_id, c.status, c.uses_total, c.uses_left,
            c.valid_from, c.valid_until, c.seq,
            campaign(_CAMPAIGNS.c.title).label("title"),
            campaign(_CAMPAIGNS.c.price).label("price"),
            campaign(_CAMPAIGNS.c.currency).label("currency"),
        )
    )
