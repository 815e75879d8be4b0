"""The one place a request's transaction is committed, and `Idempotency-Key` honoured.

`@unit_of_work` wraps a writing view (outside flask-smorest's response decorator,
so it sees the final response): it commits what the view did, or rolls it back
when the view raises. With an `Idempotency-Key` header, the response is stored in
the same transaction as the change it reports, so a replay can never describe a
change that was rolled back. A request first claims its key (a row inserted in its
own transaction), so a duplicate waits for the first and replays its answer.
Domain refusals (4xx raised as `DomainError`) are stored too, as Stripe does;
validation errors, 429 and 5xx are not.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from functools import cache, wraps

from flask import Response, current_app, g, request
from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..after_commit import run_pending
from ..errors import DomainError, domain_problem
from ..extensions import db
from ..models import IdempotencyRecord
from ..timeutil import utcnow
from .bearer import current_identity
from .schemas.common import storable

HEADER = "Idempotency-Key"
_REPLAYED_HEADERS = ("Location", "Content-Type")


def unit_of_work(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return _run(view, args, kwargs)
        key = key.strip()
        if not key or len(key) > 255 or not storable(key):
            raise DomainError("bad_request", "Idempotency-Key must be 1 to 255 printable characters")
        return _idempotent(view, args, kwargs, key)

    apidoc = getattr(wrapper, "_apidoc", {})
    manual = apidoc.setdefault("manual_doc", {})
    manual.setdefault("parameters", []).append(IDEMPOTENCY_PARAMETER)
    wrapper._apidoc = apidoc
    return wrapper


IDEMPOTENCY_PARAMETER = {
    "in": "header", "name": HEADER, "required": False, "schema": {"type": "string", "maxLength": 255},
    "description": "Makes a retry safe: the same key and body within 24 h replay the first answer; "
                   "another body is 409 idempotency_key_reused.",
}


def after_rollback(fn) -> None:
    """Have `fn()` write something (a refused attempt) once a refusal has rolled back.

    It runs in the transaction that follows the rollback, the one that also stores
    the idempotent answer, so the two are committed together.
    """
    g.setdefault("couponsvc_after_rollback", []).append(fn)


def single_statement(view):
    """Mark a view whose writes are one SQL statement on PostgreSQL (the redeem).

    Without an Idempotency-Key there is nothing else to commit with it, so it runs
    in autocommit: no BEGIN and COMMIT round trips around the one statement.
    """
    view.single_statement = True
    return view


def _run(view, args, kwargs) -> Response:
    autocommit = getattr(view, "single_statement", False) and \
        db.session.get_bind().dialect.name == "postgresql"
    if autocommit:
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    try:
        response = current_app.make_response(view(*args, **kwargs))
    except DomainError:
        _roll_back()
        db.session.commit()
        raise
    except BaseException:
        db.session.rollback()
        raise
    if autocommit:  # the statement committed itself
        run_pending(db.session)
    else:
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
    owner = current_identity().owner
    fingerprint = _fingerprint()
    if not _claim(owner, key, fingerprint):
        return _replay(owner, key, fingerprint)
    try:
        response = current_app.make_response(view(*args, **kwargs))
    except DomainError as error:
        _roll_back()  # this also drops the claim
        if error.code in _NOT_STORED:
            db.session.commit()
            raise
        if not _claim(owner, key, fingerprint):
            db.session.rollback()
            return _replay(owner, key, fingerprint)
        response = domain_problem(error)
    except BaseException:
        db.session.rollback()
        raise
    db.session.execute(_STORE, {
        "p_owner": owner, "p_key": key, "status_code": response.status_code,
        "headers": json.dumps({h: response.headers[h] for h in _REPLAYED_HEADERS if h in response.headers}),
        "body": response.get_data(as_text=True),
    })
    db.session.commit()
    return response


def _claim(owner: str, key: str, fingerprint: str) -> bool:
    """Take the key for this request, or say that another request has it.

    The claim is a row inserted in this transaction (status 0, no body) and
    committed together with the answer. A concurrent request with the same key
    waits on the unique index until this transaction ends, then finds the
    answer; an expired record (older than the TTL) is taken over.
    """
    now = utcnow()
    expired = now - timedelta(seconds=current_app.config["IDEMPOTENCY_TTL"])
    claimed = db.session.execute(_claim_statement(db.session.get_bind().dialect.name), {
        "owner": owner, "key": key, "request_hash": fingerprint, "status_code": 0,
        "headers": "{}", "body": "", "created_at": now, "p_expired": expired,
    }).first()
    return claimed is not None


@cache
def _claim_statement(dialect: str):
    module = postgresql if dialect == "postgresql" else sqlite
    table = IdempotencyRecord.__table__
    statement = module.insert(table)
    return statement.on_conflict_do_update(
        index_elements=["owner", "key"],
        set_={name: statement.excluded[name]
              for name in ("request_hash", "status_code", "headers", "body", "created_at")},
        where=table.c.created_at < bindparam("p_expired", type_=table.c.created_at.type),
    ).returning(table.c.owner)


_STORE = (
    update(IdempotencyRecord.__table__)
    .where(IdempotencyRecord.owner == bindparam("p_owner"), IdempotencyRecord.key == bindparam("p_key"))
)


def _replay(owner: str, key: str, fingerprint: str) -> Response:
    record = db.session.execute(select(IdempotencyRecord).where(
        IdempotencyRecord.owner == owner, IdempotencyRecord.key == key)).scalar_one_or_none()
    db.session.rollback()
    if record is None or record.status_code == 0:  # the first request rolled back meanwhile
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
