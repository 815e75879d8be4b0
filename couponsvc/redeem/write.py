"""The writes of a redemption: the conditional UPDATE, the redemption row, the event.

The redeemable rule is stated once, as SQLAlchemy Core (`redeemable`): a coupon that
is active, in its validity, with enough uses left, of the caller's merchant (and of the
signed QR's campaign), honoured at a store of its merchant, scanned with a key that is
not revoked (so the redeem view need not ask the database about the key separately:
`requires_live_key_in_write`). What is asked (`Asked`) is bind parameters for one
redeem, or the columns of a table of scans for the offline batch (`batch_write.py`).

Two forms of the same writes, both built from that Core:
- PostgreSQL runs the UPDATE, the redemption, the event, its fan-out to the merchant's
  integrations (`outbox.fanout.insert_deliveries`) and, with an `Idempotency-Key`, the
  stored answer, as one statement of data-modifying CTEs: one round trip, which is most
  of what a redeem costs. It is compiled once per variant, with PostgreSQL's own
  placeholders for a redeem's own values and its constants written into the SQL, and
  sent straight through psycopg (SQLAlchemy's execution context cost more than the
  statement): on a connection of the statement pool, prepared under a name of its own
  and run through psycopg's libpq layer (`prepared.py`); on the session's connection,
  inside its transaction, through a `RawCursor`.
- SQLite cannot modify data inside a CTE and runs the same writes as statements in one
  transaction (`emit` fans out), where the caller's `unit_of_work` stores the answer.

On PostgreSQL the statement also refuses a caller whose failed-look-up budget is used up
(`Write.budgets`, rows of `lookup_blocks`: `ratelimit.py`), so a redeem needs no other
round trip to know it.

The idempotent form (`Write.claim`) writes the record of the key in the same statement
as the redemption, as a snapshot of the outcome (`redeem.redeemed_from`), only when the
key has no record yet: nothing is ever claimed without its answer, so a process dying
mid-request leaves either the redemption with its answer or nothing. Two concurrent
first requests with one key both see no record; the second's INSERT of the record waits
for the first to commit, then fails on the primary key, and its whole statement
(redemption and event included) with it: `KeyTaken`. When the statement changes
nothing, the caller's `unit_of_work` replays the record or stores the refusal.
tests/test_redeem_write.py holds the two forms to the same rows and payload.
"""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache, cached_property
from typing import Any

