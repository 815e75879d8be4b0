"""People who sign in to the admin pages: operators and merchant managers. No Flask here.

An operator sees every merchant (`couponsvc create-admin`); a manager sees one merchant
and is created by an operator or by a manager of the same merchant. Each acts through the
`Principal` the API's keys get (`principal_of`), so the admin reaches the same domain
functions and visibility rules as the API and adds none of its own.

Passwords are hashed with argon2id (argon2-cffi's `PasswordHasher`); a hash made with
older parameters, or by werkzeug (the first admin accounts), is replaced by a current
one at the next successful sign-in.

Sign-in is refused, whatever the password, while
- the account is locked: `max_failures` wrong passwords in a row lock it for
  `lock_seconds` (`failed_logins`, `locked_until`); an e-mail nobody has is counted the
  same way, in the limiter, so the answers do not tell whether an account exists;
- its client address has used up its budget of failures (`address_limit`, counted with
  the `limits` storage of `couponsvc.ratelimit`: Redis when configured, else memory);
- the account is disabled.

A successful sign-in opens a server-side session (`AdminSession`): the browser keeps a
random token, the table only its SHA-256. A session ends when its person signs out or
ends it from the admin, when it has been idle for `idle_seconds`, or `absolute_seconds`
after it was opened, whichever comes first.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import math
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from limits import RateLimitItem, parse
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash

from .address_identity import address_identity
from .domain_error import DomainError, say
from .models import AdminSession, AdminUser, Merchant
from .principal import MANAGER, PLATFORM, Principal, visible
from .stored_text import clean, storable
from .timeutil import utcnow

OPERATOR = "operator"
PERSON_ROLES = (OPERATOR, MANAGER)
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when nobody has the e-mail, so that an unknown e-mail takes as long
    (made at the first such sign-in, not when a process starts)."""
    return hasher.hash(secrets.token_urlsafe(16))

SYSTEM = Principal(key_id=None, role=PLATFORM, merchant_id=None, store_id=None)
"""Who acts from the command line (`create-admin`, the demo): the platform, no person."""


# Passwords ------------------------------------------------------------------------------

def hash_password(password: str) -> str:
    return hasher.hash(password)


def check_password(user: AdminUser, password: str) -> bool:
    """Whether `password` is this person's; a stale or werkzeug hash is replaced on success."""
    stored = user.password_hash or ""
    if stored.startswith("$argon2"):
        try:
            hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        if hasher.check_needs_rehash(stored):
            user.password_hash = hasher.hash(password)
        return True
    if stored and check_password_hash(stored, password):  # werkzeug's pbkdf2/scrypt
        user.password_hash = hasher.hash(password)
        return True
    return False


def password_errors(password: str | None) -> list[str]:
    if not password or len(password) < MIN_PASSWORD_LENGTH:
        return [say("At least %(num)d characters.", num=MIN_PASSWORD_LENGTH)]
    if len(password) > MAX_PASSWORD_LENGTH:
        return [say("At most %(num)d characters.", num=MAX_PASSWORD_LENGTH)]
    return []


def generate_password() -> str:
    """A password to hand over once: 16 url-safe characters (96 bits)."""
    return secrets.token_urlsafe(12)


def normalise_email(email: str | None) -> str:
    return (email or "").strip().lower()


# People ---------------------------------------------------------------------------------

def principal_of(user: AdminUser) -> Principal:
    """The principal a person acts as: the platform for an operator, else their merchant."""
    if user.role == OPERATOR:
        return Principal(key_id=None, user_id=user.id, role=PLATFORM, merchant_id=None,
                         store_id=None)
    return Principal(key_id=None, user_id=user.id, role=MANAGER, merchant_id=user.merchant_id,
                     store_id=None)


def is_operator(principal: Principal) -> bool:
    return principal.role == PLATFORM


