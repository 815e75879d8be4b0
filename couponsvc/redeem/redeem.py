"""Redeeming a coupon at the till.

One conditional UPDATE decides: it can only match a coupon that is active, in
its validity, honoured at this store, with enough uses left, and belonging to
the caller's merchant. It locks and checks in one statement, so of any number
of concurrent scans of a single-use coupon exactly one matches. The redemption
row and the outbox event are written with it (`write.py`: one statement on
PostgreSQL); the caller commits.
When nothing matched, `why_not` reads the coupon to say why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from .. import codes
from ..domain_error import DomainError, say
from ..ids import new_id
from ..lookup_blocks import refuse_if_used_up
from ..metrics.catalog import REDEEM_SECONDS, REDEMPTIONS
from ..metrics.outcomes import counted
from ..models import Coupon
from ..models.idempotency import Claim
from ..principal import Principal, key_is_live
from ..qr.keyring import KeyRing
from ..timeutil import to_utc, utcnow
from .check import why_not
from .scan import Scan, Target, resolve
from .write import KeyTaken, Write, write

if TYPE_CHECKING:
    import psycopg


@dataclass(frozen=True)
class Redeemed:
    id: str
    coupon: dict[str, Any]
    store_id: str
    uses: int
    redeemed_at: datetime
    device_id: str | None


@counted(REDEMPTIONS, "redeemed", seconds=REDEEM_SECONDS)
def redeem(session: Session, scan: Scan, ring: KeyRing, claim: Claim | None = None,
           connection: psycopg.Connection | None = None) -> Redeemed:
    """Redeem the scanned coupon. With a `claim` (PostgreSQL), the answer's snapshot is
    stored under that Idempotency-Key by the same statement (`write.py`); a concurrent
    request that holds the key is `idempotency_key_in_use`, and nothing was written.
    With a `connection` (PostgreSQL, in autocommit) the statement runs and commits on it."""
    now = utcnow()
    try:
        target = resolve(scan, ring)
    except DomainError:  # a mistyped code or a forged QR: refused by the budget first
        _refuse_over_budget(session, scan, now)
        raise
    principal = scan.principal
    w = Write(code=target.code, uses=scan.uses, now=now, store_id=target.store_id,
              merchant_id=principal.merchant_scope,
              campaign_id=target.campaign_id, redemption_id=new_id("red"), event_id=new_id("evt"),
              api_key_id=principal.key_id, device_id=scan.device_id, claim=claim,
              budgets=scan.budgets)
    try:
        row = write(session, w, connection)
    except KeyTaken:
        raise DomainError("idempotency_key_in_use", "Another request with this Idempotency-Key "
                          "was answered meanwhile") from None
    if row is None:
        if not key_is_live(session, principal.key_id):
            raise DomainError("unauthenticated", say("The API key was revoked"))
        _refuse_over_budget(session, scan, now)
        raise refusal(session, principal, target, scan.uses, w.now)
    return _redeemed(row._asdict(), {"id": w.redemption_id, "store_id": target.store_id,
                                     "uses": scan.uses, "redeemed_at": w.now, "device_id": scan.device_id})


def _refuse_over_budget(session: Session, scan: Scan, now: datetime) -> None:
    """429 while one of the caller's budgets is used up (the statement changes nothing
    then), rather than a refusal that would tell a guess that hit from one that missed."""
    if scan.budgets:
        refuse_if_used_up(session, scan.budgets, now)


def redeemed_from(snapshot: str) -> Redeemed:
    """The answer again, from the snapshot the idempotent statement stored (`write.py`)."""
    stored = json.loads(snapshot)
    row, redemption = stored["row"], stored["redemption"]
    for name in ("valid_from", "valid_until"):
        row[name] = to_utc(datetime.fromisoformat(row[name]))
    redemption["redeemed_at"] = datetime.fromisoformat(redemption["redeemed_at"])
    return _redeemed(row, redemption)


def _redeemed(row: dict[str, Any], redemption: dict[str, Any]) -> Redeemed:
    coupon = {
        "code": row["code"], "display": codes.grouped(row["code"]), "status": row["status"],
        "uses_total": row["uses_total"], "uses_left": row["uses_left"], "valid_from": row["valid_from"],
        "valid_until": row["valid_until"], "campaign_id": row["campaign_id"], "order_id": row["order_id"],
    }
    return Redeemed(id=redemption["id"], coupon=coupon, store_id=redemption["store_id"],
                    uses=redemption["uses"], redeemed_at=redemption["redeemed_at"],
                    device_id=redemption["device_id"])


def refusal(session: Session, principal: Principal, target: Target, uses: int,
            now: datetime) -> DomainError:
    coupon = session.get(Coupon, target.code, populate_existing=True)
    if coupon is None or not principal.sees(coupon.merchant_id):
        return DomainError("coupon_not_found")
    if target.campaign_id is not None and coupon.campaign_id != target.campaign_id:
        return DomainError("invalid_qr", say("the QR does not match this coupon's campaign"))
    # A concurrent reversal can make a coupon redeemable between the UPDATE and this
    # read; the till then simply scans again.
    return why_not(session, coupon, target.store_id, uses, now) or DomainError(
        "coupon_already_redeemed", say("the coupon changed while it was being redeemed; scan again"))
