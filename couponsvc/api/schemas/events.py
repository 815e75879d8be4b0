"""The outbox, read back in order; and the data of every event type, declared once.

`EVENT_DATA` maps each type of `Event.TYPES` to the schema of its `data`. The same
schemas describe a row of `GET /events` (its `data`, told apart by `type`) and the body
a webhook receives (`{type, timestamp, data}`): `couponsvc/api/webhooks_doc.py` puts
them into the OpenAPI document.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from ...models import Event
from ..pagination import number_token
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
    cursor = fields.Function(lambda event: number_token("events", event.position),
                             metadata={"description": "pass as ?after= to resume after this event"})


def _req(field: fields.Field, description: str | None = None) -> fields.Field:
    field.required = True
    if description:
        field.metadata = {**field.metadata, "description": description}
    return field


# What several events carry


class EventCampaign(Schema):
    """The deal as it is after the change."""

    id = _req(fields.Str())
    merchant_id = _req(fields.Str())
    title = _req(fields.Str())
    city = _req(fields.Str(allow_none=True))
    price = _req(fields.Int(), "minor units (3990 = 39.90)")
    list_price = _req(fields.Int(allow_none=True), "minor units")
    currency = _req(fields.Str(), "ISO 4217")
    status = _req(fields.Str())
    sold = _req(fields.Int())
    min_group_size = _req(fields.Int())
    max_coupons = _req(fields.Int(allow_none=True))
    tipped = _req(fields.Bool())
    sales_end = _req(fields.DateTime())


class EventOrder(Schema):
    id = _req(fields.Str())
    campaign_id = _req(fields.Str())
    customer_ref = _req(fields.Str())
    quantity = _req(fields.Int())
    payment_ref = _req(fields.Str(allow_none=True))
    status = _req(fields.Str(validate=validate.OneOf(("confirmed", "refund_pending"))))


class EventCoupon(Schema):
    """The coupon after the change; `seq` grows with every change: drop an older one."""

    code = _req(fields.Str())
    campaign_id = _req(fields.Str())
    order_id = _req(fields.Str(allow_none=True))
    uses_left = _req(fields.Int())
    seq = _req(fields.Int(), "grows with every change of this coupon")
    status = fields.Str(metadata={"description": "when the event sets one (voided)"})


class EventIntegration(Schema):
    id = _req(fields.Str())
    adapter = _req(fields.Str())


class _CampaignChange(Schema):
    """What every campaign.* event carries first (a base: not a component of its own)."""

    campaign = _req(fields.Nested(EventCampaign))


class _CouponChange(Schema):
    """What every coupon.* event about one coupon carries first."""

    merchant_id = _req(fields.Str())
    coupon = _req(fields.Nested(EventCoupon))


class _Redemption(Schema):
    id = _req(fields.Str())
    store_id = _req(fields.Str())
    uses = _req(fields.Int())
    redeemed_at = _req(fields.DateTime(), "when couponsvc recorded the redemption")


# The data of each event type


class CampaignPublishedData(_CampaignChange):
    pass


class CampaignTippedData(_CampaignChange):
    tipped_at = _req(fields.DateTime())


class CampaignEndedData(_CampaignChange):
    pass


class CampaignFailedData(_CampaignChange):
    coupons_voided = _req(fields.Int(), "each has its coupon.voided event")
    orders_refund_pending = _req(fields.Int(), "each has its order.refund_pending event")


class CampaignCancelledData(_CampaignChange):
    reason = _req(fields.Str(), "as the manager gave it (may be empty)")
    coupons_voided = fields.Int(metadata={"description": "absent when a draft was cancelled"})
    orders_refund_pending = fields.Int(metadata={"description": "absent when a draft was cancelled"})


class OrderConfirmedData(Schema):
    order = _req(fields.Nested(EventOrder))


class OrderRefundPendingData(Schema):
    order = _req(fields.Nested(EventOrder))
    reason = _req(fields.Str(validate=validate.OneOf(("campaign_failed", "campaign_cancelled"))))


class IssuedCoupon(Schema):
    code = _req(fields.Str())
    status = _req(fields.Str(validate=validate.OneOf(("pending", "active"))))


class CouponIssuedToOrderData(Schema):
    """Coupons bought by an order."""

    campaign = _req(fields.Nested(EventCampaign))
    campaign_id = _req(fields.Str())
    order_id = _req(fields.Str())
    count = _req(fields.Int())
    coupons = _req(fields.List(fields.Nested(IssuedCoupon)))


class CouponIssuedInBulkData(Schema):
    """One chunk of a bulk job (`POST /campaigns/{id}/coupons/bulk`); no codes: fetch the CSV."""

    campaign_id = _req(fields.Str())
    job_id = _req(fields.Str())
    count = _req(fields.Int(), "written in this chunk")
    issued_so_far = _req(fields.Int())
    requested = _req(fields.Int())
    status = _req(fields.Str(validate=validate.OneOf(("pending", "active"))))


class RedeemedRedemption(_Redemption):
    device_id = _req(fields.Str(allow_none=True))
    scanned_at = _req(fields.DateTime(), "when the till scanned the coupon: `redeemed_at` online, "
                                         "the device's time for a scan made offline")
    uploaded_at = _req(fields.DateTime(allow_none=True),
                       "when an offline scan was uploaded (`POST /redemptions/batch`); null online")


class RedeemedCampaign(Schema):
    id = _req(fields.Str())
    title = _req(fields.Str())
    price = _req(fields.Int(), "minor units")
    currency = _req(fields.Str())


class CouponRedeemedData(_CouponChange):
    redemption = _req(fields.Nested(RedeemedRedemption))
    campaign = _req(fields.Nested(RedeemedCampaign))


class ReversedRedemption(_Redemption):
    reversed_at = _req(fields.DateTime())
    reason = _req(fields.Str(allow_none=True))


class CouponRedemptionReversedData(_CouponChange):
    redemption = _req(fields.Nested(ReversedRedemption))


class CouponVoidedData(_CouponChange):
    reason = _req(fields.Str(), "campaign_failed, campaign_cancelled, or the reason a manager gave")


class DisabledIntegration(EventIntegration):
    disabled_at = _req(fields.DateTime())
    reason = _req(fields.Str())


class IntegrationDisabledData(Schema):
    integration = _req(fields.Nested(DisabledIntegration))


class PingData(Schema):
    integration = _req(fields.Nested(EventIntegration))
    message = _req(fields.Str())


EVENT_DATA: dict[str, tuple[type[Schema], ...]] = {
    "campaign.published": (CampaignPublishedData,),
    "campaign.tipped": (CampaignTippedData,),
    "campaign.ended": (CampaignEndedData,),
    "campaign.failed": (CampaignFailedData,),
    "campaign.cancelled": (CampaignCancelledData,),
    "order.confirmed": (OrderConfirmedData,),
    "order.refund_pending": (OrderRefundPendingData,),
    "coupon.issued": (CouponIssuedToOrderData, CouponIssuedInBulkData),
    "coupon.redeemed": (CouponRedeemedData,),
    "coupon.redemption_reversed": (CouponRedemptionReversedData,),
    "coupon.voided": (CouponVoidedData,),
    "integration.disabled": (IntegrationDisabledData,),
    "ping": (PingData,),
}
"""Each event type's `data`: one schema, or several when it has several shapes."""

