"""Scans at the till."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from .common import InputSchema, Text
from .coupons import CouponBrief, CouponOut, RedemptionSummary


class ScanIn(InputSchema):
    code = Text(64, metadata={"description": "typed code, any case, spaces and hyphens allowed"})
    qr = Text(512, metadata={"description": "the scanned QR text (CPN1....)"})
    store_id = fields.Str(load_default=None, allow_none=True, validate=validate.Length(1, 40),
                          metadata={"description": "implied by a store-pinned scanner key"})
    uses = fields.Int(strict=True, load_default=1, validate=validate.Range(1, 1000))
    device_id = Text(100, load_default=None, allow_none=True)

    @validates_schema
    def _one_of(self, data, **kwargs):
        if ("code" in data) == ("qr" in data):
            raise ValidationError("Send exactly one of code or qr.", "code")


class ValidationOut(Schema):
    ok = fields.Bool()
    code = fields.Str(allow_none=True, metadata={"description": "why a redeem would be refused"})
    detail = fields.Str(allow_none=True)
    coupon = fields.Nested(CouponOut)


class RedemptionOut(Schema):
    id = fields.Str()
    coupon = fields.Nested(CouponBrief)
    store_id = fields.Str()
    uses = fields.Int()
    device_id = fields.Str(allow_none=True)
    redeemed_at = fields.DateTime()


class ReverseIn(InputSchema):
    reason = fields.Str(required=True, validate=validate.Length(1, 500))


class ReversalOut(Schema):
    id = fields.Str()
    coupon = fields.Nested(CouponBrief)
    store_id = fields.Str()
    uses = fields.Int()
    redeemed_at = fields.DateTime()
    reversed_at = fields.DateTime()
    reversal_reason = fields.Str()


class RedemptionListArgs(InputSchema):
    code = fields.Str()
    store_id = fields.Str()
    limit = fields.Int(load_default=50, validate=validate.Range(1, 500))
    after = fields.Str(load_default=None)


class RedemptionRow(RedemptionSummary):
    coupon_code = fields.Str()
    campaign_id = fields.Str()


class AttemptListArgs(InputSchema):
    code = fields.Str()
    reason = fields.Str()
    store_id = fields.Str()
    api_key_id = fields.Str()
    limit = fields.Int(load_default=50, validate=validate.Range(1, 500))
    after = fields.Str(load_default=None)


class AttemptRow(Schema):
    id = fields.Str()
    action = fields.Str()
    reason = fields.Str()
    coupon_code = fields.Str(allow_none=True)
    raw_input = fields.Str()
    store_id = fields.Str(allow_none=True)
    api_key_id = fields.Str(allow_none=True)
    device_id = fields.Str(allow_none=True)
    client_address = fields.Str(allow_none=True)
    created_at = fields.DateTime()
