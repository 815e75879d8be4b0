"""Integrations as a merchant manages them: create, change, test, and retry a delivery (the
deliveries are written by `couponsvc/outbox/` and drained by `couponsvc/deliveries/`)."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from integrations.targets import TargetRefused, check_url

from . import integration_credentials as credentials
from .adapters import adapter_named
from .data_keys import DataKeys
from .domain_error import DomainError, say_n
from .models import Delivery, Integration, Merchant, Subscription
from .outbox.emit import emit_to
from .outbox.fanout import announce
from .outbox.hold import disable, enable
from .principal import Principal, visible
from .timeutil import utcnow

MAX_TIMEOUT = 60.0


def create_integration(session: Session, merchant: Merchant, *, adapter: str, config: dict[str, Any],
                       events: list[str] | None, keys: DataKeys, max_integrations: int, allow_private_targets: bool,
                       timeout: float = 15.0) -> Integration:
    """The new integration, its credentials encrypted under `keys`; its URLs must be public
    unless the operator allows private targets (COUPONSVC_ALLOW_PRIVATE_WEBHOOK_TARGETS)."""
    _refuse_past_cap(session, merchant, max_integrations)
    chosen = _adapter(adapter)
    integration = Integration(merchant_id=merchant.id, adapter=adapter, status="active",
                              events=_events(chosen, events), timeout=_timeout(timeout))
    credentials.store(integration, chosen, _load_config(chosen, config, allow_private_targets), keys)
    session.add(integration)
    session.flush()
    _subscribe(session, integration)
    return integration



def _refuse_past_cap(session: Session, merchant: Merchant, max_integrations: int) -> None:
    """A merchant has at most `max_integrations` (COUPONSVC_MAX_INTEGRATIONS_PER_MERCHANT):
    each one is a drain and outbound calls for every event."""
    count = session.execute(select(func.count()).select_from(Integration)
                            .where(Integration.merchant_id == merchant.id)).scalar_one()
    if count >= max_integrations:
        raise DomainError("too_many_integrations",
                          say_n("this merchant has %(num)d integration, the most allowed is "
                                "%(limit)d; change or disable one instead",
                                "this merchant has %(num)d integrations, the most allowed is "
                                "%(limit)d; change or disable one instead", count,
                                limit=max_integrations),
                          limit=max_integrations)


def update_integration(session: Session, integration: Integration, changes: dict[str, Any],
                       keys: DataKeys, *, allow_private_targets: bool) -> Integration:
    chosen = _adapter(integration.adapter)
    if "config" in changes:
        # keep credentials not sent again
        merged = {**credentials.full_config(integration, keys), **changes["config"]}
        credentials.store(integration, chosen, _load_config(chosen, merged, allow_private_targets), keys)
    if "events" in changes:
        integration.events = _events(chosen, changes["events"])
        _subscribe(session, integration)
    if "timeout" in changes:
        integration.timeout = _timeout(changes["timeout"])
    if changes.get("status") == "active":
        enable(session, integration)  # what was held while it was disabled goes out now, in order
    elif changes.get("status") == "disabled":
        disable(session, integration, "disabled by the merchant", utcnow())
    session.flush()
    return integration


def get_integration(session: Session, principal: Principal, integration_id: str) -> Integration:
    return visible(session, principal, Integration, integration_id, name="integration")


def get_delivery(session: Session, principal: Principal, delivery_id: str) -> Delivery:
    """The delivery of public id `delivery_id` (`dlv_…`), when the principal may see it."""
    key = session.execute(select(Delivery.id).where(Delivery.public_id == delivery_id)).scalar()
    return visible(session, principal, Delivery, key, name="delivery")


def send_test(session: Session, integration: Integration) -> Delivery:
    """A `ping` to this integration alone, as the first attempt of a new delivery."""
    if integration.status != "active":
        raise DomainError("invalid_state", "a disabled integration cannot be tested; enable it first")
    delivery_id = emit_to(session, integration.id, integration.merchant_id, "ping", {
        "integration": {"id": integration.id, "adapter": integration.adapter},
        "message": "couponsvc test delivery",
    })
    return session.get(Delivery, delivery_id)


def retry_delivery(session: Session, delivery: Delivery) -> Delivery:
    """Send a delivery again, now: a dead or failing one one more time, a succeeded one
    once more (a receiver that lost it asks again; the same event id, so the same
    `webhook-id`). A held one waits for its integration to be enabled."""
    if delivery.status == "held":
        raise DomainError("invalid_state", "the delivery is held while its integration is disabled; "
                                           "enable the integration and it is sent")
    now = utcnow()
    delivery.status, delivery.next_attempt_at, delivery.lease_until = "pending", now, None
    delivery.updated_at = now
    session.flush()
    announce(session, [delivery.integration_id])
    return delivery


def _adapter(name: str):
    chosen = adapter_named(name)
    if chosen is None:
        raise DomainError("validation_error", f"no adapter named {name!r} is installed",
                          errors={"adapter": ["No such adapter; see GET /adapters."]})
    return chosen


def _load_config(adapter, config: dict[str, Any], allow_private_targets: bool) -> dict[str, Any]:
    try:
        loaded = adapter.config_schema().load(config)
    except ValidationError as error:
        raise DomainError("validation_error", "the adapter's config is not valid",
                          errors={"config": error.messages}) from None
    if not allow_private_targets:
        for field, value in loaded.items():
            if isinstance(value, str) and "://" in value:  # any scheme, any case: HTTP://10.0.0.5 too
                try:
                    check_url(value)
                except (TargetRefused, ValueError) as refused:
                    raise DomainError("validation_error", str(refused),
                                      errors={"config": {field: [str(refused)]}}) from None
                except OSError:
                    pass  # a name that does not resolve yet is checked again at delivery
    return loaded


def _events(adapter, events: list[str] | None) -> list[str]:
    if not events:
        return sorted(adapter.events)
    unknown = sorted(set(events) - set(adapter.events))
    if unknown:
        raise DomainError("validation_error", f"{adapter.name} does not handle {', '.join(unknown)}",
                          errors={"events": [f"Not handled by {adapter.name}: {', '.join(unknown)}."]})
    return sorted(set(events))


def _timeout(seconds: float) -> float:
    if not 0 < seconds <= MAX_TIMEOUT:
        raise DomainError("validation_error", f"timeout must be between 0 and {MAX_TIMEOUT} s",
                          errors={"timeout": [f"Must be more than 0 and at most {MAX_TIMEOUT}."]})
    return float(seconds)


def _subscribe(session: Session, integration: Integration) -> None:
    session.execute(delete(Subscription).where(Subscription.integration_id == integration.id))
    session.execute(insert(Subscription), [
        {"integration_id": integration.id, "event_type": event_type} for event_type in integration.events
    ])


def deliveries_query(integration: Integration, status: str | None):
    """The integration's deliveries, of one status as clients name it (`Delivery.shown_status`):
    `retrying` and its former name `failed` are the same deliveries."""
    query = select(Delivery).where(Delivery.integration_id == integration.id)
    if status:
        query = query.where(Delivery.status == Delivery.stored_status(status))
    return query
