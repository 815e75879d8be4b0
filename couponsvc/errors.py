"""One domain error type with stable reason codes, and its problem+json rendering.

Domain functions raise `DomainError(code, detail)`; the handler registered in
`register_error_handlers` turns it, and every other HTTP error, into RFC 9457
`application/problem+json`. Tests assert `code`, never the text.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

PROBLEM_TYPE_BASE = "https://couponsvc.dev/problems/"

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


def problem(code: str, detail: str | None = None, *, status: int | None = None,
            headers: dict[str, str] | None = None, **extra: Any) -> Response:
    default_status, title = CODES[code]
    status = status or default_status
    body = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail or title,
        "code": code,
        **extra,
    }
    response = Response(json.dumps(body), status=status, mimetype="application/problem+json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def domain_problem(error: DomainError) -> Response:
    headers = {}
    if "retry_after" in error.extra:
        headers["Retry-After"] = str(error.extra["retry_after"])
    if error.code == "unauthenticated":
        headers["WWW-Authenticate"] = 'Bearer realm="couponsvc"'

    return problem(error.code, error.detail, headers=headers, **error.extra)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def _http_problem(error: HTTPException) -> Response:
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    messages = data.get("messages")
    if status == 422 and messages is not None:
        # webargs/flask-smorest validation: {location: {field: [msgs]}}
        errors: dict[str, Any] = {}
        for location_errors in messages.values():
            if isinstance(location_errors, dict):
                errors.update(location_errors)
            else:
                errors["_schema"] = location_errors
        return problem("validation_error", _summarise(errors), errors=errors)
    if status == 400 and isinstance(messages, dict) and "json" in messages:
        # webargs could not decode the body
        return problem("malformed_json", "The request body could not be parsed as JSON")
    code = _HTTP_CODES.get(status)
    if code is None:
        code = "bad_request" if status < 500 else "internal_error"
    headers = {}
    valid_methods = getattr(error, "valid_methods", None)
    if status == 405 and valid_methods:
        headers["Allow"] = ", ".join(valid_methods)
    detail = error.description if isinstance(error.description, str) else None
    return problem(code, detail, status=status, headers=headers)


def _is_json_decode_error(error: HTTPException) -> bool:
    description = str(error.description or "")
    return isinstance(getattr(error, "exc", None), ValueError) or "JSON" in description or "json" in description


def _summarise(errors: dict[str, Any]) -> str:
    fields = ", ".join(sorted(str(name) for name in errors))
    return f"Invalid fields: {fields}" if fields else "The request is not valid"


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(DomainError, domain_problem)
    app.register_error_handler(HTTPException, _http_problem)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        if app.testing:
            raise error  # let the test show the traceback
        log.exception("unhandled error")
        return problem("internal_error", "An unexpected error occurred; it has been logged")