def create_person(session: Session, principal: Principal, *, email: str, password: str,
                  role: str = MANAGER, merchant_id: str | None = None, name: str = "",
                  password_hash: str | None = None) -> AdminUser:
    """A new operator (by the platform) or manager of a merchant (by the platform or by a
    manager of that merchant; another merchant is `not_found`, as in the API).
    `password_hash`, when given, is `hash_password(password)` already made."""
    email = normalise_email(email)
    name = (name or "").strip()
    errors: dict[str, list[str]] = {}
    if role not in PERSON_ROLES:
        errors["role"] = [say("Must be one of: %(roles)s.", roles=", ".join(PERSON_ROLES))]
    if role == OPERATOR and not is_operator(principal):
        raise DomainError("forbidden", say("only an operator may create an operator"))
    if role == MANAGER:
        if not merchant_id:
            errors["merchant_id"] = [say("Choose a merchant.")]
        elif not storable(merchant_id):
            raise DomainError("not_found", say("No such merchant"))
        else:
            visible(session, principal, Merchant, merchant_id, name="merchant")
    if not _EMAIL.fullmatch(email) or len(email) > 320 or not storable(email):
        errors["email"] = [say("Enter a valid e-mail address.")]
    elif session.scalar(select(AdminUser.id).where(AdminUser.email == email)) is not None:
        errors["email"] = [say("Someone already signs in with this e-mail.")]
    if len(name) > 200:
        errors["name"] = [say("At most %(num)d characters.", num=200)]
    elif not storable(name):
        errors["name"] = [say("Contains a character that cannot be stored (NUL or a lone surrogate).")]
    if password_errors(password):
        errors["password"] = password_errors(password)
    if errors:
        raise DomainError("validation_error", say("Invalid fields: %(fields)s",
                                                  fields=", ".join(sorted(errors))), errors=errors)
    user = AdminUser(email=email, name=name, role=role,
                     password_hash=password_hash or hash_password(password),
                     merchant_id=merchant_id if role == MANAGER else None,
                     created_by=principal.user_id, failed_logins=0)
    session.add(user)
    session.flush()
    return user


def set_operator_password(session: Session, email: str, password: str) -> tuple[AdminUser, bool]:
    """Create the operator with this e-mail, or set their password (the command line's
    `create-admin`), which ends every session opened with the old one (a stolen password
    is replaced this way). Returns the person and whether they were created."""
    email = normalise_email(email)
    errors = {}
    if not _EMAIL.fullmatch(email) or not storable(email):
        errors["email"] = [say("Enter a valid e-mail address.")]
    if password_errors(password):
        errors["password"] = password_errors(password)
    if errors:
        raise DomainError("validation_error", say("Invalid fields: %(fields)s",
                                                  fields=", ".join(sorted(errors))), errors=errors)
    user = session.scalar(select(AdminUser).where(AdminUser.email == email))
    if user is None:
        return create_person(session, SYSTEM, email=email, password=password, role=OPERATOR), True
    if user.role != OPERATOR:
        raise DomainError("conflict", say("%(email)s is a merchant manager, not an operator",
                                          email=email))
    user.password_hash = hash_password(password)
    user.failed_logins, user.locked_until, user.disabled_at = 0, None, None
    end_sessions(session, user.id)
    return user, False


def demo_person(session: Session, *, email: str, role: str, merchant_id: str | None = None,
                name: str = "") -> tuple[AdminUser, str]:
    """The demo's person with this e-mail, created or given a fresh generated password (and
    let in again), like the demo's fresh keys. Returns the person and the password."""
    password = generate_password()
    user = session.scalar(select(AdminUser).where(AdminUser.email == normalise_email(email)))
    if user is None:
        user = create_person(session, SYSTEM, email=email, password=password, role=role,
                             merchant_id=merchant_id, name=name)
    else:
        user.password_hash = hash_password(password)
        user.failed_logins, user.locked_until, user.disabled_at = 0, None, None
    return user, password


def visible_person(session: Session, principal: Principal, user_id: str) -> AdminUser:
    """A person the principal may manage: any for an operator; for a manager, the people
    of their own merchant (operators and other merchants' people are `not_found`)."""
    user = session.get(AdminUser, user_id) if user_id else None
    if user is None or not (is_operator(principal) or (
            user.role == MANAGER and user.merchant_id == principal.merchant_id)):
        raise DomainError("not_found", say("No such person"))
    return user


