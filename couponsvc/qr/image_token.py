"""The token in a coupon's `qr_url`: whoever holds the URL was given it by the API.

`GET /coupons/{code}/qr.png` draws the signed payload, so without a key it must not
answer for a code merely guessed. The URL the API hands out carries
`token = base64url(HMAC-SHA256(image_key, code))[:22]` (128 bits), and the image
endpoints draw a coupon for a matching token (or for an API key that sees the coupon).
`image_key` is derived from `SECRET_KEY` for this one purpose (`config.purpose_key`), so a
token says nothing about any other use of the secret; rotating `SECRET_KEY` turns every
`qr_url` handed out before into a 404 (read the coupon again for a new one).
No Flask here: callers pass the secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache

from ..config import purpose_key

PURPOSE = b"couponsvc qr image url token v1"
TOKEN_BYTES = 16


@lru_cache(maxsize=8)
def image_key(secret_key: str) -> bytes:
    return purpose_key(secret_key, PURPOSE)


def image_token(key: bytes, code: str) -> str:
    mac = hmac.new(key, code.encode(), hashlib.sha256).digest()[:TOKEN_BYTES]
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def token_matches(key: bytes, code: str, token: str) -> bool:
    return hmac.compare_digest(image_token(key, code).encode(), token.encode())
