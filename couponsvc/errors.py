"""One domain error type with stable reason codes, and its problem+json rendering.

Domain functions raise `DomainError(code, detail)` (declared with its codes in
`domain_error.py`, which imports no Flask); the handler registered in
`register_error_handlers` turns it, and every other HTTP error, into RFC 9457
`application/problem+json`. Tests assert `code`, never the text.

Titles and details are said in the caller's language (`i18n.py`: English unless
`Accept-Language` asks for Chinese), and every problem names it in `Content-Language`.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException

from . import i18n
from .domain_error import CODES, N_, DomainError, say
from .problems import type_url

log = logging.getLogger(__name__)

__all__ = ["CODES", "DomainError", "problem", "register_error_handlers"]


def problem(code: str, detail: str | None = None, *, status: int | None = None,
            headers: dict[str, str] | None = None, **extra: Any) -> Response:
    default_status, title = CODES[code]
    status = status or default_status
    body = {
        "type": type_url(code),  # its page: couponsvc/problems/
        "title": i18n.translate(title),
        "status": status,
        "detail": i18n.translate(detail or title),
        "code": code,
        **extra,
    }
    response = Response(json.dumps(body), status=status, mimetype="application/problem+json")
    response.headers["Content-Language"] = i18n.language()
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
        return problem("validation_error", _summarise(errors), errors=_translated(errors))
    if status == 400 and isinstance(messages, dict) and "json" in messages:
        # webargs could not decode the body
        return problem("malformed_json", N_("The request body could not be parsed as JSON"))
    code = _HTTP_CODES.get(status)
    if code is None:
        code = "bad_request" if status < 500 else "internal_error"
    headers = {}
    valid_methods = getattr(error, "valid_methods", None)
    if status == 405 and valid_methods:
        headers["Allow"] = ", ".join(valid_methods)
    detail = error.description if isinstance(error.description, str) else None
    return problem(code, detail, status=status, headers=headers)


def _translated(messages: Any) -> Any:
    """A field's messages in the caller's language, where the catalogue has them."""
    if isinstance(messages, str):
        return i18n.translate(messages)
    if isinstance(messages, dict):
        return {name: _translated(value) for name, value in messages.items()}
    if isinstance(messages, list):
        return [_translated(value) for value in messages]
    return messages


def _summarise(errors: dict[str, Any]) -> str:
    fields = ", ".join(sorted(str(name) for name in errors))
    return say("Invalid fields: %(fields)s", fields=fields) if fields else N_("The request is not valid")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(DomainError, domain_problem)
    app.register_error_handler(HTTPException, _http_problem)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        if app.testing:
            raise error  # let the test show the traceback
        log.exception("unhandled error")
        return problem("internal_error", N_("An unexpected error occurred; it has been logged"))