import psycopg
from psycopg import RawCursor
from psycopg.errors import UniqueViolation
from sqlalchemy import (
    Integer,
    Text,
    any_,
    bindparam,
    case,
    cast,
    exists,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session
from sqlalchemy.sql import ColumnElement

from ..models import (
    ApiKey,
    Campaign,
    Coupon,
    IdempotencyRecord,
    LookupBlock,
    Redemption,
    Store,
    campaign_stores,
)
from ..models.idempotency import Claim
from ..outbox import payload
from ..outbox.emit import emit, insert_events
from ..outbox.fanout import announce, insert_deliveries
from ..timeutil import to_utc
from . import prepared

SNAPSHOT = "redemption"  # the renderer of the answers this statement stores


class KeyTaken(Exception):
    """A concurrent request with the same Idempotency-Key committed first; nothing was written."""


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
    claim: Claim | None = None  # store the answer in the statement (PostgreSQL only)
    budgets: tuple[str, ...] = ()  # refused while one is in lookup_blocks (PostgreSQL only)


def write(session: Session, w: Write, connection: psycopg.Connection | None = None) -> Row | None:
    """Redeem if redeemable; the coupon and campaign columns, or None when nothing matched.

    `connection` (PostgreSQL): a psycopg connection in autocommit, lent for this one
    statement, which then commits itself; None: the statement runs on the session's."""
    if connection is not None:
        return _postgresql(session, w, connection)
    if session.get_bind().dialect.name == "postgresql":
        return _postgresql(session, w, session.connection().connection.driver_connection)
    return _portable(session, w)


_COUPONS = Coupon.__table__
_CAMPAIGNS = Campaign.__table__
_RECORDS = IdempotencyRecord.__table__
_BLOCKS = LookupBlock.__table__
_RETURNED = ("code", "campaign_id", "merchant_id", "order_id", "status", "uses_total", "uses_left",
             "valid_from", "valid_until", "seq")


def _param(name: str, type_=None):
    return bindparam(name, type_=type_)


@dataclass(frozen=True)
class Asked:
    """What a redeem asks for, as SQL expressions: which coupon, at which store, how many
    uses, the moment the coupon must be valid at, with which key, for which merchant (None:
    any, a platform key) and which signed campaign (None: a typed code)."""

    code: ColumnElement
    store_id: ColumnElement
    uses: ColumnElement
    at: ColumnElement
    api_key_id: ColumnElement
    merchant_id: ColumnElement | None
    campaign_id: ColumnElement | None


def _bound(any_merchant: bool, signed_campaign: bool) -> Asked:
    """One redeem's bind parameters (`_params`)."""
    return Asked(code=_param("p_code"), store_id=_param("p_store_id"), uses=_param("p_uses", Integer()),
                 at=_param("p_now", _COUPONS.c.valid_from.type), api_key_id=_param("p_api_key_id"),
                 merchant_id=None if any_merchant else _param("p_merchant_id"),
                 campaign_id=_param("p_campaign_id") if signed_campaign else None)


def redeemable(asked: Asked) -> list[ColumnElement]:
    """The conditions a coupon row must meet to be redeemed: the rule, stated once."""
    c = _COUPONS.c
    links = campaign_stores.c
    conditions = [
        c.code == asked.code,
        c.status == "active",
        c.uses_left >= asked.uses,
        c.valid_from <= asked.at,
        c.valid_until > asked.at,
        exists().where(Store.id == asked.store_id, Store.merchant_id == c.merchant_id),
        exists().where(ApiKey.id == asked.api_key_id, ApiKey.revoked_at.is_(None)),
        or_(
            ~exists().where(links.campaign_id == c.campaign_id),
            exists().where(links.campaign_id == c.campaign_id, links.store_id == asked.store_id),
        ),
    ]
    if asked.merchant_id is not None:
        conditions.append(c.merchant_id == asked.merchant_id)
    if asked.campaign_id is not None:
        # IS NOT DISTINCT FROM, which no index serves (campaign_id is never NULL, so it
        # means =): the coupon is found by its code alone. With `=`, PostgreSQL could
        # plan onto ix_coupons_campaign while its statistics had not yet seen a campaign
        # just issued, and read every coupon of it per redeem (tests/test_redeem_plan.py).
        conditions.append(c.campaign_id.is_not_distinct_from(asked.campaign_id))
    return conditions


def redeem_update(asked: Asked):
    """UPDATE coupons: take the uses asked of every redeemable coupon asked for."""
    c = _COUPONS.c
    return (
        update(_COUPONS)
        .where(*redeemable(asked))
        .values(uses_left=c.uses_left - asked.uses,
                status=case((c.uses_left - asked.uses == 0, "redeemed"), else_=c.status),
                seq=c.seq + 1)
    )


def _update(any_merchant: bool, signed_campaign: bool):
    return redeem_update(_bound(any_merchant, signed_campaign))


def _params(w: Write) -> dict[str, Any]:
    at = w.now.isoformat()
    params = {"p_code": w.code, "p_uses": w.uses, "p_now": w.now, "p_store_id": w.store_id,
              "p_merchant_id": w.merchant_id, "p_campaign_id": w.campaign_id,
              "p_api_key_id": w.api_key_id, "p_redemption_id": w.redemption_id,
              "p_event_id": w.event_id, "p_device_id": w.device_id,
              "p_redeemed_at": at, "p_scanned_at": at, "p_budgets": text_array(w.budgets)}
    if w.claim is not None:
        params.update(p_claim_api_key_id=w.claim.api_key_id, p_claim_key=w.claim.key,
                      p_claim_hash=w.claim.request_hash)
    return params


# ----------------------------------------------------------------------- PostgreSQL --
def _postgresql(session: Session, w: Write, raw: psycopg.Connection):
    statement = _postgresql_statement(w.merchant_id is None, w.campaign_id is not None,
                                      w.claim is not None)
    values = _params(w)
    params = [values[name] for name in statement.names]
    try:
        if raw.autocommit:  # a connection of the statement pool
            row = prepared.first_row(raw, statement.name, statement.query, params, statement.row._make)
        else:  # the session's, in its transaction
            with RawCursor(raw, row_factory=statement.rows) as cursor:
                row = cursor.execute(statement.query, params).fetchone()
    except UniqueViolation as error:
        if w.claim is None or error.diag.table_name != _RECORDS.name:
            raise
        raise KeyTaken() from None
    if row is None:
        return None
    announce(session, row.integration_ids or [])
    return row._replace(valid_from=to_utc(row.valid_from), valid_until=to_utc(row.valid_until))


def text_array(items: tuple[str, ...]) -> str:
    """`items` as PostgreSQL writes a `text[]` (`{"a","b"}`), every element quoted, for a
    `$n::TEXT[]` parameter: psycopg adapts a Python list through its list dumper, which
    looks for the elements' type on every call (some 2.5% of a redeem's instructions in
    the app); a string is sent as it is, and PostgreSQL's array input reads it."""
    quoted = ('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"' for item in items)
    return "{" + ",".join(quoted) + "}"


def _text(name: str) -> ColumnElement:
    return cast(_param(name), Text)


def _redemption_sql() -> ColumnElement:
    """The `redemption` object of the event and of the snapshot: what the request decided."""
    return payload.redemption_sql(
        id=_text("p_redemption_id"), store_id=_text("p_store_id"),
        uses=cast(_param("p_uses"), Integer), redeemed_at=_text("p_redeemed_at"),
        device_id=_text("p_device_id"), scanned_at=_text("p_scanned_at"), uploaded_at=None)


def _snapshot_sql(k) -> ColumnElement:
    """The outcome, for `redeem.redeemed_from` to draw the answer from again: the coupon
    as the UPDATE left it, under `row`, and the `redemption`."""
    pairs: list[Any] = []
    for name in _RETURNED:
        pairs += [literal_column(f"'{name}'"), getattr(k, name)]
    return cast(payload.json_object(literal_column("'row'"), payload.json_object(*pairs),
                                    literal_column("'redemption'"), _redemption_sql()), Text)


@dataclass(frozen=True)
class Compiled:
    """The statement as sent: its SQL (and as bytes, `query`), the names of its $1, $2, …
    (`_params`' keys), the row it returns as a named tuple, and the name it is prepared
    under on a connection of the statement pool (`prepared.py`)."""

    sql: str
    names: tuple[str, ...]
    row: type
    name: bytes

    @cached_property
    def query(self) -> bytes:
        """What psycopg is given: the SQL as bytes, encoded once. Given the text, psycopg
        encodes its 5 kB on every execution and hashes the new bytes to find the prepared
        statement; the hash of one bytes object is computed once."""
        return self.sql.encode()

    def rows(self, _cursor) -> Callable[[Sequence[Any]], Any]:
        """psycopg's row factory: the named tuple made once, where psycopg's `namedtuple_row`
        reads the cursor's description and looks its class up again on every execution."""
        return self.row._make


@cache
def _postgresql_statement(any_merchant: bool, signed_campaign: bool, idempotent: bool) -> Compiled:
    """The one statement, compiled once."""
    c = _COUPONS.c
    now = _param("p_now", c.valid_from.type)
    coupons = _update(any_merchant, signed_campaign)
    if idempotent:
        coupons = coupons.where(~exists().where(_RECORDS.c.api_key_id == _param("p_claim_api_key_id"),
                                                _RECORDS.c.key == _param("p_claim_key")))
    coupons = coupons.where(~exists().where(
        _BLOCKS.c.subject == any_(_param("p_budgets", postgresql.ARRAY(Text()))), _BLOCKS.c.until > now))
    changed = coupons.returning(*(c[name] for name in _RETURNED)).cte("c")
    m = _CAMPAIGNS.c
    k = (select(changed, m.title, m.price, m.currency)
         .join_from(changed, _CAMPAIGNS, m.id == changed.c.campaign_id).cte("k"))
    redemption = insert(Redemption.__table__).from_select(
        ["id", "coupon_code", "campaign_id", "merchant_id", "store_id", "api_key_id", "device_id",
         "uses", "redeemed_at", "scanned_at"],
        select(_param("p_redemption_id"), k.c.code, k.c.campaign_id, k.c.merchant_id,
               _param("p_store_id"), _param("p_api_key_id"), _param("p_device_id"),
               _param("p_uses", Integer()), now, now),
    ).cte("r")
    event = insert_events(
        select(_param("p_event_id"), literal("coupon.redeemed"), k.c.merchant_id, k.c.code, k.c.seq,
               payload.redeemed_sql(k.c, _redemption_sql()), now),
    ).cte("e")
    deliveries = insert_deliveries(event, now).cte("d")
    pending = (select(func.array_agg(deliveries.c.integration_id.distinct()))
               .where(deliveries.c.status == "pending").scalar_subquery())
    statement = select(k, pending.label("integration_ids")).add_cte(redemption, event, deliveries)
    if idempotent:
        record = insert(_RECORDS).from_select(
            ["api_key_id", "key", "request_hash", "status_code", "headers", "body", "renderer",
             "created_at"],
            select(_param("p_claim_api_key_id"), _param("p_claim_key"), _param("p_claim_hash"),
                   literal(201), literal("{}"), _snapshot_sql(k.c), literal(SNAPSHOT), now),
        ).cte("i")
        statement = statement.add_cte(record)
    sql, names = _constants_inline(statement.compile(dialect=_NATIVE_PLACEHOLDERS))
    variant = "".join("yn"[not flag] for flag in (any_merchant, signed_campaign, idempotent))
    return Compiled(sql, names, namedtuple("RedeemRow", [column.key for column in statement.selected_columns]),
                    f"couponsvc_redeem_{variant}".encode())


def _constants_inline(compiled) -> tuple[str, tuple[str, ...]]:
    """The statement with its constants (the values SQLAlchemy bound for literals such as
    'active' or 201) written into the SQL, and only a redeem's own values (`p_…`) left as
    parameters, renumbered: half as many for psycopg to adapt and PostgreSQL to bind."""
    names = tuple(compiled.positiontup)
    kept: list[str] = []
    number: dict[str, str] = {}
    for name in names:
        if name.startswith("p_"):
            if name not in number:
                kept.append(name)
                number[name] = f"${len(kept)}"
        else:
            number[name] = compiled.render_literal_value(compiled.params[name], compiled.binds[name].type)
    sql = re.sub(r"\$(\d+)\b", lambda m: number[names[int(m.group(1)) - 1]], str(compiled))
    return sql, tuple(kept)


# PostgreSQL's own $1 placeholders, as libpq and psycopg's RawCursor take them: psycopg
# parses a %(name)s query on every execution when it is longer than 4 kB (it caches only
# shorter ones), which cost more than a third of a millisecond per redeem.
_NATIVE_PLACEHOLDERS = postgresql.psycopg.dialect(paramstyle="numeric_dollar")


# --------------------------------------------------------------------------- SQLite --
def event_data(row: Row, w: Write) -> dict[str, Any]:
    """The data of `coupon.redeemed` (the SQL form: `payload.redeemed_sql`)."""
    return payload.redeemed(row, payload.redemption(
        id=w.redemption_id, store_id=w.store_id, uses=w.uses, redeemed_at=w.now.isoformat(),
        device_id=w.device_id, scanned_at=w.now.isoformat(), uploaded_at=None))


def _portable(session: Session, w: Write) -> Row | None:
    row = session.execute(_portable_update(w.merchant_id is None, w.campaign_id is not None),
                          _params(w)).first()
    if row is None:
        return None
    session.execute(_INSERT_REDEMPTION, {
        "id": w.redemption_id, "coupon_code": w.code, "campaign_id": row.campaign_id,
        "merchant_id": row.merchant_id, "store_id": w.store_id, "api_key_id": w.api_key_id,
        "device_id": w.device_id, "uses": w.uses, "redeemed_at": w.now, "scanned_at": w.now,
    })
    emit(session, "coupon.redeemed", merchant_id=row.merchant_id, coupon_code=w.code,
         coupon_seq=row.seq, data=event_data(row, w), event_id=w.event_id, created_at=w.now)
    return row


_INSERT_REDEMPTION = insert(Redemption.__table__)


@cache
def _portable_update(any_merchant: bool, signed_campaign: bool):
    """The conditional UPDATE, returning the coupon and its campaign's title and price."""
    c = _COUPONS.c

    def campaign(column):
        return select(column).where(_CAMPAIGNS.c.id == c.campaign_id).scalar_subquery()

    return _update(any_merchant, signed_campaign).returning(
        *(c[name] for name in _RETURNED),
        campaign(_CAMPAIGNS.c.title).label("title"),
        campaign(_CAMPAIGNS.c.price).label("price"),
        campaign(_CAMPAIGNS.c.currency).label("currency"),
    )