def list_people(session: Session, principal: Principal, *, merchant_id: str | None = None,
                limit: int = 200) -> list[AdminUser]:
    """The people the principal may manage, operators first, then by e-mail."""
    query = select(AdminUser)
    scope = principal.merchant_scope
    if scope is not None:
        query = query.where(AdminUser.merchant_id == scope, AdminUser.role == MANAGER)
    elif merchant_id:
        if not storable(merchant_id):
            return []
        query = query.where(AdminUser.merchant_id == merchant_id)
    query = query.order_by(AdminUser.role.desc(), AdminUser.email).limit(limit)
    return list(session.scalars(query))


def set_disabled(session: Session, principal: Principal, user_id: str, disabled: bool, *,
                 now: datetime | None = None) -> AdminUser:
    """Disable (and end every session of) or enable a person; nobody disables themself."""
    user = visible_person(session, principal, user_id)
    if disabled and user.id == principal.user_id:
        raise DomainError("invalid_state", say("You cannot disable yourself"))
    now = now or utcnow()
    if disabled:
        if user.disabled_at is None:
            user.disabled_at = now
        end_sessions(session, user.id, now=now)
    else:
        user.disabled_at = None
        user.failed_logins, user.locked_until = 0, None
    return user


# Sign-in ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SignInPolicy:
    """How many failures lock what for how long (the settings of `docs/operations.md`)."""

    max_failures: int = 5
    lock_seconds: int = 900
    address_limit: str = "20/15minutes"
    idle_seconds: int = 2 * 3600
    absolute_seconds: int = 12 * 3600

    @property
    def address_item(self) -> RateLimitItem:
        return parse(self.address_limit)


@dataclass
class SignIn:
    """What a sign-in attempt came to: `user` when let in, else the refusal's `reason`
    (`wrong` for a wrong password or an unknown e-mail, `locked`, `address_limited`,
    `disabled`) and, when it ends, `retry_after` seconds. `locked_now` says this very
    failure locked the account."""

    user: AdminUser | None = None
    reason: str | None = None
    retry_after: int | None = None
    locked_now: bool = False
    known: AdminUser | None = field(default=None, repr=False)  # for the audit, never shown


class Limiter:
    """The `limits` strategy (`couponsvc.ratelimit`) counting failures per address, and per
    e-mail nobody has. An address's window's key carries the window's number by the
    caller's clock, so a window ends when that clock passes it (as the storage's own
    expiry does).

    An e-mail nobody has is counted as an account is (`failed_logins`, `locked_until`):
    its `max_failures`-th failure in a row locks it for `lock_seconds` from that failure,
    and failures are not counted while it is locked. A clock window instead would end
    its lock early, or let failures on both sides of a window's end through, and so tell
    that nobody has the e-mail. Its failures are kept for `UNKNOWN_FAILURES_KEPT` seconds
    (an account keeps them until it signs in or is locked)."""

    UNKNOWN_FAILURES_KEPT = 86400

    def __init__(self, strategy: Any) -> None:
        self.strategy = strategy

    def _key(self, item: RateLimitItem, kind: str, identity: str, now: datetime) -> tuple:
        seconds = item.get_expiry()
        window = int(now.timestamp()) // seconds
        return ("signin", kind, identity, str(window))

    def remaining(self, item: RateLimitItem, kind: str, identity: str, now: datetime) -> int | None:
        """Seconds until the window ends when it is used up; None when it is not."""
        try:
            used = self.strategy.storage.get(item.key_for(*self._key(item, kind, identity, now)))
        except Exception:  # the limiter's storage unreachable: the per-account lock remains
            return None
        if used < item.amount:
            return None
        return _window_left(item, now)

    def hit(self, item: RateLimitItem, kind: str, identity: str, now: datetime) -> bool:
        """Count a failure; True when the window is now used up."""
        try:
            self.strategy.hit(item, *self._key(item, kind, identity, now))
            used = self.strategy.storage.get(item.key_for(*self._key(item, kind, identity, now)))
        except Exception:
            return False
        return used >= item.amount

    @staticmethod
    def _unknown_keys(identity: str) -> tuple[str, str]:
        return f"signin/unknown-failures/{identity}", f"signin/unknown-locked-until/{identity}"

    def unknown_locked(self, identity: str, now: datetime) -> int | None:
        """Seconds an e-mail nobody has is still locked for; None when it is not."""
        try:
            until = self.strategy.storage.get(self._unknown_keys(identity)[1])
        except Exception:
            return None
        left = until - int(now.timestamp())
        return left if until and left > 0 else None

    def unknown_failed(self, identity: str, now: datetime, policy: SignInPolicy) -> bool:
        """Count a failure of an e-mail nobody has; True when it locks the e-mail now."""
        failures_key, lock_key = self._unknown_keys(identity)
        storage = self.strategy.storage
        try:
            failures = storage.incr(failures_key, self.UNKNOWN_FAILURES_KEPT)
            if failures < policy.max_failures:
                return False
            if failures == policy.max_failures:  # the one failure that locks (incr is atomic)
                storage.clear(failures_key)
                storage.clear(lock_key)  # a lock that ended by the caller's clock
                storage.incr(lock_key, policy.lock_seconds,
                             amount=int(now.timestamp()) + policy.lock_seconds)
        except Exception:  # the limiter's storage unreachable: counted as not locking
            return False
        return True


