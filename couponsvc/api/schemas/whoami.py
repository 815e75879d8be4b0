"""The caller's key, merchant, stores and deals (`GET /whoami`)."""

from __future__ import annotations

from marshmallow import Schema, fields

from .merchants import ApiKeyOut, MerchantOut, StoreOut


class DealBrief(Schema):
    id = fields.Str()
    title = fields.Str()
    status = fields.Str(metadata={"description": "active | paused | ended"})
    tipped = fields.Bool(metadata={"description": "false: its coupons are pending until it tips"})
    uses_per_coupon = fields.Int()
    valid_from = fields.DateTime()
    valid_until = fields.DateTime()
    store_ids = fields.List(fields.Str(), metadata={"description": "empty: every store of the merchant"})


class WhoamiOut(Schema):
    key = fields.Nested(ApiKeyOut, allow_none=True,
                        metadata={"description": "the key this request came with"})
    merchant = fields.Nested(MerchantOut, allow_none=True,
                             metadata={"description": "null for a platform key"})
    store = fields.Nested(StoreOut, allow_none=True,
                          metadata={"description": "the store a scanner key is pinned to, else null"})
    stores = fields.List(fields.Nested(StoreOut), metadata={
        "description": "the stores this key may redeem at: the pinned one, or every store of the merchant"})
    deals = fields.List(fields.Nested(DealBrief), metadata={
        "description": "the merchant's deals whose coupons can still be used (active, paused, or "
                       "ended having tipped, and not past valid_until), those ending first first; at "
                       "most 500"})