EVENT_DESCRIPTIONS: dict[str, str] = {
    "campaign.published": "A deal went on sale.",
    "campaign.tipped": "A deal reached its group threshold: its coupons are active, its orders confirmed.",
    "campaign.ended": "A deal that tipped closed at its sales end.",
    "campaign.failed": "A deal closed at its sales end without tipping: its coupons are voided, "
                       "its orders wait for a refund.",
    "campaign.cancelled": "A manager cancelled a deal; if it was on sale, its coupons are voided "
                          "and its orders wait for a refund.",
    "order.confirmed": "An order's deal has tipped (or had tipped when it was placed): it stands.",
    "order.refund_pending": "An order's deal failed or was cancelled: refund the buyer.",
    "coupon.issued": "Coupons were issued: to an order (with their codes), or in one chunk of a bulk job.",
    "coupon.redeemed": "A till redeemed a coupon.",
    "coupon.redemption_reversed": "A redemption was reversed; its uses are back on the coupon.",
    "coupon.voided": "A coupon was voided (by a manager, or with its failed or cancelled deal).",
    "integration.disabled": "An integration was switched off (by its merchant, a 410, or days of "
                            "failures); its deliveries are held until it is enabled again.",
    "ping": "A test delivery (`POST /integrations/{id}/test`), sent to that integration only.",
}
