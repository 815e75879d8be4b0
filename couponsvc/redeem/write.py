"""The writes of a redemption: the conditional UPDATE, the redemption row, the event.

The UPDATE also checks that the scanning key is not revoked, so the redeem view
need not ask the database about the key separately (`requires_live_key_in_write`).

Two forms of the same three writes. PostgreSQL runs them, and the fan-out of the event to the merchant's
integrations, as one statement (data-modifying CTEs): one round trip instead of three, which is most of what a redeem
costs. SQLite cannot modify data inside a CTE and runs the same writes as three
statements in one transaction. The event data is defined twice, in `event_data`
and in `_POSTGRESQL`'s `json_build_object`; tests/test_redeem_write.py holds the
two to the same payload on both backends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from psycopg.rows import namedtuple_row
from sqlalchemy import bindparam, case, exists, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from ..deliveries.fanout import announce
from ..events import emit
from ..models import ApiKey, Campaign, Coupon, Redemption, Store, campaign_stores
from ..timeutil import to_utc


@dataclass(frozen=True)
class Write:
    code: str
    uses: int
    now: datetime
    store_id: str
    merchant_id: str | None  # None: a platform key, any merchant
    campaign_id: str | None  # from a signed QR, which must match
    redemption_id: str
    event_id: str
    api_key_id: str
    device_id: str | None


def write(session: Session, w: Write) -> Row | None:
    """Redeem if redeemable; the coupon and campaign columns, or None when nothing matched."""
    if session.get_bind().dialect.name == "postgresql":
        return _postgresql(session, w)
    return _portable(session, w)


def _postgresql(session: Session, w: Write):
    """The one statement, sent straight through psycopg on the session's connection
    (same transaction): SQLAlchemy's execution context cost more than the statement."""
    params = {"code": w.code, "uses": w.uses, "now": w.now, "store_id": w.store_id,
              "merchant_id": w.merchant_id, "campaign_id": w.campaign_id,
              "redemption_id": w.redemption_id, "event_id": w.event_id,
              "api_key_id": w.api_key_id, "device_id": w.device_id,
              "redeemed_at": w.now.isoformat()}
    raw = session.connection().connection.driver_connection
    with raw.cursor(row_factory=namedtuple_row) as cursor:
        row = cursor.execute(_POSTGRESQL, params).fetchone()
    if row is None:
        return None
    announce(session, row.integration_ids)
    return row._replace(valid_from=to_utc(row.valid_from), valid_until=to_utc(row.valid_until))


def event_data(row: Row, w: Write) -> dict[str, Any]:
    return {
        "merchant_id": row.merchant_id,
        "coupon": {"code": row.code, "campaign_id": row.campaign_id, "order_id": row.order_id,
                   "uses_left": row.uses_left, "seq": row.seq},
        "redemption": {"id": w.redemption_id, "store_id": w.store_id, "uses": w.uses,
                       "redeemed_at": w.now.isoformat(), "device_id": w.device_id},
        "campaign": {"id": row.campaign_id, "title": row.title, "price": row.price,
                     "currency": row.currency},
    }


_REDEEMABLE = """
    code = %(code)s AND status = 'active' AND uses_left >= %(uses)s
    AND valid_from <= %(now)s AND valid_until > %(now)s
    AND (CAST(%(merchant_id)s AS varchar) IS NULL OR merchant_id = %(merchant_id)s)
    AND (CAST(%(campaign_id)s AS varchar) IS NULL OR campaign_id = %(campaign_id)s)
    AND EXISTS (SELECT 1 FROM stores s WHERE s.id = %(store_id)s AND s.merchant_id = coupons.merchant_id)
    AND EXISTS (SELECT 1 FROM api_keys a WHERE a.id = %(api_key_id)s AND a.revoked_at IS NULL)
    AND (NOT EXISTS (SELECT 1 FROM campaign_stores l WHERE l.campaign_id = coupons.campaign_id)
         OR EXISTS (SELECT 1 FROM campaign_stores l
                    WHERE l.campaign_id = coupons.campaign_id AND l.store_id = %(store_id)s))
"""

