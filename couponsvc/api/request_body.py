"""What a request body to /api/v1 must be: JSON, or nothing.

Checked before any view runs: a body of another media type is `415
unsupported_media_type`, and JSON nested too deeply for the parser (50,000 `[`) is
`400 malformed_json` rather than a RecursionError. The parsed body is cached on the
request, where the idempotency fingerprint (`unit_of_work`) and the view's schema
(`blueprint.BodyOnceParser`) read it: nothing parses the raw bytes again.
"""

from __future__ import annotations

from flask import request

from ..errors import DomainError

API_PREFIX = "/api/"


def check_body() -> None:
    if not request.path.startswith(API_PREFIX) or not _has_body():
        return
    if not request.is_json:
        raise DomainError("unsupported_media_type",
                          f"send the body as JSON with Content-Type: application/json, "
                          f"not {request.mimetype or 'no Content-Type'}")
    try:
        request.get_json(silent=True)  # an unreadable body is the schema's 400 malformed_json
    except RecursionError:
        raise DomainError("malformed_json", "the JSON body nests too deeply") from None


def _has_body() -> bool:
    return bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "").lower()
