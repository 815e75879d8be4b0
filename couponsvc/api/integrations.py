"""Adapters, a merchant's integrations, and the deliveries of events to them."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from sqlalchemy import select

from .. import integration_admin as manage
from .. import merchants
from ..adapters import adapter_named, descriptions
from ..extensions import db
from ..integration_credentials import full_config
from ..models import Delivery, DeliveryAttempt, Event, Integration
from ..principal import MANAGER, PLATFORM
from ..qr_keys import data_keys
from .bearer import current_principal, requires
from .blueprint import Blueprint
from .pagination import cursor_page
from .schemas.common import ListArgs, page_schema
from .schemas.integrations import (
    AdapterList,
    DeliveryListArgs,
    DeliveryOut,
    IntegrationIn,
    IntegrationOut,
    IntegrationPatch,
)
from .unit_of_work import unit_of_work

blp = Blueprint("integrations", __name__, url_prefix="/api/v1",
                description="ERP and social integrations, and deliveries of events to them")


@blp.route("/adapters")
class Adapters(MethodView):
    @requires(PLATFORM, MANAGER)
    @blp.response(200, AdapterList)
    def get(self):
        """Installed adapters, with the JSON Schema of each one's config."""
        return {"data": descriptions()}


@blp.route("/merchants/<merchant_id>/integrations")
class Integrations(MethodView):
    @requires(PLATFORM, MANAGER)
    @blp.arguments(ListArgs(), location="query")
    @blp.response(200, page_schema(IntegrationOut, "IntegrationPage"))
    def get(self, args, merchant_id):
        merchant = merchants.get_merchant(db.session, current_principal(), merchant_id)
        query = select(Integration).where(Integration.merchant_id == merchant.id)
        return cursor_page(query, Integration.id, after=args["after"], limit=args["limit"],
                           present=_integration)

    @requires(PLATFORM, MANAGER)
    @unit_of_work
    @blp.arguments(IntegrationIn())
    @blp.response(201, IntegrationOut)
    def post(self, data, merchant_id):
        """A webhook integration answers its signing `secret` here, once."""
        merchant = merchants.get_merchant(db.session, current_principal(), merchant_id)
        integration = manage.create_integration(
            db.session, merchant, keys=data_keys(),
            max_integrations=current_app.config["MAX_INTEGRATIONS_PER_MERCHANT"],
            allow_private_targets=current_app.config["ALLOW_PRIVATE_WEBHOOK_TARGETS"], **data)
        shown = _integration(integration)
        if integration.adapter == "webhook":  # its generated signing secret, this once
            shown["secret"] = full_config(integration, data_keys())["secret"]
        return shown


@blp.route("/integrations/<integration_id>")
class IntegrationById(MethodView):
    @requires(PLATFORM, MANAGER)
    @blp.response(200, IntegrationOut)
    def get(self, integration_id):
        return _integration(manage.get_integration(db.session, current_principal(), integration_id))

    @requires(PLATFORM, MANAGER)
    @unit_of_work
    @blp.arguments(IntegrationPatch())
    @blp.response(200, IntegrationOut)
    def patch(self, changes, integration_id):
        """Change config, events, timeout; `status: active` re-enables a disabled integration."""
        integration = manage.get_integration(db.session, current_principal(), integration_id)
        return _integration(manage.update_integration(db.session, integration, changes, data_keys(),
                                                      allow_private_targets=current_app.config["ALLOW_PRIVATE_WEBHOOK_TARGETS"]))


@blp.route("/integrations/<integration_id>/test")
class TestIntegration(MethodView):
    @requires(PLATFORM, MANAGER)
    @unit_of_work
    @blp.response(202, DeliveryOut)
    def post(self, integration_id):
        """Send a `ping` to this integration; follow the delivery it answers."""
        integration = manage.get_integration(db.session, current_principal(), integration_id)
        return _delivery(manage.send_test(db.session, integration))


@blp.route("/integrations/<integration_id>/deliveries")
class Deliveries(MethodView):
    @requires(PLATFORM, MANAGER)
    @blp.arguments(DeliveryListArgs(), location="query")
    @blp.response(200, page_schema(DeliveryOut, "DeliveryPage"))
    def get(self, args, integration_id):
        """Deliveries, newest first; `?status=pending|succeeded|retrying|dead|held` (`failed`:
        the same as `retrying`, its former name)."""
        integration = manage.get_integration(db.session, current_principal(), integration_id)
        query = manage.deliveries_query(integration, args.get("status"))
        return cursor_page(query, Delivery.id, after=args["after"], limit=args["limit"], integer=True,
                           descending=True, present=_delivery)


@blp.route("/deliveries/<delivery_id>")
class DeliveryById(MethodView):
    @requires(PLATFORM, MANAGER)
    @blp.response(200, DeliveryOut)
    def get(self, delivery_id):
        delivery = manage.get_delivery(db.session, current_principal(), delivery_id)
        attempts = db.session.execute(select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == delivery.id)
                                      .order_by(DeliveryAttempt.number)).scalars().all()
        return _delivery(delivery) | {"attempt_log": attempts}


@blp.route("/deliveries/<delivery_id>/retry")
class RetryDelivery(MethodView):
    @requires(PLATFORM, MANAGER)
    @unit_of_work
    @blp.response(202, DeliveryOut)
    def post(self, delivery_id):
        """Send a delivery again, now: a dead or retrying one for one more attempt, a succeeded
        one once more (same `webhook-id`). A held one answers 409 `invalid_state`."""
        delivery = manage.get_delivery(db.session, current_principal(), delivery_id)
        return _delivery(manage.retry_delivery(db.session, delivery))


def _integration(integration: Integration) -> dict:
    adapter = adapter_named(integration.adapter)
    config = adapter.config_schema().dump(integration.config) if adapter else {}
    return {"id": integration.id, "merchant_id": integration.merchant_id, "adapter": integration.adapter,
            "kind": getattr(adapter, "kind", None), "events": integration.events, "config": config,
            "status": integration.status, "timeout": integration.timeout,
            "disabled_reason": integration.disabled_reason, "disabled_at": integration.disabled_at,
            "created_at": integration.created_at}


def _delivery(delivery: Delivery) -> dict:
    event = db.session.get(Event, delivery.event_seq)
    return {"public_id": delivery.public_id, "integration_id": delivery.integration_id,
            "event_id": event.id, "event_type": event.type, "status": delivery.shown_status,
            "attempts": delivery.attempts,
            "next_attempt_at": delivery.next_attempt_at if delivery.status in Delivery.OPEN else None,
            "last_status_code": delivery.last_status_code, "last_response": delivery.last_response,
            "last_error": delivery.last_error, "created_at": delivery.created_at,
            "succeeded_at": delivery.succeeded_at}
