"""The token in a campaign's `poster_url`: whoever holds the URL was given it by the API
(or found it as the deal page's `og:image`).

The same construction as a coupon's `qr_url` (`couponsvc/qr/image_token.py`):
`token = base64url(HMAC-SHA256(poster_key, campaign_id))[:22]` (128 bits), under a key
derived from `SECRET_KEY` for this one purpose, so a coupon's token never opens a poster
and the other way round. Rotating `SECRET_KEY` turns every `poster_url` handed out before
into a 404. No Flask here: callers pass the secret.
"""

from __future__ import annotations

from functools import lru_cache

from ..config import purpose_key
from ..qr.image_token import image_token, token_matches

PURPOSE = b"couponsvc poster url token v1"


@lru_cache(maxsize=8)
def poster_key(secret_key: str) -> bytes:
    return purpose_key(secret_key, PURPOSE)


def poster_token(secret_key: str, campaign_id: str) -> str:
    return image_token(poster_key(secret_key), campaign_id)


def poster_token_matches(secret_key: str, campaign_id: str, token: str) -> bool:
    return token_matches(poster_key(secret_key), campaign_id, token)
