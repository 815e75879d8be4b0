"""The one-time token of the merchant page's "create an API key" form.

The answer that shows a new key is the answer to a POST, so a reload of it sends the
form again. Without a token, that made a second key, shown like the first, and left the
first working unseen. The form now carries the id the key it makes will have, with its
merchant, signed (`itsdangerous`, under a key of its own drawn from `SECRET_KEY`) and
good for a day: a form sent again, after its key was made or at the same moment, fails on
the key's primary key, makes none, and says so (the key is never shown again).
"""

from __future__ import annotations

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..config import purpose_key
from ..ids import new_id

MAX_AGE = 24 * 3600  # seconds a page's key form stays good


class FormExpired(Exception):
    """The token is not one this service signed for this merchant, or it is too old."""


def new_token(merchant_id: str) -> str:
    """A token for one key of this merchant, to put in the form."""
    return _serializer().dumps({"key_id": new_id("key"), "merchant_id": merchant_id})


def key_id_of(token: str, merchant_id: str) -> str:
    """The id the form's key is to have; FormExpired for anything else."""
    try:
        data = _serializer().loads(token, max_age=MAX_AGE)
    except BadSignature:  # SignatureExpired is one
        raise FormExpired() from None
    if not isinstance(data, dict) or data.get("merchant_id") != merchant_id or not data.get("key_id"):
        raise FormExpired()
    return str(data["key_id"])


def _serializer() -> URLSafeTimedSerializer:
    key = purpose_key(current_app.config["SECRET_KEY"], b"couponsvc admin key forms")
    return URLSafeTimedSerializer(key, salt="new-api-key")
