"""The principal: who acts (a role, a merchant, a store), what it may see, and API keys.

No Flask here, nor anywhere it imports: domain functions take a `Principal`, however
the caller was identified. `api/bearer.py` builds one from an `Authorization: Bearer`
header (`authenticate`); the admin pages of a later issue log a person in and build
one without a key: `Principal(key_id=None, user_id=<AdminUser.id>, role=MANAGER,
merchant_id=...)`. Such a principal reaches the same functions and `visible()` rules;
only the redeem needs a key (its one statement checks that the key is still live).

A key is `cpn_<role>_<43 random url-safe chars>` (256 bits). Only its SHA-256 is
stored: the secret is random, so a slow password hash would add nothing but latency
on every scan. The readable prefix (`cpn_scanner_Ab3x`) is kept to tell keys apart.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass
from typing import Any, TypeVar

from cachetools import LRUCache
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from .domain_error import DomainError, say
from .models import ApiKey, Merchant, Store
from .timeutil import utcnow

T = TypeVar("T")

PLATFORM = "platform"
MANAGER = "manager"
SCANNER = "scanner"
ROLES = (PLATFORM, MANAGER, SCANNER)


@dataclass(frozen=True)
class Principal:
    """Who acts. `key_id` is the API key it came with, None for a person logged in
    (then `user_id` names them); `store_id` pins a scanner to one store."""

    key_id: str | None
    role: str
    merchant_id: str | None
    store_id: str | None
    user_id: str | None = None

    def sees(self, merchant_id: str | None) -> bool:
        return self.role == PLATFORM or (merchant_id is not None and merchant_id == self.merchant_id)

    @property
    def merchant_scope(self) -> str | None:
        """The merchant whose rows a list shows it; None for the platform: every merchant's."""
        return None if self.role == PLATFORM else self.merchant_id


def visible(session: Session, principal: Principal, model: type[T], key: Any, *, name: str,
            for_update: bool = False) -> T:
    """The `model` row with this key, if the principal may see its merchant; `not_found`
    otherwise: another merchant's object is exactly as absent as one that never was."""
    row = session.get(model, key, with_for_update=for_update or None) if key is not None else None
    owner = None if row is None else (row.id if isinstance(row, Merchant) else row.merchant_id)
    if row is None or not principal.sees(owner):
        raise DomainError("not_found", f"No such {name}")
    return row


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    secret: str


def create_key(session: Session, *, role: str, merchant_id: str | None = None,
               store_id: str | None = None, label: str = "", key_id: str | None = None) -> CreatedKey:
    """Create a key; the secret is returned once and never stored. `key_id`: the id it is
    to have (the admin's key form names it in advance, to make its key once)."""
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
                 prefix=secret[: len(f"cpn_{role}_") + 4], key_hash=hash_key(secret),
                 **({"id": key_id} if key_id else {}))
    session.add(key)
    session.flush()
    return CreatedKey(key=key, secret=secret)


def revoke_key(session: Session, principal: Principal, key_id: str) -> ApiKey:
    key = visible(session, principal, ApiKey, key_id, name="API key")
    if principal.role == SCANNER:
        raise DomainError("forbidden", say("a %(role)s key may not do this; it needs one of: "
                                           "%(roles)s", role=SCANNER, roles=f"{PLATFORM}, {MANAGER}"),
                          roles=[PLATFORM, MANAGER])
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    return key


_KEY_BY_HASH = (
    select(ApiKey.id, ApiKey.role, ApiKey.merchant_id, ApiKey.store_id)
    .where(ApiKey.key_hash == bindparam("key_hash"), ApiKey.revoked_at.is_(None))
)
_KEY_IS_LIVE = select(ApiKey.id).where(ApiKey.id == bindparam("key_id"), ApiKey.revoked_at.is_(None))

# key hash -> Principal. A key's id, role, merchant and store never change, only its
# revocation does, so what a key is may be remembered; whether it is still live may not:
# only `authenticate`, after finding the key live, writes here, and `identify` is for
# views whose write re-checks the key. Least recently used keys are forgotten first
# (cachetools is not thread-safe: gunicorn threads share it under the lock).
_IDENTITIES_MAX = 10_000
_IDENTITIES: LRUCache[str, Principal] = LRUCache(maxsize=_IDENTITIES_MAX)
_IDENTITIES_LOCK = threading.Lock()


def authenticate(session: Session, header: str | None) -> Principal:
    """The key's principal, checked against the database now (revocation included)."""
    key_hash = _hash_of(header)
    row = session.execute(_KEY_BY_HASH, {"key_hash": key_hash}).first()
    if row is None:
        raise DomainError("unauthenticated", "The API key is not valid or was revoked")
    principal = Principal(key_id=row.id, role=row.role, merchant_id=row.merchant_id,
                          store_id=row.store_id)
    with _IDENTITIES_LOCK:
        _IDENTITIES[key_hash] = principal
    return principal


def identify(session: Session, header: str | None) -> Principal:
    """What the key is, from memory when it was seen before; NOT proof that it is live.

    Only for a view whose one write re-checks the key in the same statement (`key_is_live`).
    """
    return remembered(header) or authenticate(session, header)


def remembered(header: str | None) -> Principal | None:
    """`identify`'s answer when this process has seen the key, else None (it asks the
    database nothing, and refuses nothing: a header that is no key is None too)."""
    try:
        key_hash = _hash_of(header)
    except DomainError:
        return None
    with _IDENTITIES_LOCK:
        return _IDENTITIES.get(key_hash)


def key_is_live(session: Session, key_id: str) -> bool:
    return session.execute(_KEY_IS_LIVE, {"key_id": key_id}).first() is not None


def _hash_of(header: str | None) -> str:
    if not header or not header.startswith("Bearer "):
        raise DomainError("unauthenticated", "Send Authorization: Bearer <api key>")
    secret = header[len("Bearer "):].strip()
    if not secret.startswith("cpn_") or len(secret) > 200:
        raise DomainError("unauthenticated", "The API key is not valid")
    return hash_key(secret)
