"""Integrations as a person reads them: the list (one merchant's, or every merchant's for the
platform), how many of each one's deliveries need attention, and each delivery's event and
attempts. Changes go through `couponsvc.integration_admin`, as the API's do.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from .models import Delivery, DeliveryAttempt, Event, Integration
from .principal import Principal

# Deliveries a person should look at: given up on, failing, or waiting for an enable.
ATTENTION = ("dead", "failed", "held")


def integrations_query(principal: Principal, *, merchant_id: str | None = None,
                       status: str | None = None, adapter: str | None = None) -> Select:
    """The integrations the principal sees, narrowed by merchant, status and adapter."""
    query = select(Integration)
    if principal.merchant_scope is not None:
        query = query.where(Integration.merchant_id == principal.merchant_scope)
    if merchant_id:
        query = query.where(Integration.merchant_id == merchant_id)
    if status:
        query = query.where(Integration.status == status)
    if adapter:
        query = query.where(Integration.adapter == adapter)
    return query


def attention_counts(session: Session, integration_ids: list[str]) -> dict[str, dict[str, int]]:
    """integration id -> {shown status -> count} of its deliveries in `ATTENTION`."""
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    if not integration_ids:
        return counts
    rows = session.execute(
        select(Delivery.integration_id, Delivery.status, func.count())
        .where(Delivery.integration_id.in_(integration_ids), Delivery.status.in_(ATTENTION))
        .group_by(Delivery.integration_id, Delivery.status))
    for integration_id, status, count in rows:
        counts[integration_id][Delivery.SHOWN.get(status, status)] = count
    return counts


def events_of(session: Session, deliveries: list[Delivery]) -> dict[int, Event]:
    """event seq -> the event each delivery carries."""
    seqs = sorted({delivery.event_seq for delivery in deliveries})
    if not seqs:
        return {}
    return {event.seq: event for event in session.execute(select(Event).where(Event.seq.in_(seqs))).scalars()}


def attempts_of(session: Session, deliveries: list[Delivery]) -> dict[int, list[DeliveryAttempt]]:
    """delivery id -> its attempts, first to last."""
    found: dict[int, list[DeliveryAttempt]] = defaultdict(list)
    ids = [delivery.id for delivery in deliveries]
    if not ids:
        return found
    for attempt in session.execute(select(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(ids))
                                   .order_by(DeliveryAttempt.delivery_id, DeliveryAttempt.number)).scalars():
        found[attempt.delivery_id].append(attempt)
    return found