def _window_left(item: RateLimitItem, now: datetime) -> int:
    seconds = item.get_expiry()
    return max(1, seconds - int(now.timestamp()) % seconds)


def _email_identity(email: str) -> str:
    return hashlib.sha256(email.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def sign_in(session: Session, email: str, password: str, *, address: str, limiter: Limiter,
            policy: SignInPolicy, now: datetime | None = None) -> SignIn:
    """Check an e-mail and password; count and lock on failure. The caller commits (the
    failure counts too) and opens a session for a `user`."""
    now = now or utcnow()
    email = normalise_email(email)[:320]
    if not storable(email):
        email = ""  # nobody's: refused like an unknown e-mail, without asking the database
    password = (password or "")[:MAX_PASSWORD_LENGTH]
    address = address_identity(address)
    address_wait = limiter.remaining(policy.address_item, "addr", address, now)
    # Locked until the caller commits: attempts on one account are counted one after the
    # other, so a crowd of them sent at once cannot each read the same count of failures.
    user = session.scalar(select(AdminUser).where(AdminUser.email == email)
                          .with_for_update()) if email else None
    if address_wait is not None:
        return SignIn(reason="address_limited", retry_after=address_wait, known=user)
    if user is None:  # refused as an account would be: the same counts, waits and work
        identity = _email_identity(email)
        wait = limiter.unknown_locked(identity, now)
        if wait is not None:
            limiter.hit(policy.address_item, "addr", address, now)
            return SignIn(reason="locked", retry_after=wait)
        _equal_time(password)
        limiter.hit(policy.address_item, "addr", address, now)
        if limiter.unknown_failed(identity, now, policy):
            return SignIn(reason="locked", locked_now=True, retry_after=policy.lock_seconds)
        return SignIn(reason="wrong")
    if user.locked_until is not None and user.locked_until > now:
        limiter.hit(policy.address_item, "addr", address, now)
        return SignIn(reason="locked", known=user,
                      retry_after=math.ceil((user.locked_until - now).total_seconds()))
    right = check_password(user, password)
    if not right or user.disabled_at is not None:
        # a disabled person's right password is counted as a wrong one: were it not, it
        # would be told apart by the lock it does not bring
        limiter.hit(policy.address_item, "addr", address, now)
        failures = (user.failed_logins or 0) + 1
        if failures >= policy.max_failures:
            user.failed_logins, user.locked_until = 0, now + timedelta(seconds=policy.lock_seconds)
            return SignIn(reason="locked", known=user, locked_now=True,
                          retry_after=policy.lock_seconds)
        user.failed_logins = failures
        return SignIn(reason="disabled" if right else "wrong", known=user)
    user.failed_logins, user.locked_until = 0, None
    return SignIn(user=user, known=user)


def _equal_time(password: str) -> bool:
    """Verify against a throwaway hash: an unknown e-mail costs what a known one does."""
    try:
        return hasher.verify(_dummy_hash(), password)
    except VerificationError:
        return False


# Sessions -----------------------------------------------------------------------------------

def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Opened:
    record: AdminSession
    token: str  # for the cookie; only its hash is stored


def open_session(session: Session, user: AdminUser, *, address: str, user_agent: str,
                 policy: SignInPolicy, now: datetime | None = None) -> Opened:
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    record = AdminSession(token_hash=_token_hash(token), user_id=user.id, created_at=now,
                          last_seen_at=now, expires_at=now + timedelta(seconds=policy.absolute_seconds),
                          address=clean(address)[:64], user_agent=clean(user_agent)[:300])
    session.add(record)
    session.flush()
    return Opened(record=record, token=token)


TOUCH_EVERY = timedelta(seconds=60)
"""`last_seen_at` is written at most this often: not a write on every page."""


def find_session(session: Session, token: str | None, *, policy: SignInPolicy,
                 now: datetime | None = None, touch: bool = True) -> tuple[AdminSession, AdminUser] | None:
    """The live session of this token and its person, its `last_seen_at` brought up to
    date (unless `touch` is False: a page's own polling is not the person's doing);
    None for an unknown, ended, expired or idle session or a disabled person."""
    if not token or len(token) > 100:
        return None
    now = now or utcnow()
    found = session.execute(
        select(AdminSession, AdminUser).join(AdminUser, AdminUser.id == AdminSession.user_id)
        .where(AdminSession.token_hash == _token_hash(token))).first()
    if found is None:
        return None
    record, user = found
    if not hmac.compare_digest(record.token_hash, _token_hash(token)):
        return None
    if (record.ended_at is not None or record.expires_at <= now or user.disabled_at is not None
            or record.last_seen_at + timedelta(seconds=policy.idle_seconds) <= now):
        return None
    if touch and now - record.last_seen_at >= TOUCH_EVERY:
        record.last_seen_at = now
    return record, user


def end_session(session: Session, user_id: str, session_id: str, *,
                now: datetime | None = None) -> AdminSession:
    """End one of this person's sessions (another person's is `not_found`)."""
    record = session.get(AdminSession, session_id) if session_id else None
    if record is None or record.user_id != user_id:
        raise DomainError("not_found", say("No such session"))
    if record.ended_at is None:
        record.ended_at = now or utcnow()
    return record


def end_sessions(session: Session, user_id: str, *, keep: str | None = None,
                 now: datetime | None = None) -> int:
    """End every live session of a person but `keep`; returns how many were ended."""
    query = (update(AdminSession)
             .where(AdminSession.user_id == user_id, AdminSession.ended_at.is_(None))
             .values(ended_at=now or utcnow())
             .execution_options(synchronize_session=False))
    if keep is not None:
        query = query.where(AdminSession.id != keep)
    return session.execute(query).rowcount or 0


def live_sessions(session: Session, user_id: str, *, policy: SignInPolicy,
                  now: datetime | None = None) -> list[AdminSession]:
    """A person's sessions that have not ended or expired, most recently seen first."""
    now = now or utcnow()
    idle_since = now - timedelta(seconds=policy.idle_seconds)
    return list(session.scalars(
        select(AdminSession).where(AdminSession.user_id == user_id,
                                   AdminSession.ended_at.is_(None),
                                   AdminSession.expires_at > now,
                                   AdminSession.last_seen_at > idle_since)
        .order_by(AdminSession.last_seen_at.desc()).limit(100)))


def count_live_sessions(session: Session, user_ids: list[str], *, policy: SignInPolicy,
                        now: datetime | None = None) -> dict[str, int]:
    if not user_ids:
        return {}
    now = now or utcnow()
    idle_since = now - timedelta(seconds=policy.idle_seconds)
    rows = session.execute(
        select(AdminSession.user_id, func.count()).where(
            AdminSession.user_id.in_(user_ids), AdminSession.ended_at.is_(None),
            AdminSession.expires_at > now, AdminSession.last_seen_at > idle_since)
        .group_by(AdminSession.user_id))
    return {user_id: count for user_id, count in rows}


def merchant_choices(session: Session, principal: Principal, *, limit: int = 1000) -> list[Merchant]:
    """The merchants whose people the principal may manage: all for an operator (by name),
    their own for a manager."""
    query = select(Merchant).order_by(Merchant.name, Merchant.id).limit(limit)
    if principal.merchant_scope is not None:
        query = query.where(Merchant.id == principal.merchant_scope)
    return list(session.scalars(query))
