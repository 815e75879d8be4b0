"""API keys: creation, hashing, bearer authentication and scope checks.

A key is `cpn_<role>_<43 random url-safe chars>` (256 bits). Only its SHA-256 is
stored: the secret is random, so a slow password hash would add nothing but latency
on every scan. The readable prefix (`cpn_scanner_Ab3x`) is kept to tell keys apart.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from functools import wraps

from flask import g, request
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from .errors import DomainError
from .models import ApiKey, Store
from .timeutil import utcnow

PLATFORM = "platform"
MANAGER = "manager"
SCANNER = "scanner"
ROLES = (PLATFORM, MANAGER, SCANNER)


@dataclass(frozen=True)
class Principal:
    key_id: str
    role: str
    merchant_id: str | None
    store_id: str | None

    @property
    def owner(self) -> str:
        """Whose namespace this key acts in (idempotency keys are scoped by it)."""
        return self.merchant_id or PLATFORM

    def sees(self, merchant_id: str | None) -> bool:
        return self.role == PLATFORM or (merchant_id is not None and merchant_id == self.merchant_id)


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    secret: str


def create_key(session: Session, *, role: str, merchant_id: str | None = None,
               store_id: str | None = None, label: str = "") -> CreatedKey:
    """Create a key; the secret is returned once and never stored."""
    if role not in ROLES:
        raise DomainError("validation_error", f"role must be one of {', '.join(ROLES)}",
                          errors={"role": [f"Must be one of: {', '.join(ROLES)}."]})
    if role == PLATFORM and (merchant_id or store_id):
        raise DomainError("validation_error", "a platform key belongs to no merchant")
    if role != PLATFORM and not merchant_id:
        raise DomainError("validation_error", f"a {role} key needs a merchant")
    if store_id is not None:
        if role != SCANNER:
            raise DomainError("validation_error", "only scanner keys can be pinned to a store",
                              errors={"store_id": ["Only scanner keys can be pinned to a store."]})
        store = session.get(Store, store_id)
        if store is None or store.merchant_id != merchant_id:
            raise DomainError("validation_error", "no such store for this merchant",
                              errors={"store_id": ["No such store for this merchant."]})
    secret = f"cpn_{role}_{secrets.token_urlsafe(32)}"
    key = ApiKey(role=role, merchant_id=merchant_id, store_id=store_id, label=label,
                 prefix=secret[: len(f"cpn_{role}_") + 4], key_hash=hash_key(secret))
    session.add(key)
    session.flush()
    return CreatedKey(key=key, secret=secret)


def revoke_key(session: Session, principal: Principal, key_id: str) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None or not principal.sees(key.merchant_id):
        raise DomainError("not_found", "No such API key")
    if principal.role == SCANNER:
        raise DomainError("forbidden", "scanner keys cannot revoke keys")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    return key


_KEY_BY_HASH = (
    select(ApiKey.id, ApiKey.role, ApiKey.merchant_id, ApiKey.store_id)
    .where(ApiKey.key_hash == bindparam("key_hash"), ApiKey.revoked_at.is_(None))
)


def authenticate(session: Session, header: str | None) -> Principal:
    if not header or not header.startswith("Bearer "):
        raise DomainError("unauthenticated", "Send Authorization: Bearer <api key>")
    secret = header[len("Bearer "):].strip()
    if not secret.startswith("cpn_") or len(secret) > 200:
        raise DomainError("unauthenticated", "The API key is not valid")
    row = session.execute(_KEY_BY_HASH, {"key_hash": hash_key(secret)}).first()
    if row is None:
        raise DomainError("unauthenticated", "The API key is not valid or was revoked")
    return Principal(key_id=row.id, role=row.role, merchant_id=row.merchant_id, store_id=row.store_id)


def current_principal() -> Principal:
    principal = g.get("principal")
    if principal is None:
        from .extensions import db

        principal = authenticate(db.session, request.headers.get("Authorization"))
        g.principal = principal
    return principal


def requires(*roles: str):
    """View decorator: authenticate, then refuse roles outside `roles` with 403."""

    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            principal = current_principal()
            if principal.role not in roles:
                raise DomainError("forbidden", f"a {principal.role} key may not do this")
            return view(*args, **kwargs)

        wrapper._roles = roles  # read by the OpenAPI security documentation
        return wrapper

    return decorator


def visible_merchant(principal: Principal, merchant_id: str | None) -> None:
    """Raise 404 for an object of another merchant: never reveal that it exists."""
    if not principal.sees(merchant_id):
        raise DomainError("not_found")
