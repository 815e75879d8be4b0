"""Each request's id, and its access line.

Before anything else of a request, its id is taken from `X-Request-ID` (when sane) or
made (`couponsvc/request_id.py`) and bound for the request; the answer echoes it. After
the answer is made, one line on the `couponsvc.access` logger: method, the route's
template (`/api/v1/coupons/<code>`, never the path itself, which may hold a code), the
status, the duration in milliseconds, the client's address (after
`COUPONSVC_TRUSTED_PROXIES`), and the request id. No header, query string or body is
logged. `COUPONSVC_ACCESS_LOG=0` leaves the line out (a load balancer's log may do).
"""

from __future__ import annotations

import logging
import time
from contextvars import Token

from flask import Flask, Response, g, request

from .. import request_id, tracing
from .formatting import TRUSTED

log = logging.getLogger("couponsvc.access")
_ENVIRON_HEADER = "HTTP_" + request_id.HEADER.upper().replace("-", "_")  # X-Request-ID
UNMATCHED = "<unmatched>"  # the template of a path no route matched (a 404)


def init_app(app: Flask) -> None:
    """The request id always; the access line unless COUPONSVC_ACCESS_LOG=0 (it costs a
    redeem about a twentieth of its CPU: docs/benchmarks.md)."""
    log.disabled = not app.config["ACCESS_LOG"]
    app.before_request(_begin)
    app.after_request(_answered)
    app.teardown_request(_end)


def _begin() -> None:
    g.couponsvc_access = begin(request.environ)


def begin(environ: dict) -> tuple[float, Token]:
    """The request's start and its id, bound until `request_id.unbind(token)`."""
    rid = request_id.accept(environ.get(_ENVIRON_HEADER))
    return time.perf_counter(), request_id.bind(rid)


def carry_on(begun: tuple[float, Token]) -> None:
    """A request `begin` began outside Flask (the redeem's lane) is now Flask's: its hooks
    write the access line from that start and unbind that id."""
    g.couponsvc_access = begun


def _answered(response: Response) -> Response:
    started = g.get("couponsvc_access")
    if started is None:  # refused before the first hook ran (a path no column can hold)
        _begin()
        started = g.couponsvc_access
    rid = request_id.current()
    response.headers[request_id.HEADER] = rid
    if tracing.enabled():  # the request's span (Flask's instrumentation) is current now
        tracing.annotate(request_id=rid)
    rule = request.url_rule
    line(request.method, rule.rule if rule is not None else UNMATCHED, response.status_code,
         started[0], request.remote_addr)
    return response


def line(method: str, route: str, status: int, started: float, client: str | None) -> None:
    """The access line of an answered request; `route` is a template, never a path."""
    log.info("%s %s %s", method, route, status, extra={
        "method": method, "route": route, "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        "client": client, TRUSTED: True})  # a template, never a path: no code in it


def _end(_error: BaseException | None) -> None:
    started = g.pop("couponsvc_access", None)
    if started is not None:
        request_id.unbind(started[1])
