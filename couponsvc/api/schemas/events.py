"""The outbox, read back in order."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from ...models import Event
from .common import InputSchema


class EventListArgs(InputSchema):
    after = fields.Str(load_default=None)
    type = fields.Str(validate=validate.OneOf(Event.TYPES))
    limit = fields.Int(load_default=50, validate=validate.Range(1, 500))


class EventOut(Schema):
    id = fields.Str()
    type = fields.Str()
    created_at = fields.DateTime()
    merchant_id = fields.Str(allow_none=True)
    coupon_seq = fields.Int(allow_none=True)
    data = fields.Dict()
    coupon_code = fields.Str(allow_none=True)
    cursor = fields.Function(lambda event: str(event.position),
                             metadata={"description": "pass as ?after= to resume after this event"})