_POSTGRESQL = f"""
WITH c AS (
    UPDATE coupons
       SET uses_left = uses_left - %(uses)s,
           status = CASE WHEN uses_left - %(uses)s = 0 THEN 'redeemed' ELSE status END,
           seq = seq + 1
     WHERE {_REDEEMABLE}
 RETURNING code, campaign_id, merchant_id, order_id, status, uses_total, uses_left,
           valid_from, valid_until, seq
), k AS (
    SELECT c.*, m.title, m.price, m.currency FROM c JOIN campaigns m ON m.id = c.campaign_id
), r AS (
    INSERT INTO redemptions (id, coupon_code, campaign_id, merchant_id, store_id, api_key_id,
                             device_id, uses, redeemed_at)
    SELECT %(redemption_id)s, code, campaign_id, merchant_id, %(store_id)s, %(api_key_id)s, %(device_id)s,
           %(uses)s, %(now)s
      FROM k
), e AS (
    INSERT INTO events (id, type, merchant_id, coupon_code, coupon_seq, data, created_at)
    SELECT %(event_id)s, 'coupon.redeemed', merchant_id, code, seq, json_build_object(
               'merchant_id', merchant_id,
               'coupon', json_build_object('code', code, 'campaign_id', campaign_id,
                                           'order_id', order_id, 'uses_left', uses_left,
                                           'seq', seq),
               'redemption', json_build_object(
                   'id', CAST(%(redemption_id)s AS text), 'store_id', CAST(%(store_id)s AS text),
                   'uses', CAST(%(uses)s AS integer), 'redeemed_at', CAST(%(redeemed_at)s AS text),
                   'device_id', CAST(%(device_id)s AS text)),
               'campaign', json_build_object('id', campaign_id, 'title', title, 'price', price,
                                             'currency', currency)),
           %(now)s
      FROM k
 RETURNING seq, merchant_id
), d AS (
    INSERT INTO deliveries (event_seq, integration_id, merchant_id, status, attempts,
                            next_attempt_at, created_at, updated_at)
    SELECT e.seq, i.id, i.merchant_id, 'pending', 0, %(now)s, %(now)s, %(now)s
      FROM e
      JOIN integration_subscriptions s ON s.event_type = 'coupon.redeemed'
      JOIN integrations i ON i.id = s.integration_id AND i.merchant_id = e.merchant_id
                         AND i.status = 'active'
 RETURNING integration_id
)
SELECT k.*, ARRAY(SELECT DISTINCT integration_id FROM d) AS integration_ids FROM k
"""


def _portable(session: Session, w: Write) -> Row | None:
    row = session.execute(_update(w.merchant_id is None, w.campaign_id is not None), {
        "p_code": w.code, "p_uses": w.uses, "p_now": w.now, "p_store_id": w.store_id,
        "p_merchant_id": w.merchant_id, "p_campaign_id": w.campaign_id,
        "p_api_key_id": w.api_key_id,
    }).first()
    if row is None:
        return None
    session.execute(_INSERT_REDEMPTION, {
        "id": w.redemption_id, "coupon_code": w.code, "campaign_id": row.campaign_id,
        "merchant_id": row.merchant_id, "store_id": w.store_id, "api_key_id": w.api_key_id,
        "device_id": w.device_id, "uses": w.uses, "redeemed_at": w.now,
    })
    emit(session, "coupon.redeemed", merchant_id=row.merchant_id, coupon_code=w.code,
         coupon_seq=row.seq, data=event_data(row, w), event_id=w.event_id, created_at=w.now)
    return row


_INSERT_REDEMPTION = insert(Redemption.__table__)
_COUPONS = Coupon.__table__
_CAMPAIGNS = Campaign.__table__


@cache
def _update(any_merchant: bool, signed_campaign: bool):
    """The conditional UPDATE as SQLAlchemy Core, built once per variant."""
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
        exists().where(ApiKey.id == bindparam("p_api_key_id"), ApiKey.revoked_at.is_(None)),
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
            c.code, c.campaign_id, c.merchant_id, c.order_id, c.status, c.uses_total, c.uses_left,
            c.valid_from, c.valid_until, c.seq,
            campaign(_CAMPAIGNS.c.title).label("title"),
            campaign(_CAMPAIGNS.c.price).label("price"),
            campaign(_CAMPAIGNS.c.currency).label("currency"),
        )
    )
