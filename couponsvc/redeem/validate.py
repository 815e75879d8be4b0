"""What a redeem would do, changing nothing."""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy.orm import Session

from ..domain_error import DomainError, say
from ..models import Coupon
from ..qr.keyring import KeyRing
from ..timeutil import utcnow
from .check import why_not
from .scan import Scan, resolve


@dataclass(frozen=True)
class Validation:
    ok: bool
    code: str | None
    detail: str | None
    coupon: Coupon


def validate(session: Session, scan: Scan, ring: KeyRing) -> Validation:
    """Look-up failures raise (as redeem would); a coupon's own refusal comes back as
    `ok: false`, and so does `store_not_allowed`, whether or not the key is pinned to a
    store (a pinned key naming another store is refused by redeem before any look-up)."""
    pinned = scan.principal.store_id
    elsewhere = pinned is not None and scan.store_id is not None and scan.store_id != pinned
    target = resolve(replace(scan, store_id=None) if elsewhere else scan, ring)
    coupon = session.get(Coupon, target.code)
    if coupon is None or not scan.principal.sees(coupon.merchant_id):
        raise DomainError("coupon_not_found")
    if target.campaign_id is not None and coupon.campaign_id != target.campaign_id:
        raise DomainError("invalid_qr", say("the QR does not match this coupon's campaign"))
    if elsewhere:
        refusal = DomainError("store_not_allowed", say("this scanner key is pinned to another store"))
    else:
        refusal = why_not(session, coupon, target.store_id, scan.uses, utcnow())
    if refusal is None:
        return Validation(ok=True, code=None, detail=None, coupon=coupon)
    return Validation(ok=False, code=refusal.code, detail=refusal.detail, coupon=coupon)
