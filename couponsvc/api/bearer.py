"""Bearer-key authentication of the API: the caller's `Principal`, once per request.

The rules (what a key is, whether it is live, what it may see) are in
`couponsvc/principal.py`, which knows no Flask; this module only reads the header
and keeps the answer on `g` for the rest of the request.
"""

from __future__ import annotations

from functools import wraps

from flask import g, request
from sqlalchemy.orm import Session

from ..domain_error import DomainError, say
from ..extensions import db
from ..principal import Principal, authenticate, identify


def current_principal() -> Principal:
    """The caller, authenticated against the database once per request."""
    principal = g.get("principal")
    if principal is None:
        principal = authenticate(_session(), request.headers.get("Authorization"))
        g.principal = g.identity = principal
    return principal


def current_identity() -> Principal:
    """The caller as its key says (see `identify`); enough to scope an idempotency key."""
    identity = g.get("identity")
    if identity is None:
        identity = identify(_session(), request.headers.get("Authorization"))
        g.identity = identity
    return identity


def _session() -> Session:
    return db.session


def requires(*roles: str):
    """View decorator: authenticate, then refuse roles outside `roles` with 403."""
    return _requiring(roles, current_principal)


def requires_live_key_in_write(*roles: str):
    """Like `requires`, for a view whose single write statement itself checks that the
    key is not revoked (the redeem): it saves the extra round trip of `authenticate`."""
    return _requiring(roles, current_identity)


def _requiring(roles: tuple[str, ...], who):
    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            principal = who()
            if principal.role not in roles:
                raise DomainError("forbidden", say("a %(role)s key may not do this; it needs "
                                                   "one of: %(roles)s", role=principal.role,
                                                   roles=", ".join(roles)), roles=list(roles))
            return view(*args, **kwargs)

        wrapper.roles = roles  # read by the OpenAPI reference (`operations.py`)
        return wrapper

    return decorator
