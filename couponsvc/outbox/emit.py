"""Writing events to the outbox, inside the caller's transaction.

Each event's deliveries are written with it (`fanout.py`); the integrations are woken
only after the commit.
"""

from __future__ import annotations

from datetime import datetime
from secrets import token_hex
from typing import Any

from sqlalchemy import Insert, Select, Text, cast, insert, literal, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from ..ids import new_id
from ..models import Delivery, Event
from ..timeutil import utcnow
from .fanout import announce, fan_out, fan_out_from

_EVENTS = Event.__table__
_DELIVERIES = Delivery.__table__
_INSERT = insert(_EVENTS)


def emit(session: Session, type_: str, *, merchant_id: str | None, data: dict[str, Any],
         coupon_code: str | None = None, coupon_seq: int | None = None,
         event_id: str | None = None, created_at: datetime | None = None) -> str:
    """Add one event to the outbox in the current transaction; return its id."""
    event_id = event_id or new_id("evt")
    seq = _write(session, {
        "id": event_id, "type": type_, "merchant_id": merchant_id, "coupon_code": coupon_code,
        "coupon_seq": coupon_seq, "data": data, "created_at": created_at or utcnow(),
    })
    fan_out(session, [seq])
    return event_id


def _write(session: Session, row: dict[str, Any]) -> int:
    """Insert one event (every column of `EVENT_COLUMNS`); its `seq`."""
    _check(row["type"])
    return session.execute(_INSERT.returning(_EVENTS.c.seq), row).scalar_one()


def emit_many(session: Session, rows: list[dict[str, Any]]) -> None:
    """Add many events at once: each row has type, merchant_id, data (and coupon keys)."""
    if not rows:
        return
    for row in rows:
        _check(row["type"])
    now = utcnow()
    seqs = session.execute(_INSERT.returning(_EVENTS.c.seq), [
        {"id": new_id("evt"), "coupon_code": None, "coupon_seq": None, "created_at": now, **row}
        for row in rows
    ]).scalars().all()
    fan_out(session, seqs)


EVENT_COLUMNS = ("id", "type", "merchant_id", "coupon_code", "coupon_seq", "data", "created_at")


def insert_events(rows: Select) -> Insert:
    """INSERT the events of `rows` (a SELECT of `EVENT_COLUMNS`), RETURNING `seq`, `type`,
    `merchant_id` and `created_at`: what `fanout.insert_deliveries` takes, so one statement
    can write events and their deliveries as a chain of CTEs (the PostgreSQL redeem)."""
    return (insert(_EVENTS).from_select(list(EVENT_COLUMNS), rows)
            .returning(_EVENTS.c.seq, _EVENTS.c.type, _EVENTS.c.merchant_id, _EVENTS.c.created_at))


def emit_from(session: Session, type_: str, source: Select, now: datetime) -> int:
    """Events of one type, one per row of `source` (a SELECT of `merchant_id`,
    `coupon_code`, `coupon_seq` and `data`), written and fanned out set-based: one
    INSERT … SELECT for the events, one for their deliveries. The number written."""
    _check(type_)
    # evt_, 10 characters of time, 6 random: this batch's ids. Not the first 20 characters
    # of a new id: ids made in one millisecond share those (they differ in their last bits).
    batch = new_id("evt")[:14] + token_hex(3).upper()
    rows = source.subquery("source")
    seqs = session.execute(insert_events(
        select(cast(literal(batch), Text) + _random_hex(), literal(type_), rows.c.merchant_id,
               rows.c.coupon_code, rows.c.coupon_seq, rows.c.data, literal(now, _EVENTS.c.created_at.type))
    )).scalars().all()
    if seqs:
        e = _EVENTS.c
        # all of them at `now`: on PostgreSQL, one month's partition is read (migration 0015)
        written = select(e.seq, e.type, e.merchant_id, e.created_at).where(
            e.seq.between(min(seqs), max(seqs)), e.created_at == literal(now, e.created_at.type),
            e.id.startswith(batch, autoescape=True)).subquery("written")
        fan_out_from(session, written, now)
    return len(seqs)


class _random_hex(FunctionElement):  # noqa: N801
    """16 random hexadecimal digits (64 bits), upper case: the rest of an event id."""

    type = Text()
    inherit_cache = True


@compiles(_random_hex, "postgresql")
def _random_hex_postgresql(element, compiler, **kw):
    return "upper(substr(replace(CAST(gen_random_uuid() AS text), '-', ''), 1, 16))"


@compiles(_random_hex)
def _random_hex_sqlite(element, compiler, **kw):
    return "upper(hex(randomblob(8)))"


def emit_to(session: Session, integration_id: str, merchant_id: str, type_: str,
            data: dict[str, Any]) -> int:
    """An event for one integration alone (a test `ping`), not fanned out: the event and
    its one pending delivery, woken after commit. The delivery's id."""
    now = utcnow()
    seq = _write(session, {
        "id": new_id("evt"), "type": type_, "merchant_id": merchant_id, "coupon_code": None,
        "coupon_seq": None, "data": data, "created_at": now,
    })
    delivery_id = session.execute(insert(_DELIVERIES).returning(_DELIVERIES.c.id), {
        "event_seq": seq, "integration_id": integration_id, "merchant_id": merchant_id,
        "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now, "updated_at": now,
    }).scalar_one()
    announce(session, [integration_id])
    return delivery_id


def _check(type_: str) -> None:
    if type_ not in Event.TYPES:
        raise ValueError(f"unknown event type {type_!r}")
