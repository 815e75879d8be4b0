"""The HTTP API: one flask-smorest Blueprint per resource under /api/v1."""

from __future__ import annotations

from flask import Flask

from ..errors import DomainError
from ..extensions import api
from . import (
    campaigns,
    coupons,
    events,
    integrations,
    merchants,
    orders,
    redemptions,
    request_body,
    whoami,
)
from .operations import OperationsPlugin, add_examples
from .schemas.common import ProblemSchema, storable
from .webhooks_doc import document_events

BLUEPRINTS = (merchants.blp, campaigns.blp, orders.blp, coupons.blp, redemptions.blp, events.blp,
              integrations.blp, whoami.blp)


def register_api(app: Flask) -> None:
    api.ERROR_SCHEMA = ProblemSchema
    api.init_app(app, spec_kwargs={
        "extra_plugins": [OperationsPlugin(app)],
        "info": {"description": "Group-buying coupons: deals, tipping points, signed QR "
                 "coupons, redemption at the till. Errors are application/problem+json."},
    })
    if "bearerAuth" not in api.spec.components.security_schemes:
        api.spec.components.security_scheme("bearerAuth", {
            "type": "http", "scheme": "bearer",
            "description": "An API key (`cpn_<role>_...`), created once and shown once."})
        api.spec.options["security"] = [{"bearerAuth": []}]
    for blueprint in BLUEPRINTS:
        api.register_blueprint(blueprint)
    document_events(api.spec)
    add_examples(api.spec)
    app.url_value_preprocessor(_refuse_unstorable_path)
    app.before_request(request_body.check_body)


def _refuse_unstorable_path(endpoint, values) -> None:
    """A path segment with a NUL or a lone surrogate names nothing: 404, not a database error."""
    if values and not all(storable(value) for value in values.values() if isinstance(value, str)):
        raise DomainError("not_found", "No such object")
