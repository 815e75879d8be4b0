"""The signed text inside a coupon's QR code, verifiable offline.

    CPN1.<code>.<campaign_id>.<valid_until unix seconds>.<signature>

The signature is Ed25519 over the UTF-8 bytes of everything before the last dot,
base64url without padding. Whether the coupon is still valid at a given moment (its
expiry, a revocation) is for the caller to decide; `parse` only establishes that the
claims are ours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from couponsvc import codes
from couponsvc.qr.keyring import KeyRing

PREFIX = "CPN1"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PARTS = 5
# Longer text is refused before it is split: a real payload is about 150 characters.
_MAX_LENGTH = 512
_MAX_CAMPAIGN_ID_LENGTH = 128
_UNIX_SECONDS = re.compile(r"0|[1-9][0-9]{0,11}")


class QrError(ValueError):
    """Scanned text is not a coupon payload of ours; `reason` says why."""

    FORMAT = "format"
    SIGNATURE = "signature"
    REASONS = (FORMAT, SIGNATURE)

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class QrClaims:
    """What a verified payload says, and which key vouched for it."""

    code: str
    campaign_id: str
    valid_until: datetime  # aware, UTC, whole seconds
    kid: str


def build(
    keyring: KeyRing,
    code: str,
    campaign_id: str,
    valid_until: datetime,
    kid: str | None = None,
) -> str:
    """The payload for a coupon, signed by key `kid` (default: the current key).

    Signing is deterministic, so a coupon keeps the same payload as long as it is
    built with the same key; pass the kid recorded for its campaign.
    """
    if code != codes.canonical(code):
        raise ValueError("the code must be given in its canonical form")
    if not _is_campaign_id(campaign_id):
        raise ValueError(f"campaign id {campaign_id!r} cannot go into a QR payload")
    if valid_until.tzinfo is None:
        raise ValueError("valid_until must be an aware datetime")
    # whole seconds, a partial one dropped; integer arithmetic, as floats round far dates up
    unix = (valid_until - _EPOCH) // timedelta(seconds=1)
    if unix < 0:
        raise ValueError("valid_until must not precede 1970")
    body = f"{PREFIX}.{code}.{campaign_id}.{unix}"
    return f"{body}.{keyring.sign(body.encode('utf-8'), kid)}"


def parse(keyring: KeyRing, text: str) -> QrClaims:
    """The claims of scanned text; QrError("format") or QrError("signature") otherwise."""
    text = text.strip()
    if len(text) > _MAX_LENGTH:
        raise QrError(QrError.FORMAT, "the text is too long to be a coupon QR code")
    parts = text.split(".")
    if len(parts) != _PARTS or parts[0] != PREFIX:
        raise QrError(QrError.FORMAT, f"not a coupon QR code (expected {PREFIX}.…)")
    _, code, campaign_id, unix, signature = parts
    if not _is_canonical_code(code):
        raise QrError(QrError.FORMAT, "the QR code holds no valid coupon code")
    if not _is_campaign_id(campaign_id):
        raise QrError(QrError.FORMAT, "the QR code holds no valid campaign id")
    if not _UNIX_SECONDS.fullmatch(unix):
        raise QrError(QrError.FORMAT, "the QR code holds no valid expiry")
    try:
        valid_until = datetime.fromtimestamp(int(unix), UTC)
    except (OverflowError, ValueError, OSError):
        raise QrError(QrError.FORMAT, "the QR code holds no valid expiry") from None
    if not signature:
        raise QrError(QrError.FORMAT, "the QR code carries no signature")
    body = ".".join(parts[:-1])
    kid = keyring.verify(body.encode("utf-8"), signature)
    if kid is None:
        raise QrError(QrError.SIGNATURE, "the QR code's signature does not verify")
    return QrClaims(code=code, campaign_id=campaign_id, valid_until=valid_until, kid=kid)


def _is_canonical_code(value: str) -> bool:
    try:
        return codes.canonical(value) == value
    except codes.CodeError:
        return False


def _is_campaign_id(value: str) -> bool:
    return (
        0 < len(value) <= _MAX_CAMPAIGN_ID_LENGTH
        and value.isascii()
        and value.isprintable()
        and " " not in value
        and "." not in value
    )
