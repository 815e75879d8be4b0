"""The one place a request's transaction is committed, and `Idempotency-Key` honoured.

`@unit_of_work` wraps a writing view (outside flask-smorest's response decorator,
so it sees the final response, and inside `@requires`, so that a request is
authenticated and its role checked before its `Idempotency-Key` is looked at: a
replay is authorised exactly like a first request). It commits what the view did, or
rolls it back when the view raises.

With an `Idempotency-Key` header, the answer is stored in the same transaction as
the change it reports, so a replay can never describe a change that was rolled back,
and no claim outlives a request that died: either its answer is committed with its
change, or nothing of it is. A record belongs to the API key that made it: another
key sending the same header makes a new request, and a key revoked since gets 401,
not its old answers (the replay's SELECT checks the key too, for the redeem, whose
key is identified from memory). Stored bodies are encrypted with the data keys: an
answer may carry a secret (a new API key, a webhook secret).

Two ways to store the answer:
- In a transaction (every view; the redeem on SQLite and when it is refused): the
  request first claims its key (a row inserted in its transaction), so a duplicate
  waits on the unique index for the first to end, then replays its answer; an expired
  record is taken over. The answer is written over the claim before the commit.
- In the change's own statement (`@single_statement` views on PostgreSQL: the redeem):
  the view hands `idempotency_claim()` to the domain, whose one autocommitted statement
  writes the record with the change, as a snapshot of the outcome that a renderer
  (`register_renderer`) draws the answer from again on a replay. It only writes when no
  record of the key exists; of two concurrent first requests, the second's insert
  waits for the first to commit, fails on the unique index, and its whole statement
  with it. Whenever that statement changes nothing (a refusal, a replay, an expired
  record, a lost race), the refusal it found is stored the first way (claim, then the
  answer, in one transaction), or the key's record is replayed when the claim finds one;
  when the claim took over an expired record, the request is run again the first way.

Domain refusals (4xx raised as `DomainError`) are stored too, as Stripe does;
validation errors, 429 and 5xx are not.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from functools import cache, wraps

import psycopg
from flask import Response, current_app, g, request
from psycopg_pool import ConnectionPool
from sqlalchemy import bindparam, exists, literal_column, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row

from ..after_commit import run_pending
from ..errors import DomainError, domain_problem
from ..extensions import db
from ..models import ApiKey, IdempotencyRecord
from ..models.idempotency import Claim
from ..principal import Principal, key_is_live
from ..qr_keys import data_keys
from ..statement_pool import statement_pool
from ..timeutil import utcnow
from .schemas.common import storable

HEADER = "Idempotency-Key"
ENVIRON_HEADER = "HTTP_" + HEADER.upper().replace("-", "_")  # as WSGI names the header
_REPLAYED_HEADERS = ("Location", "Content-Type")


def unit_of_work(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        key = request.environ.get(ENVIRON_HEADER)
        if key is None:
            return _run(view, args, kwargs)
        return _idempotent(view, args, kwargs, checked_key(key))

    apidoc = getattr(wrapper, "_apidoc", {})
    manual = apidoc.setdefault("manual_doc", {})
    manual.setdefault("parameters", []).append(IDEMPOTENCY_PARAMETER)
    wrapper._apidoc = apidoc
    return wrapper


def checked_key(raw: str) -> str:
    """The `Idempotency-Key` a request sent (the header's value), or 400."""
    key = raw.strip()
    if not key or len(key) > 255 or not storable(key):
        raise DomainError("bad_request", "Idempotency-Key must be 1 to 255 printable characters")
    return key


IDEMPOTENCY_PARAMETER = {
    "in": "header", "name": HEADER, "required": False, "schema": {"type": "string", "maxLength": 255},
    "description": "Makes a retry safe: the same key and body from the same API key within 24 h "
                   "replay the first answer; another body is 409 idempotency_key_reused.",
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
    in autocommit: no BEGIN and COMMIT round trips around the one statement. With
    one, the view passes `idempotency_claim()` to that statement, which stores the
    answer's snapshot itself (see the module docstring). The view sends the statement
    on `statement_connection()`.
    """
    view.single_statement = True
    return view


def idempotency_claim() -> Claim | None:
    """The claim a `@single_statement` view's statement is to write with its change;
    None when the answer is stored the ordinary way (no key, SQLite, a second try)."""
    return g.get("couponsvc_claim")


def statement_connection() -> psycopg.Connection | None:
    """The psycopg connection, in autocommit, that a `@single_statement` view's statement
    runs and commits on; None when it runs in the session's transaction (SQLite, a
    second try). It is lent by the statement pool (`couponsvc/statement_pool.py`), whose
    connections are always in autocommit."""
    lent = g.get("couponsvc_autocommit")
    return None if lent is None else lent[1]


_RENDERERS: dict[str, Callable[[str], Response]] = {}


def register_renderer(name: str, render: Callable[[str], Response]) -> None:
    """How to draw the answer again from the snapshot that a statement stored under
    `renderer=name`: `render(snapshot_text)`, the same function that drew the first."""
    _RENDERERS[name] = render


def _one_statement(view) -> bool:
    return getattr(view, "single_statement", False) and db.engine.dialect.name == "postgresql"


def _autocommit() -> None:
    """Lend the view a connection in autocommit (`statement_connection`)."""
    if _has_session() and db.session().in_transaction():  # authentication read the key
        db.session.commit()  # ... end that transaction
    pool = statements()
    g.couponsvc_autocommit = (pool, pool.getconn())


def statements() -> ConnectionPool:
    """The pool of connections in autocommit that one-statement views run on."""
    config = current_app.config
    return statement_pool(db.engine, config["DB_POOL_SIZE"],
                          config["SQLALCHEMY_ENGINE_OPTIONS"].get("connect_args", {}))


def after_statement() -> None:
    """Run what a `@single_statement` view's statement, which committed itself, left to do
    after its commit (`after_commit.py`: the deliveries it announced); nothing waits when
    the request made no session."""
    if _has_session():
        run_pending(db.session)


def _has_session() -> bool:
    """Whether this request made a session yet: a redeem that needs none makes none
    (making one and closing it was about 1% of a redeem)."""
    return db.session.registry.has()


def _give_back() -> None:
    """Return the lent connection to its pool (which throws it away if it broke)."""
    lent = g.pop("couponsvc_autocommit", None)
    if lent is not None:
        pool, connection = lent
        pool.putconn(connection)


def _run(view, args, kwargs) -> Response:
    autocommit = _one_statement(view)
    if autocommit:
        _autocommit()
    try:
        response = _call(view, args, kwargs)
    except DomainError:
        _roll_back()
        db.session.commit()
        raise
    except BaseException:
        db.session.rollback()
        raise
    if autocommit:  # the statement committed itself
        after_statement()
    else:
        db.session.commit()
    return response


def _call(view, args, kwargs) -> Response:
    try:
        try:
            response = view(*args, **kwargs)
        finally:
            _give_back()
        return current_app.make_response(response)
    except Exception:
        _refuse_a_revoked_key()
        raise


def _refuse_a_revoked_key() -> None:
    """401 for a key revoked since `identify` remembered it, whatever else was wrong with
    its request (the redeem checks the key in its statement, which a refusal never ran)."""
    identity = g.get("identity")
    if g.get("principal") is None and identity is not None and identity.key_id is not None:
        db.session.rollback()
        if not key_is_live(db.session, identity.key_id):
            raise DomainError("unauthenticated", "The API key is not valid or was revoked") from None


def _roll_back() -> None:
    db.session.rollback()
    for fn in g.pop("couponsvc_after_rollback", []):
        fn()


# Refusals that say nothing about the outcome of the operation are not remembered.
_NOT_STORED = frozenset({"rate_limited", "validation_error", "unauthenticated", "forbidden",
                         "idempotency_key_in_use", "idempotency_key_reused"})


def _idempotent(view, args, kwargs, key: str) -> Response:
    claim = Claim(api_key_id=_scope(), key=key, request_hash=_fingerprint())
    if _one_statement(view):
        outcome = _in_one_statement(view, args, kwargs, claim)
        if isinstance(outcome, Response):
            return outcome
        return _refused(outcome, claim, again=lambda: _in_transaction(view, args, kwargs, claim))
    return _in_transaction(view, args, kwargs, claim)


def _scope() -> str:
    """Whose records these are: the API key authorised for this request."""
    principal = g.get("principal") or g.get("identity")
    if principal is None:
        raise RuntimeError("@unit_of_work must sit below @requires: a request is authorised "
                           "before its Idempotency-Key is looked at")
    return scope_of(principal)


def scope_of(principal: Principal) -> str:
    """Whose idempotency records a principal's requests make: its API key's, or its person's."""
    return principal.key_id or f"user:{principal.user_id}"


def _in_one_statement(view, args, kwargs, claim: Claim) -> Response | DomainError:
    """The answer when the view's one statement made the change and stored it with it;
    the refusal when it changed nothing (then `_refused` stores it, or replays)."""
    _autocommit()
    g.couponsvc_claim = claim
    try:
        response = _call(view, args, kwargs)
    except DomainError as error:
        return error
    except BaseException:
        db.session.rollback()
        raise
    finally:
        g.pop("couponsvc_claim", None)
    after_statement()
    return response


def _in_transaction(view, args, kwargs, claim: Claim) -> Response:
    if not _claim(claim):
        return _replay(claim)
    try:
        response = _call(view, args, kwargs)
    except DomainError as error:
        return _refused(error, claim)
    except BaseException:
        db.session.rollback()
        raise
    return _stored(response, claim)


def _refused(error: DomainError, claim: Claim, again: Callable[[], Response] | None = None) -> Response:
    """Answer a refusal: stored under the key with what the refusal records, unless the
    key turns out to be another request's (then that request's answer is replayed).

    `again`: a one-statement view's refusal is unfounded when the claim took over an
    expired record, since that record is what kept its statement from changing anything;
    the request is then run again in a transaction that holds the claim."""
    _roll_back()  # this also drops a claim taken in this transaction
    taken = error.code == "idempotency_key_in_use"  # by a request that committed meanwhile
    if error.code in _NOT_STORED and not taken:
        db.session.commit()
        raise error
    claimed = _claim(claim)
    if claimed is None:
        db.session.rollback()
        return _replay(claim)
    if taken:  # ... and is gone again (expired): nothing to answer, nothing was done
        db.session.rollback()
        raise error
    if again is not None and claimed.took_over:
        db.session.rollback()  # with the refused attempt recorded after the first rollback
        return again()
    return _stored(domain_problem(error), claim)


def _stored(response: Response, claim: Claim) -> Response:
    db.session.execute(_STORE, {
        "p_api_key_id": claim.api_key_id, "p_key": claim.key, "status_code": response.status_code,
        "headers": json.dumps({h: response.headers[h] for h in _REPLAYED_HEADERS if h in response.headers}),
        "body": data_keys().encrypt(response.get_data(as_text=True)),
    })
    db.session.commit()
    return response


def _claim(claim: Claim) -> Row | None:
    """Take the key for this request (`took_over`: from an expired record), or None
    when another request has it.

    The claim is a row inserted in this transaction (status 0, no body) and
    committed together with the answer. A concurrent request with the same key
    waits on the unique index until this transaction ends, then finds the
    answer; an expired record (older than the TTL) is taken over.
    """
    now = utcnow()
    return db.session.execute(_claim_statement(db.session.get_bind().dialect.name), {
        "api_key_id": claim.api_key_id, "key": claim.key, "request_hash": claim.request_hash,
        "status_code": 0, "headers": "{}", "body": "", "renderer": None, "created_at": now,
        "p_expired": expired_before(now),
    }).first()


def expired_before(now):
    """Records created before this are expired: taken over, never replayed."""
    return now - timedelta(seconds=current_app.config["IDEMPOTENCY_TTL"])


@cache
def _claim_statement(dialect: str):
    module = postgresql if dialect == "postgresql" else sqlite
    table = IdempotencyRecord.__table__
    statement = module.insert(table)
    return statement.on_conflict_do_update(
        index_elements=["api_key_id", "key"],
        set_={name: statement.excluded[name]
              for name in ("request_hash", "status_code", "headers", "body", "renderer", "created_at")},
        where=table.c.created_at < bindparam("p_expired", type_=table.c.created_at.type),
    ).returning(literal_column("xmax <> 0" if dialect == "postgresql" else "0").label("took_over"))


_STORE = (
    update(IdempotencyRecord.__table__)
    .where(IdempotencyRecord.api_key_id == bindparam("p_api_key_id"),
           IdempotencyRecord.key == bindparam("p_key"))
)

_RECORD = IdempotencyRecord.__table__.c
_REPLAY = select(
    _RECORD.request_hash, _RECORD.status_code, _RECORD.headers, _RECORD.body, _RECORD.renderer,
    exists().where(ApiKey.id == _RECORD.api_key_id, ApiKey.revoked_at.is_(None)).label("key_is_live"),
).where(_RECORD.api_key_id == bindparam("api_key_id"), _RECORD.key == bindparam("key"))


def _replay(claim: Claim) -> Response:
    record = db.session.execute(_REPLAY, {"api_key_id": claim.api_key_id, "key": claim.key}).first()
    db.session.rollback()
    if record is not None and not record.key_is_live and not claim.api_key_id.startswith("user:"):
        # The redeem knows its key from memory (`identify`): revocation is checked here.
        raise DomainError("unauthenticated", "The API key is not valid or was revoked")
    if record is None or record.status_code == 0:  # the first request rolled back meanwhile
        raise DomainError("idempotency_key_in_use", "Retry the request")
    if record.request_hash != claim.request_hash:
        raise DomainError("idempotency_key_reused",
                          "This Idempotency-Key was used with another request body or path")
    if record.renderer is not None:
        response = _RENDERERS[record.renderer](record.body)
    else:
        response = Response(data_keys().decrypt(record.body), status=record.status_code)
        for name, value in json.loads(record.headers).items():
            response.headers[name] = value
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _fingerprint() -> str:
    # The body as `request_body.check_body` parsed it (cached on the request); a body
    # that is not JSON, or none, is hashed as sent.
    environ = request.environ
    return fingerprint(environ["REQUEST_METHOD"], request.path, environ.get("QUERY_STRING", ""),
                       request.get_json(silent=True), request.get_data(cache=True))


def fingerprint(method: str, path: str, query: str, parsed: object, raw: bytes) -> str:
    """What a request asked, hashed: its method, path, query and body (`parsed`, the
    body's JSON, hashed in a canonical form; None: `raw`, as sent)."""
    try:
        body = raw if parsed is None else json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode()
    except RecursionError:
        body = raw
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query.encode("latin-1"), body):
        digest.update(part)
        digest.update(b"\0")
    return digest.hexdigest()
