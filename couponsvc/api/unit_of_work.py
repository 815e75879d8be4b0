"""The one place a request's transaction is committed, and `Idempotency-Key` honoured.

`@unit_of_work` wraps a writing view (outside flask-smorest's response decorator,
so it sees the final response): it commits what the view did, or rolls it back
when the view raises. With an `Idempotency-Key` header, the response is stored in
the same transaction as the change it reports, so a replay can never describe a
change that was rolled back. Requests with the same key take a transaction-scoped
advisory lock first, so a duplicate waits for the first and replays its answer.
Domain refusals (4xx raised as `DomainError`) are stored too, as Stripe does;
validation errors, 429 and 5xx are not.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from functools import wraps

from flask import Response, current_app, g, request
from sqlalchemy import insert, text
from sqlalchemy.exc import IntegrityError

from ..auth import current_principal
from ..errors import DomainError, domain_problem
from ..extensions import db
from ..models import IdempotencyRecord
from ..timeutil import utcnow

HEADER = "Idempotency-Key"
_INSERT_RECORD = insert(IdempotencyRecord.__table__)
_REPLAYED_HEADERS = ("Location", "Content-Type")


def unit_of_work(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return _run(view, args, kwargs)
        key = key.strip()
        if not key or len(key) > 255:
            raise DomainError("bad_request", "Idempotency-Key must be 1 to 255 characters")
        return _idempotent(view, args, kwargs, key)

    return wrapper


def after_rollback(fn) -> None:
    """Have `fn()` write something (a refused attempt) once a refusal has rolled back.

    It runs in the transaction that follows the rollback, the one that also stores
    the idempotent answer, so the two are committed together.
    """
    g.setdefault("couponsvc_after_rollback", []).append(fn)


def _run(view, args, kwargs) -> Response:
    try:
        response = current_app.make_response(view(*args, **kwargs))
    except DomainError:
        _roll_back()
        db.session.commit()
        raise
    except BaseException:
        db.session.rollback()
        raise
    db.session.commit()
    return response


def _roll_back() -> None:
    db.session.rollback()
    for fn in g.pop("couponsvc_after_rollback", []):
        fn()


# Refusals that say nothing about the outcome of the operation are not remembered.
_NOT_STORED = frozenset({"rate_limited", "validation_error", "unauthenticated", "forbidden",
                         "idempotency_key_in_use", "idempotency_key_reused"})


def _idempotent(view, args, kwargs, key: str) -> Response:
    owner = current_principal().owner
    fingerprint = _fingerprint()
    _serialise(owner, key)
    if _find(owner, key) is not None:
        return _replay(owner, key, fingerprint)
    try:
        response = current_app.make_response(view(*args, **kwargs))
    except DomainError as error:
        _roll_back()
        if error.code in _NOT_STORED:
            db.session.commit()
            raise
        _serialise(owner, key)
        response = domain_problem(error)
    except BaseException:
        db.session.rollback()
        raise
    try:
        db.session.execute(_INSERT_RECORD, {
            "owner": owner, "key": key, "request_hash": fingerprint,
            "status_code": response.status_code, "headers": json.dumps(
                {h: response.headers[h] for h in _REPLAYED_HEADERS if h in response.headers}),
            "body": response.get_data(as_text=True), "created_at": utcnow(),
        })
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return _replay(owner, key, fingerprint)
    return response


def _serialise(owner: str, key: str) -> None:
    """Requests with the same key wait for each other (PostgreSQL), so a duplicate
    replays the first answer instead of running, and failing, a second time.

    SQLite serialises writers anyway; there a duplicate that raced the first one
    may still run and is then answered from the first one's stored record.
    """
    if db.session.get_bind().dialect.name != "postgresql":
        return
    lock = int.from_bytes(hashlib.sha256(f"{owner}\0{key}".encode()).digest()[:8], "big", signed=True)
    db.session.execute(_LOCK, {"lock": lock})


_LOCK = text("SELECT pg_advisory_xact_lock(:lock)")


def _find(owner: str, key: str) -> IdempotencyRecord | None:
    """The live record for this key; an expired one is deleted, so the key starts afresh."""
    record = db.session.get(IdempotencyRecord, (owner, key))
    if record is None:
        return None
    ttl = timedelta(seconds=current_app.config["IDEMPOTENCY_TTL"])
    if record.created_at >= utcnow() - ttl:
        return record
    db.session.delete(record)
    db.session.flush()
    return None


def _replay(owner: str, key: str, fingerprint: str) -> Response:
    record = _find(owner, key)
    db.session.rollback()
    if record is None:  # the other request rolled back: the caller may simply retry
        raise DomainError("idempotency_key_in_use", "Retry the request")
    if record.request_hash != fingerprint:
        raise DomainError("idempotency_key_reused",
                          "This Idempotency-Key was used with another request body or path")
    response = Response(record.body, status=record.status_code)
    for name, value in json.loads(record.headers).items():
        response.headers[name] = value
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _fingerprint() -> str:
    raw = request.get_data(cache=True)
    try:
        body = json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        body = raw
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.path.encode(), request.query_string, body):
        digest.update(part)
        digest.update(b"\0")
    return digest.hexdigest()
