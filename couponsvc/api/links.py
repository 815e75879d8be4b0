"""Absolute URLs handed to clients, and coupon representations with their QR."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import current_app, request

from .. import codes
from ..models import Coupon
from ..qr_keys import shown_payload


def base_url() -> str:
    return current_app.config["PUBLIC_URL"] or request.host_url.rstrip("/")


def qr_url(code: str) -> str:
    return f"{base_url()}/api/v1/coupons/{code}/qr.png"


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
