"""The writes of an offline batch, set-based: a few statements for the whole batch.

The scans go to the database as one JSON parameter read as a table (`json_table.py`),
and the redeem's own Core does the rest: `write.redeem_update` with that table's columns as what is asked (the
redeemable rule, stated once, judged at each scan's time), an INSERT … SELECT of the
redemptions, and the `coupon.redeemed` events with their deliveries through the outbox
(`outbox.emit.emit_from`, the data built in SQL by `outbox.payload`). Four statements,
however many scans; the same on both backends.

One UPDATE cannot take two scans' uses from one coupon row, so the caller sends at most
one scan per coupon at a time (`batch.py` makes rounds), and locks the coupons first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace

from sqlalchemy import FromClause, Integer, Text, func, insert, literal, select
from sqlalchemy.orm import Session

from ..models import Campaign, Coupon, Redemption
from ..outbox import payload
from ..outbox.emit import emit_from
from ..principal import Principal
from ..timeutil import UTCDateTime
from .json_table import TIME, json_table
from .write import Asked, redeem_update

_COUPONS = Coupon.__table__
_CAMPAIGNS = Campaign.__table__


@dataclass(frozen=True)
class Claimed:
    """A scan to redeem: its coupon, store and uses, when it was made, the campaign its QR
    signed (None for a typed code), and the id its redemption will have."""

    code: str
    store_id: str
    uses: int
    scanned_at: datetime
    campaign_id: str | None
    redemption_id: str
    device_id: str


def redeem_many(session: Session, principal: Principal, scans: list[Claimed], now: datetime) -> set[str]:
    """Redeem every scan whose coupon is redeemable at its store at its scan time, with its
    redemption and its `coupon.redeemed` event; the codes redeemed. At most one scan per
    coupon; the caller commits."""
    if not scans:
        return set()
    dialect = session.get_bind().dialect
    table = _scans(dialect, "p_scans", scans)
    c = _COUPONS.c
    asked = Asked(code=table.c.code, store_id=table.c.store_id, uses=table.c.uses,
                  at=table.c.scanned_at, api_key_id=literal(principal.key_id),
                  merchant_id=None if principal.merchant_scope is None else literal(principal.merchant_scope),
                  campaign_id=func.coalesce(table.c.campaign_id, c.campaign_id))
    done = set(session.execute(redeem_update(asked).returning(c.code)).scalars())
    if not done:
        return done
    redeemed = _scans(dialect, "p_redeemed", [scan for scan in scans if scan.code in done])
    both = redeemed.join(_COUPONS, c.code == redeemed.c.code)
    session.execute(insert(Redemption.__table__).from_select(
        ["id", "coupon_code", "campaign_id", "merchant_id", "store_id", "api_key_id", "device_id",
         "uses", "redeemed_at", "scanned_at", "uploaded_at"],
        select(redeemed.c.redemption_id, c.code, c.campaign_id, c.merchant_id, redeemed.c.store_id,
               literal(principal.key_id), redeemed.c.device_id, redeemed.c.uses,
               _at(now), redeemed.c.scanned_at, _at(now)).select_from(both)))
    m = _CAMPAIGNS.c
    columns = SimpleNamespace(code=c.code, campaign_id=c.campaign_id, order_id=c.order_id,
                              uses_left=c.uses_left, seq=c.seq, merchant_id=c.merchant_id,
                              title=m.title, price=m.price, currency=m.currency)
    data = payload.redeemed_sql(columns, payload.redemption_sql(
        id=redeemed.c.redemption_id, store_id=redeemed.c.store_id, uses=redeemed.c.uses,
        redeemed_at=now.isoformat(), device_id=redeemed.c.device_id,
        scanned_at=redeemed.c.scanned_iso, uploaded_at=now.isoformat()))
    emit_from(session, "coupon.redeemed", select(
        c.merchant_id, c.code.label("coupon_code"), c.seq.label("coupon_seq"), data.label("data"),
    ).select_from(both.join(_CAMPAIGNS, m.id == c.campaign_id)), now)
    return done


def _at(moment: datetime):
    return literal(moment, UTCDateTime())


_COLUMNS = (("code", Text()), ("store_id", Text()), ("uses", Integer()), ("scanned_at", TIME),
            ("scanned_iso", Text()), ("campaign_id", Text()), ("redemption_id", Text()),
            ("device_id", Text()))


def _scans(dialect, name: str, scans: list[Claimed]) -> FromClause:
    """The scans as a table (`_COLUMNS`); `scanned_iso` is the ISO text the event carries."""
    return json_table(dialect, name, _COLUMNS, [
        {"code": s.code, "store_id": s.store_id, "uses": s.uses, "scanned_at": s.scanned_at,
         "scanned_iso": s.scanned_at.isoformat(), "campaign_id": s.campaign_id,
         "redemption_id": s.redemption_id, "device_id": s.device_id} for s in scans])
