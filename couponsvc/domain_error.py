"""The one domain error type and its stable reason codes, declared once; no Flask.

Domain functions raise `DomainError(code, detail)`; `errors.py` renders it as
problem+json. A code names its HTTP status here so that the API documentation and
the renderer read one table. Tests assert `code`, never the text.
"""

from __future__ import annotations

from typing import Any

# code -> (HTTP status, title). Declared once; the API documentation lists them.
CODES: dict[str, tuple[int, str]] = {
    "validation_error": (422, "The request body or query is not valid"),
    "malformed_json": (400, "The request body is not valid JSON"),
    "bad_request": (400, "Bad request"),
    "unauthenticated": (401, "Missing or invalid API key"),
    "forbidden": (403, "This key may not do that"),
    "not_found": (404, "Not found"),
    "method_not_allowed": (405, "Method not allowed"),
    "unsupported_media_type": (415, "Send JSON with Content-Type: application/json"),
    "payload_too_large": (413, "Request body too large"),
    "conflict": (409, "Conflict"),
    "invalid_state": (409, "The object is not in a state that allows this"),
    "idempotency_key_reused": (409, "Idempotency-Key was used with another request"),
    "idempotency_key_in_use": (409, "A request with this Idempotency-Key is still running"),
    "rate_limited": (429, "Too many failed look-ups"),
    "internal_error": (500, "Internal error"),
    # Orders
    "sold_out": (409, "The deal is sold out"),
    "customer_limit_reached": (409, "This customer has bought the most allowed"),
    "campaign_not_on_sale": (422, "The deal is not on sale"),
    # Coupons and redemption
    "coupon_not_found": (404, "No such coupon"),
    "invalid_code": (400, "The code is mistyped (its check character does not match)"),
    "invalid_qr": (400, "The QR code is not a valid couponsvc QR"),
    "coupon_already_redeemed": (409, "The coupon has already been used"),
    "coupon_pending": (422, "The deal has not tipped yet"),
    "coupon_voided": (422, "The coupon was voided"),
    "coupon_expired": (422, "The coupon has expired"),
    "coupon_not_yet_valid": (422, "The coupon is not valid yet"),
    "store_not_allowed": (422, "The coupon is not honoured at this store"),
    "insufficient_uses": (422, "The coupon has fewer uses left than asked"),
    "redemption_not_found": (404, "No such redemption"),
    "redemption_already_reversed": (409, "The redemption was already reversed"),
    "reversal_window_closed": (409, "The reversal window has closed"),
    # Integrations
    "too_many_integrations": (409, "The merchant has as many integrations as allowed"),
}


class DomainError(Exception):
    """A refusal with a stable machine code from `CODES`."""

    def __init__(self, code: str, detail: str | None = None, **extra: Any) -> None:
        if code not in CODES:
            raise ValueError(f"unknown error code {code!r}")
        self.code = code
        self.status, self.title = CODES[code]
        self.detail = detail or self.title
        self.extra = extra
        super().__init__(f"{code}: {self.detail}")
