"""Adapters, integrations, deliveries."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from ...models import Delivery
from .common import InputSchema


class AdapterOut(Schema):
    name = fields.Str()
    kind = fields.Str(metadata={"description": "erp | social"})
    events = fields.List(fields.Str())
    config_schema = fields.Dict(metadata={"description": "JSON Schema of the adapter's config"})


class AdapterList(Schema):
    data = fields.List(fields.Nested(AdapterOut))


class IntegrationIn(InputSchema):
    adapter = fields.Str(required=True, validate=validate.Length(1, 64))
    config = fields.Dict(required=True, metadata={"description": "as the adapter's config_schema "
                                                  "says; its credentials are never answered back"})
    events = fields.List(fields.Str(validate=validate.Length(1, 40)), load_default=list,
                         metadata={"description": "event types to receive; empty: all the adapter handles"})
    timeout = fields.Float(load_default=15.0, metadata={"description": "seconds per call, at most 60"})


class IntegrationPatch(InputSchema):
    config = fields.Dict()
    events = fields.List(fields.Str(validate=validate.Length(1, 40)))
    timeout = fields.Float()
    status = fields.Str(validate=validate.OneOf(["active", "disabled"]))


class IntegrationOut(Schema):
    id = fields.Str()
    merchant_id = fields.Str()
    adapter = fields.Str()
    kind = fields.Str()
    events = fields.List(fields.Str())
    config = fields.Dict(metadata={"description": "without its credentials: they are write-only "
                                   "(writeOnly in GET /adapters) and stored encrypted"})
    status = fields.Str(metadata={"description": "active | disabled"})
    timeout = fields.Float()
    disabled_reason = fields.Str(allow_none=True)
    disabled_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    secret = fields.Str(metadata={"description": "the webhook signing secret (whsec_...): "
                                  "in the creating response only"})


class DeliveryListArgs(InputSchema):
    status = fields.Str(validate=validate.OneOf(Delivery.SHOWN_STATUSES),
                        metadata={"description": "`failed` finds the `retrying` ones (its former name)"})
    limit = fields.Int(load_default=50, validate=validate.Range(1, 500))
    after = fields.Str(load_default=None, validate=validate.Length(max=40))


class AttemptOut(Schema):
    number = fields.Int()
    started_at = fields.DateTime()
    duration_ms = fields.Int()
    status_code = fields.Int(allow_none=True)
    response = fields.Str(allow_none=True)
    error = fields.Str(allow_none=True)
    outcome = fields.Str()


class DeliveryOut(Schema):
    id = fields.Str(attribute="public_id")
    integration_id = fields.Str()
    event_id = fields.Str()
    event_type = fields.Str()
    status = fields.Str(metadata={"description": "pending | succeeded | retrying (it failed; its next try "
                                                 "is at next_attempt_at) | dead | held"})
    attempts = fields.Int()
    next_attempt_at = fields.DateTime(allow_none=True)
    last_status_code = fields.Int(allow_none=True)
    last_response = fields.Str(allow_none=True)
    last_error = fields.Str(allow_none=True)
    created_at = fields.DateTime()
    succeeded_at = fields.DateTime(allow_none=True)
    attempt_log = fields.List(fields.Nested(AttemptOut), metadata={"description": "GET /deliveries/{id} only"})
