"""Absolute URLs handed to clients, and coupon representations with their QR.

Every absolute link starts with `base_url()` (`couponsvc/public_url.py`): the
`COUPONSVC_PUBLIC_URL`, never the request's `Host`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app

from .. import codes
from ..models import Coupon
from ..public_url import base_url
from ..qr.image_token import image_key, image_token
from ..qr_keys import shown_payload

__all__ = ["coupon_dict", "issued_coupon", "qr_url"]


def qr_url(code: str) -> str:
    """A capability URL: its token lets an `<img>` load the image without a key."""
    token = image_token(image_key(current_app.config["SECRET_KEY"]), code)
    return f"{base_url()}/api/v1/coupons/{code}/qr.png?token={token}"


def issued_coupon(code: str, status: str, campaign_id: str, valid_until: datetime,
                  kid: str | None) -> dict[str, Any]:
    return {"code": code, "display": codes.display(code), "status": status, "qr_url": qr_url(code),
            "qr_payload": shown_payload(code, campaign_id, valid_until, kid)}


def coupon_dict(coupon: Coupon, now: datetime, kid: str | None, redemptions=None) -> dict[str, Any]:
    data = {
        "code": coupon.code, "display": codes.display(coupon.code),
        "status": coupon.public_status(now), "uses_total": coupon.uses_total,
        "uses_left": coupon.uses_left, "valid_from": coupon.valid_from,
        "valid_until": coupon.valid_until, "campaign_id": coupon.campaign_id,
        "order_id": coupon.order_id, "qr_url": qr_url(coupon.code),
        "qr_payload": shown_payload(coupon.code, coupon.campaign_id, coupon.valid_until, kid),
    }
    if redemptions is not None:
        data["redemptions"] = redemptions
    return data
