"""Orders, coupons, bulk issuance jobs, revocations."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from .common import InputSchema, ListArgs, Name, Text


class OrderIn(InputSchema):
    customer_ref = Name(200, required=True, metadata={
        "description": "the buyer; compared trimmed and case-folded for per_customer_limit"})
    quantity = fields.Int(strict=True, load_default=1, validate=validate.Range(1, 1000))
    payment_ref = Text(200, load_default="")


class OrderListArgs(ListArgs):
    campaign_id = Text(40)
    customer_ref = Name(400, metadata={"description": "matched trimmed and case-folded, as orders store it"})
    payment_ref = Text(200)


class IssuedCouponOut(Schema):
    code = fields.Str(metadata={"description": "canonical code; `display` is the grouped form"})
    display = fields.Str()
    status = fields.Str()
    qr_url = fields.Str()
    qr_payload = fields.Str()


class OrderOut(Schema):
    id = fields.Str()
    campaign_id = fields.Str()
    status = fields.Str(metadata={"description": "pending (deal not tipped) | confirmed | refund_pending"})
    customer_ref = fields.Str()
    quantity = fields.Int()
    payment_ref = fields.Str()
    created_at = fields.DateTime()
    coupons = fields.List(fields.Nested(IssuedCouponOut))


class RedemptionSummary(Schema):
    id = fields.Str()
    store_id = fields.Str()
    api_key_id = fields.Str()
    device_id = fields.Str(allow_none=True)
    uses = fields.Int()
    redeemed_at = fields.DateTime()
    reversed_at = fields.DateTime(allow_none=True)
    reversal_reason = fields.Str(allow_none=True)


class CouponBrief(Schema):
    code = fields.Str()
    display = fields.Str()
    status = fields.Str(metadata={"description": "pending | active | redeemed | voided | expired"})
    uses_total = fields.Int()
    uses_left = fields.Int()
    valid_from = fields.DateTime()
    valid_until = fields.DateTime()
    campaign_id = fields.Str()
    order_id = fields.Str(allow_none=True)


class CouponOut(CouponBrief):
    qr_url = fields.Str()
    qr_payload = fields.Str()
    redemptions = fields.List(fields.Nested(RedemptionSummary))


class VoidIn(InputSchema):
    reason = Text(500, load_default="")


class BulkIn(InputSchema):
    count = fields.Int(strict=True, required=True, validate=validate.Range(min=1), metadata={
        "description": "at most COUPONSVC_BULK_MAX (1,000,000 unless set)"})


class JobOut(Schema):
    id = fields.Str()
    kind = fields.Str()
    status = fields.Str(metadata={"description": "queued | running | succeeded | failed"})
    campaign_id = fields.Str(allow_none=True)
    requested = fields.Int()
    done = fields.Int()
    error = fields.Str(allow_none=True)
    created_at = fields.DateTime()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    csv_url = fields.Str(allow_none=True)


class QrArgs(InputSchema):
    scale = fields.Int(load_default=None, validate=validate.Range(1, 40),
                       metadata={"description": "pixels per module: 8 for a phone, 20-40 for print"})
    token = fields.Str(load_default=None, validate=validate.Length(max=100), metadata={
        "description": "the token of the coupon's `qr_url`; not needed with an API key that sees the coupon"})


class RevocationOut(Schema):
    code = fields.Str()
    reason = fields.Str()
    revoked_at = fields.DateTime(attribute="created_at")


class CsvArgs(InputSchema):
    status = fields.Str(validate=validate.OneOf(["pending", "active", "redeemed", "voided"]))
