"""Merchants, stores, API keys."""

from __future__ import annotations

from flask import current_app
from marshmallow import Schema, ValidationError, fields, validate

from ...merchants import reversal_window
from ...principal import MANAGER, SCANNER
from ...promotion.deal_link import template_problems
from .common import InputSchema, Name, Text


class DealUrlTemplate(fields.Str):
    """A merchant's deal link template: an http(s) URL with {campaign_id} and {merchant_id}
    only; empty or null: none (the deployment's, else the deal page)."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not text:
            return None
        problems = template_problems(text)
        if problems:
            raise ValidationError(problems)
        return text


DEAL_URL_TEMPLATE = ("where this merchant's deal links point (the poster's QR code, the deal page's "
                     "button): its storefront's page of a deal, e.g. "
                     "`https://shop.example.cn/deals/{campaign_id}` ({campaign_id} and {merchant_id} "
                     "are filled in); null: COUPONSVC_DEAL_URL_TEMPLATE, else the deal page /d/{id}")


class MerchantIn(InputSchema):
    name = Name(required=True)
    city = Name(100, required=True)
    timezone = fields.Str(load_default="Asia/Shanghai", validate=validate.Length(1, 64))
    reversal_window = fields.Int(strict=True, allow_none=True, load_default=None,
                                 validate=validate.Range(0, 86400),
                                 metadata={"description": "seconds a redemption can be reversed "
                                           "(default 600; capped by the operator)"})
    deal_url_template = DealUrlTemplate(allow_none=True, metadata={"description": DEAL_URL_TEMPLATE})


class MerchantPatch(InputSchema):
    name = Name()
    city = Name(100)
    timezone = fields.Str(validate=validate.Length(1, 64))
    reversal_window = fields.Int(strict=True, allow_none=True, validate=validate.Range(0, 86400))
    deal_url_template = DealUrlTemplate(allow_none=True, metadata={"description": DEAL_URL_TEMPLATE})


class MerchantOut(Schema):
    id = fields.Str()
    name = fields.Str()
    city = fields.Str()
    timezone = fields.Str()
    reversal_window = fields.Method(
        "_effective_window", metadata={"type": "integer", "description":
                                       "seconds a redemption can be reversed: the merchant's own "
                                       "window, else the operator's default, capped by the "
                                       "operator's ceiling; never null"})
    reversal_window_is_default = fields.Method(
        "_window_is_default", metadata={"type": "boolean", "description":
                                        "true when the merchant set no window of its own (it "
                                        "follows COUPONSVC_DEFAULT_REVERSAL_WINDOW)"})
    deal_url_template = fields.Str(allow_none=True, metadata={"description": DEAL_URL_TEMPLATE})
    created_at = fields.DateTime()

    def _effective_window(self, merchant) -> int:
        return reversal_window(merchant, default=current_app.config["DEFAULT_REVERSAL_WINDOW"],
                               ceiling=current_app.config["MAX_REVERSAL_WINDOW"])

    def _window_is_default(self, merchant) -> bool:
        return merchant.reversal_window is None


class StoreIn(InputSchema):
    name = Name(required=True)
    city = Text(100, load_default="")
    address = Text(500, load_default="")


class StoreOut(Schema):
    id = fields.Str()
    merchant_id = fields.Str()
    name = fields.Str()
    city = fields.Str()
    address = fields.Str()
    created_at = fields.DateTime()


class ApiKeyIn(InputSchema):
    role = fields.Str(required=True, validate=validate.OneOf([MANAGER, SCANNER]))
    store_id = fields.Str(load_default=None, allow_none=True, validate=validate.Length(1, 40))
    label = Text(200, load_default="")


class ApiKeyOut(Schema):
    id = fields.Str()
    role = fields.Str()
    merchant_id = fields.Str(allow_none=True)
    store_id = fields.Str(allow_none=True)
    label = fields.Str()
    prefix = fields.Str()
    created_at = fields.DateTime()
    revoked_at = fields.DateTime(allow_none=True)


class CreatedApiKeyOut(ApiKeyOut):
    key = fields.Str(metadata={"description": "the secret; shown this once, stored only hashed"})
