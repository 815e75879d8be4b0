"""gzip for the app's dynamic answers (static files compress themselves: static_assets.py).

A JSON or HTML answer of 1 KiB or more is gzip-compressed for a client that accepts it:
the OpenAPI document (560 KB → about 50 KB), the revocation feed and the lists a scanner
or an integration pages through on a poor connection.

Not compressed:
- answers to a request that carries a cookie: the admin's pages hold a CSRF token and
  echo what the person typed, and a compressed secret next to attacker-chosen text leaks
  through the length (BREACH) when a browser sends credentials on its own, which cookies
  are and bearer keys are not;
- streamed answers (the CSV export), answers with an ETag (a strong ETag names one
  encoding), anything but a 200, and anything already encoded.
"""

from __future__ import annotations

import gzip

from flask import Flask, Response, request

MIN_BYTES = 1024
LEVEL = 6
TYPES = frozenset({"application/json", "application/problem+json", "text/html", "text/plain",
                   "application/xml", "image/svg+xml"})


def compress(response: Response) -> Response:
    if (response.status_code != 200 or response.direct_passthrough or response.is_streamed
            or "Content-Encoding" in response.headers or "ETag" in response.headers
            or response.mimetype not in TYPES or response.cache_control.no_transform
            or "Cookie" in request.headers or request.accept_encodings["gzip"] <= 0):
        return response
    response.vary.add("Accept-Encoding")
    body = response.get_data()
    if len(body) < MIN_BYTES:
        return response
    response.set_data(gzip.compress(body, compresslevel=LEVEL, mtime=0))
    response.headers["Content-Encoding"] = "gzip"
    return response


def init_app(app: Flask) -> None:
    app.after_request(compress)
