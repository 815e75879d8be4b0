"""The app's QR key ring and data keys, built once from configuration at boot."""

from __future__ import annotations

import logging

from flask import Flask, current_app

from .config import ConfigError
from .data_keys import DataKeys
from .models import Coupon
from .qr import payload
from .qr.keyring import KeyRing, UnknownKeyError

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    try:
        ring = KeyRing.from_settings(app.config["QR_SIGNING_KEYS"], app.config["QR_PUBLIC_KEYS"],
                                     app.instance_path)
    except ValueError as error:
        raise ConfigError(f"COUPONSVC_QR_SIGNING_KEYS / COUPONSVC_QR_PUBLIC_KEYS: {error}") from None
    app.extensions["couponsvc.keyring"] = ring
    try:
        keys = DataKeys.from_settings(app.config["DATA_KEYS"], app.instance_path)
    except ValueError as error:
        raise ConfigError(f"COUPONSVC_DATA_KEYS: {error}") from None
    app.extensions["couponsvc.data_keys"] = keys


def keyring() -> KeyRing:
    return current_app.extensions["couponsvc.keyring"]


def data_keys() -> DataKeys:
    return current_app.extensions["couponsvc.data_keys"]


def qr_payload(code: str, campaign_id: str, valid_until, kid: str | None) -> str:
    """The coupon's signed payload; deterministic, so it never changes while its key is kept."""
    return payload.build(keyring(), code, campaign_id, valid_until, kid)


def coupon_payload(coupon: Coupon, kid: str | None) -> str:
    return qr_payload(coupon.code, coupon.campaign_id, coupon.valid_until, kid)


def shown_payload(code: str, campaign_id: str, valid_until, kid: str | None) -> str | None:
    """The payload a coupon's representation carries: None when its campaign's signing
    key was removed from COUPONSVC_QR_SIGNING_KEYS (its coupons still verify through the
    public key, but cannot be signed again, and never by another key)."""
    try:
        return qr_payload(code, campaign_id, valid_until, kid)
    except UnknownKeyError:
        log.error("campaign %s was signed with QR key %s, which is no longer a signing key; "
                  "its coupons are shown without a QR payload", campaign_id, kid)
        return None
