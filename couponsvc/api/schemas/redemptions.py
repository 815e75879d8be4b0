"""Scans at the till."""

from __future__ import annotations

from datetime import UTC

from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates_schema

from ...redeem.batch import ACCEPTED, CONFLICTED, DUPLICATE, MAX_ITEMS, REJECTED
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
    scanned_at = fields.DateTime(metadata={
        "description": "when the till scanned the coupon: `redeemed_at` online, the device's time offline"})
    uploaded_at = fields.DateTime(allow_none=True, metadata={
        "description": "when a scan made offline was uploaded (`POST /redemptions/batch`); null online"})


def _a_plausible_time(value) -> None:
    try:
        year = value.astimezone(UTC).year
    except (OverflowError, ValueError):
        year = 0
    if not 2000 <= year <= 9998:
        raise ValidationError("Not a plausible time.")


class BatchItemIn(InputSchema):
    """One scan made offline, as the device queued it."""

    code = Text(64, metadata={"description": "typed code (cannot be verified offline; prefer qr)"})
    qr = Text(512, metadata={"description": "the scanned QR text (CPN1....), verified on the device"})
    store_id = fields.Str(load_default=None, allow_none=True, validate=validate.Length(1, 40),
                          metadata={"description": "implied by a store-pinned scanner key"})
    scanned_at = fields.AwareDateTime(required=True, validate=_a_plausible_time, metadata={
        "description": "when the device scanned it, with its offset; at most 5 minutes ahead of the "
                       "service's clock"})
    device_id = fields.Str(required=True, validate=validate.Length(1, 100))
    nonce = fields.Str(required=True, validate=validate.Length(1, 100), metadata={
        "description": "the device's id of this scan: the same (device_id, nonce) again is a duplicate"})
    uses = fields.Int(strict=True, load_default=1, validate=validate.Range(1, 1000))

    @validates_schema
    def _one_of(self, data, **kwargs):
        if ("code" in data) == ("qr" in data):
            raise ValidationError("Send exactly one of code or qr.", "code")


class BatchIn(InputSchema):
    items = fields.List(fields.Nested(BatchItemIn), required=True,
                        validate=validate.Length(1, MAX_ITEMS),
                        metadata={"description": f"at most {MAX_ITEMS} scans"})

    @pre_load
    def _at_most(self, data, **kwargs):  # before loading thousands of items to count them
        if isinstance(data, dict) and isinstance(data.get("items"), list) and len(data["items"]) > MAX_ITEMS:
            raise ValidationError(f"At most {MAX_ITEMS} items.", "items")
        return data


class BatchItemOut(Schema):
    nonce = fields.Str(required=True)
    status = fields.Str(required=True, validate=validate.OneOf((ACCEPTED, DUPLICATE, CONFLICTED, REJECTED)))
    reason = fields.Str(allow_none=True, metadata={
        "description": "a code of the problem catalogue: why not accepted (what a conflict lost to)"})
    redemption_id = fields.Str(allow_none=True)
    code = fields.Str(allow_none=True, metadata={"description": "the coupon's code, when it was read"})
    detail = fields.Str(allow_none=True, metadata={"description": "the reason in words"})
    first_status = fields.Str(allow_none=True, validate=validate.OneOf((ACCEPTED, CONFLICTED, REJECTED)),
                              metadata={"description": "a duplicate's first outcome"})


class BatchOut(Schema):
    items = fields.List(fields.Nested(BatchItemOut), metadata={"description": "one per item, in order"})


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
    scanned_at = fields.DateTime(allow_none=True, metadata={"description": "an offline scan's time"})
