"""The redeem's lane: a till's redeem that succeeds, answered without Flask's request machinery.

Nearly all of this service's traffic is `POST /api/v1/redemptions` from tills, and
nearly every one of those redeems the coupon. Through Flask, such a request spent more
than half of its CPU in the app outside the redeem itself: the request context, the
hooks, webargs, werkzeug's request and response (docs/benchmarks.md). The lane is a WSGI
middleware, inside ProxyFix (so `REMOTE_ADDR` is the client's), that answers that
request with the functions the view and the hooks use, no rule of its own:

- the key as `principal.remembered` knows it (a key this process has seen; the
  statement checks that it is live, as the view's does), a role of `TILL`;
- the body loaded by the view's schema (`SCAN_IN`), the `Idempotency-Key` checked and
  the request fingerprinted by `unit_of_work`'s functions, the scan made by `scanned`;
- `redeem.redeem`, its one statement on a connection of the statement pool;
- the 201 drawn by `redeemed_json` and `redemption_location`, with the headers the
  hooks add (`X-Request-ID`, `Content-Language`, `Vary`), the access line and the
  request's count (`logs/access.py`, `metrics/endpoint.py`).

Everything else goes on to Flask, which answers as if the lane were not there: another
route, a body that is not a small JSON object, a key not seen yet or not a till's, a
body the schema refuses, a bad `Idempotency-Key`, traces on (on SQLite the lane is not
installed at all); and every redeem the statement did not make (a refusal, a replay, a
revoked key, a budget used up, a concurrent request with the same key). The statement
then changed nothing, so Flask's view runs the request from the start and answers it
exactly as before (a refusal costs the statement twice; it is the rare case at a till).
An error other than a refusal is answered by Flask's error handlers, as the view's would
be: the statement may have committed, so the request is not run again.
`COUPONSVC_REDEEM_LANE=0` turns the lane off.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from contextvars import Token

import orjson
from flask import Flask
from marshmallow import ValidationError

from .. import redeem as till
from .. import request_id, tracing
from ..errors import DomainError
from ..extensions import db
from ..i18n import API_VARY, api_language
from ..logs import access
from ..metrics.endpoint import count
from ..metrics.outcomes import tentative
from ..metrics.switch import counting
from ..models.idempotency import Claim
from ..principal import Principal, remembered
from ..qr_keys import keyring
from .redemptions import SCAN_IN, TILL, redeemed_json, redemption_location, scanned
from .unit_of_work import ENVIRON_HEADER as IDEMPOTENCY_HEADER
from .unit_of_work import after_statement, checked_key, fingerprint, scope_of, statements

ROUTE = "/api/v1/redemptions"  # the route the lane answers, and its template in the access line
MAX_BODY = 4096  # bytes: a till's body is about 100; a larger one goes to Flask
_JSON = frozenset({"application/json", "application/json; charset=utf-8"})
_CREATED = "201 CREATED"

StartResponse = Callable[..., object]


class RedeemLane:
    """WSGI middleware around `app.wsgi_app` (see the module's docstring)."""

    def __init__(self, app: Flask, wsgi_app: Callable) -> None:
        self.app, self.wsgi_app = app, wsgi_app

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != ROUTE or environ.get("REQUEST_METHOD") != "POST":
            return self.wsgi_app(environ, start_response)
        principal = remembered(environ.get("HTTP_AUTHORIZATION"))  # the key before the body
        if principal is not None and principal.role in TILL and not tracing.enabled():
            body = _small_json_body(environ)
            if body is not None:
                answered = self._answer(environ, principal, body, start_response)
                if answered is not None:
                    return answered
        return self.wsgi_app(environ, start_response)

    def _answer(self, environ: dict, principal: Principal, body: bytes,
                start_response: StartResponse) -> list[bytes] | None:
        started, token = access.begin(environ)
        handed_over = False  # the request id to Flask's hooks, which unbind it
        try:
            with self.app.app_context():
                try:
                    done = self._redeem(environ, principal, body)
                    if done is None:
                        return None
                    payload = redeemed_json(done)
                    headers = [
                        ("Location", redemption_location(done.id)), ("Content-Type", "application/json"),
                        ("Content-Length", str(len(payload))), ("Content-Language", api_language(environ)),
                        ("Vary", API_VARY), (request_id.HEADER, request_id.current())]
                except Exception as error:  # not a refusal: Flask's handlers answer it
                    handed_over = True
                    return self._failed(environ, start_response, error, (started, token))
                start_response(_CREATED, headers)
                access.line("POST", ROUTE, 201, started, environ.get("REMOTE_ADDR"))
                if counting():
                    count("POST", ROUTE, 201)
                return [payload]
        finally:
            if not handed_over:
                request_id.unbind(token)

    def _redeem(self, environ: dict, principal: Principal, body: bytes) -> till.Redeemed | None:
        """The redemption, or None for Flask to answer the request."""
        try:
            parsed = orjson.loads(body)  # refused here or by the schema (a BOM, NaN, past 64 bits): Flask's
            data = SCAN_IN.load(parsed) if isinstance(parsed, dict) else None
        except (ValueError, RecursionError, ValidationError):  # orjson's JSONDecodeError is a ValueError
            return None
        if data is None:
            return None
        claim = None
        raw_key = environ.get(IDEMPOTENCY_HEADER)
        if raw_key is not None:
            try:
                key = checked_key(raw_key)
            except DomainError:
                return None
            claim = Claim(api_key_id=scope_of(principal), key=key, request_hash=fingerprint(
                "POST", ROUTE, environ.get("QUERY_STRING", ""), parsed, body))
        scan = scanned(principal, data, environ.get("REMOTE_ADDR") or "unknown")
        pool = statements()
        connection = pool.getconn()
        try:
            with tentative():  # a refusal is made, and counted, again by Flask's view
                done = till.redeem(db.session, scan, keyring(), claim, connection)
        except DomainError:
            return None
        finally:
            pool.putconn(connection)
        after_statement()
        return done

    def _failed(self, environ: dict, start_response: StartResponse, error: Exception,
                begun: tuple[float, Token]) -> Iterable[bytes]:
        """Answer an error as Flask answers one a view raised: its handlers, then its
        hooks, with the request's start and id (`begun`, unbound by the access hooks)."""
        app = self.app
        context = app.request_context(environ)
        context.push()
        access.carry_on(begun)
        try:
            try:
                response = app.finalize_request(app.handle_user_exception(error))
            except Exception as unhandled:
                response = app.handle_exception(unhandled)
            return response(environ, start_response)
        finally:
            context.pop(error)


def _small_json_body(environ: dict) -> bytes | None:
    """The body of a JSON request of at most MAX_BODY bytes, read and put back for Flask
    (which may still answer the request); None for any other request."""
    if environ.get("CONTENT_TYPE", "").lower() not in _JSON or "HTTP_TRANSFER_ENCODING" in environ:
        return None
    length = environ.get("CONTENT_LENGTH", "")
    if not length.isdigit() or not 0 < int(length) <= MAX_BODY:
        return None
    body = environ["wsgi.input"].read(int(length))
    environ["wsgi.input"] = io.BytesIO(body)
    return body if len(body) == int(length) else None
