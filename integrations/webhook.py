"""`webhook`: the generic ERP adapter, Standard Webhooks as the contract (docs/contract.md) specifies it.

POST to the configured URL; the body is the event envelope `{"type", "timestamp",
"data"}` serialised once (compact UTF-8) and sent exactly as signed; headers
`webhook-id` (the event id, the same on every retry), `webhook-timestamp` (unix seconds
of this attempt), `webhook-signature: v1,<base64 HMAC-SHA256>` over
`"<id>.<timestamp>.<body>"` keyed with the bytes of the base64 after `whsec_`, and
`webhook-cursor` (what to pass as `GET /events?after=` to catch up after this event).
Any 2xx is success; everything else is retried, except 410 which disables.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
from typing import Any

from marshmallow import Schema, ValidationError, fields, validates

from . import http
from .adapter import EVENT_TYPES, Context, Event, Outcome, PermanentError, credential, load_config
from .limits import RateLimit, per_minute, per_minute_field

SECRET_PREFIX = "whsec_"
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_RESERVED_HEADERS = {"content-type", "content-length", "host", "user-agent", "connection",
                     "transfer-encoding"}


def new_secret() -> str:
    """`whsec_` + base64 of 24 random bytes (the spec's minimum, 192 bits)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key: the bytes of the base64 after `whsec_`."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


class WebhookConfig(Schema):
    url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False,
                     metadata={"description": "the endpoint that receives the POSTs"})
    secret = credential(fields.String(load_default=new_secret,
                                  metadata={"description": "whsec_… signing secret; generated "
                                            "when absent and shown once"}))
    headers = credential(fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict,
                                 metadata={"description": "extra request headers (they often "
                                           "carry a token: write-only)"}))
    max_per_minute = per_minute_field()

    @validates("secret")
    def _check_secret(self, value: str, **_: Any) -> None:
        try:
            key = secret_key(value)
        except (binascii.Error, ValueError) as error:
            raise ValidationError("must be whsec_ followed by base64") from error
        if not value.startswith(SECRET_PREFIX) or not 24 <= len(key) <= 64:
            raise ValidationError("must be whsec_ and base64 of 24 to 64 bytes")

    @validates("headers")
    def _check_headers(self, value: dict[str, str], **_: Any) -> None:
        for name, text in value.items():
            lowered = name.lower()
            if (not _TOKEN.match(name) or lowered.startswith("webhook-")
                    or lowered in _RESERVED_HEADERS):
                raise ValidationError(f"header {name!r} may not be set")
            if "\r" in text or "\n" in text:
                raise ValidationError(f"header {name!r} has a line break")


class WebhookAdapter:
    name = "webhook"
    kind = "erp"
    events = EVENT_TYPES
    config_schema = WebhookConfig

    def rate_limits(self, settings: dict[str, Any]) -> tuple[RateLimit, ...]:
        return per_minute(settings)

    def deliver(self, event: Event, config: dict[str, Any], context: Context) -> Outcome:
        if not config.get("secret"):
            raise PermanentError("the webhook integration has no signing secret")
        settings = load_config(self, config)
        body = json.dumps(event.envelope(), ensure_ascii=False, separators=(",", ":"),
                          default=str).encode()
        timestamp = int(time.time())
        headers = {
            **settings["headers"],
            "Content-Type": "application/json",
            "webhook-id": event.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(settings["secret"], event.id, timestamp, body),
            # where to resume `GET /events?after=` from after this event: its id, which the
            # feed resolves to its position (given after commit, often after this call)
            "webhook-cursor": event.id,
        }
        return http.post(context, settings["url"], data=body, headers=headers)
