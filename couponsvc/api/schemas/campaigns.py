"""Campaigns (deals), their lifecycle and statistics."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from ...deal_pages.links import poster_url
from .common import InputSchema, Money, Name, Text, Time

CURRENCY = validate.Regexp(r"^[A-Z]{3}$", error="Must be an ISO 4217 code such as CNY.")
POSITIVE = validate.Range(1, 10**9)


class CampaignIn(InputSchema):
    merchant_id = fields.Str(required=True, validate=validate.Length(1, 40))
    title = Name(300, required=True)
    description = Text(20000, load_default="")
    city = Text(100)
    price = Money(required=True)
    list_price = Money(load_default=None, allow_none=True)
    currency = fields.Str(load_default="CNY", validate=CURRENCY)
    sales_start = Time(required=True)
    sales_end = Time(required=True)
    min_group_size = fields.Int(strict=True, load_default=1, validate=POSITIVE)
    max_coupons = fields.Int(strict=True, load_default=None, allow_none=True, validate=POSITIVE)
    per_customer_limit = fields.Int(strict=True, load_default=None, allow_none=True, validate=POSITIVE)
    uses_per_coupon = fields.Int(strict=True, load_default=1, validate=validate.Range(1, 1000))
    valid_from = Time(required=True)
    valid_until = Time(required=True)
    store_ids = fields.List(fields.Str(validate=validate.Length(1, 40)), load_default=list, validate=validate.Length(max=1000),
                            metadata={"description": "stores honouring it; empty: every store"})


class CampaignPatch(InputSchema):
    """Draft: any field. Active or paused: title, description, city, and sales_end later only."""

    title = Name(300)
    description = Text(20000)
    city = Text(100)
    price = Money()
    list_price = Money(allow_none=True)
    currency = fields.Str(validate=CURRENCY)
    sales_start = Time()
    sales_end = Time()
    min_group_size = fields.Int(strict=True, validate=POSITIVE)
    max_coupons = fields.Int(strict=True, allow_none=True, validate=POSITIVE)
    per_customer_limit = fields.Int(strict=True, allow_none=True, validate=POSITIVE)
    uses_per_coupon = fields.Int(strict=True, validate=validate.Range(1, 1000))
    valid_from = Time()
    valid_until = Time()
    store_ids = fields.List(fields.Str(validate=validate.Length(1, 40)), validate=validate.Length(max=1000))


class CampaignOut(Schema):
    id = fields.Str()
    merchant_id = fields.Str()
    title = fields.Str()
    description = fields.Str()
    city = fields.Str()
    price = fields.Int()
    list_price = fields.Int(allow_none=True)
    currency = fields.Str()
    sales_start = fields.DateTime()
    sales_end = fields.DateTime()
    min_group_size = fields.Int()
    max_coupons = fields.Int(allow_none=True)
    per_customer_limit = fields.Int(allow_none=True)
    uses_per_coupon = fields.Int()
    valid_from = fields.DateTime()
    valid_until = fields.DateTime()
    store_ids = fields.List(fields.Str())
    status = fields.Str(metadata={"description": "draft | active | paused | ended | failed | cancelled"})
    sold = fields.Int()
    issued = fields.Int(metadata={"description": "coupons issued: sold plus bulk-issued"})
    tipped = fields.Bool()
    tipped_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    published_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    poster_url = fields.Function(
        lambda campaign: poster_url(campaign.id), metadata={
            "type": "string", "format": "uri", "description":
            "the share poster (PNG, 1080×1920, Chinese; add `&lang=en` for English): a capability "
            "URL whose token lets an `<img>` or a chat app load it without a key"})


class PosterArgs(InputSchema):
    token = fields.Str(load_default=None, validate=validate.Length(1, 100),
                       metadata={"description": "the token of the campaign's `poster_url`"})
    lang = fields.Str(load_default="zh", validate=validate.OneOf(["zh", "en"]),
                      metadata={"description": "the poster's language"})
    v = fields.Str(load_default=None, validate=validate.Length(max=64), metadata={
        "description": "ignored: the deal page adds the poster's version, so that a changed "
                       "poster gets a new URL"})


class CampaignListArgs(InputSchema):
    merchant_id = fields.Str()
    status = fields.Str(validate=validate.OneOf(
        ["draft", "active", "paused", "ended", "failed", "cancelled"]))
    city = fields.Str()
    limit = fields.Int(load_default=50, validate=validate.Range(1, 500))
    after = fields.Str(load_default=None)


class CancelIn(InputSchema):
    reason = Text(500, load_default="")


class StatsBucket(Schema):
    redemptions = fields.Int()
    uses = fields.Int()
    reversed = fields.Int()


class DayStats(StatsBucket):
    date = fields.Str()


class StoreStats(StatsBucket):
    store_id = fields.Str()


class CampaignStatsOut(Schema):
    campaign_id = fields.Str()
    status = fields.Str()
    sold = fields.Int()
    issued = fields.Int()
    tipped = fields.Bool()
    coupons = fields.Dict(keys=fields.Str(), values=fields.Int())
    redeemed = fields.Int()
    uses_redeemed = fields.Int()
    reversed = fields.Int()
    timezone = fields.Str()
    by_day = fields.List(fields.Nested(DayStats))
    by_store = fields.List(fields.Nested(StoreStats))
