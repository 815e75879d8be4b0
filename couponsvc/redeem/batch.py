"""Scans made offline, uploaded in a batch (`POST /redemptions/batch`).

A till that lost the network verified each QR on the device, handed the goods over and
queued the scan with its own nonce, the time it was scanned, the store and the device.
Once online it uploads the queue, perhaps hours later, perhaps twice. Each item is
answered, in the order sent:

- `accepted`: redeemed now, judged at its scan time (a coupon valid when scanned is
  redeemed even if it has expired since);
- `duplicate`: this device uploaded this nonce before; the first outcome is answered
  again (`first_status`, `reason`, `redemption_id`) and nothing is redeemed twice;
- `conflict`: the scan was good when made, but the service decided otherwise first: the
  coupon was used elsewhere (or its uses were), or it was voided after the scan (the
  void wins; docs/api.md says why). Recorded as a redemption attempt `offline_conflict`;
- `rejected`: the scan could not be honoured whenever it was uploaded: a QR whose
  signature fails, a code of no coupon of the merchant, another store, a scan time in
  the future (more than `CLOCK_SKEW` ahead of the service's clock), a coupon voided
  before the scan, expired or not yet valid at its scan time, pending. Recorded as a
  redemption attempt with its reason.

The work is set-based, a few statements for the whole batch: claim every (device, nonce)
in `offline_scans` (a repeat finds its first outcome; a concurrent upload of the same
scans waits for the first to commit and then finds it); lock the coupons asked for, in
code order, so two batches sharing coupons cannot deadlock; redeem them all at once
(`batch_write.py`, with the redeem's own rule); explain only what did not redeem, with
the redeem's own `why_not`; store the outcomes and the attempts. A coupon scanned twice in
one batch (a multi-use coupon) is redeemed in rounds, the earlier scan first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import count, zip_longest
from typing import Protocol

from psycopg.errors import DeadlockDetected
from sqlalchemy import Text, bindparam, select, true, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from ..domain_error import DomainError, say
from ..ids import new_id
from ..models import Coupon, OfflineScan
from ..principal import Principal
from ..qr.keyring import KeyRing
from ..timeutil import to_utc, utcnow
from .batch_write import Claimed, redeem_many
from .json_table import TIME, json_table
from .redeem import refusal
from .refusal import INSERT_ATTEMPTS, attempt_row
from .scan import Scan, Target, resolve

MAX_ITEMS = 500
DEADLOCK_TRIES = 3
CLOCK_SKEW = timedelta(minutes=5)  # a device's clock may run this much ahead of the service's
ACTION = "batch"  # the `action` of the attempts a batch records
CONFLICT = "offline_conflict"  # their `reason` for a conflict

ACCEPTED, DUPLICATE, CONFLICTED, REJECTED = "accepted", "duplicate", "conflict", "rejected"


@dataclass(frozen=True)
class Upload:
    """One scan as the till sent it: a typed `code` or a scanned `qr`."""

    nonce: str
    device_id: str
    scanned_at: datetime
    code: str | None = None
    qr: str | None = None
    store_id: str | None = None
    uses: int = 1


@dataclass(frozen=True)
class Outcome:
    """What became of one uploaded scan (`status`), why (`reason`, a code of `CODES`, and
    `detail` for people), its redemption, and for a duplicate the first upload's status."""

    nonce: str
    status: str
    reason: str | None = None
    redemption_id: str | None = None
    code: str | None = None
    detail: str | None = None
    first_status: str | None = None


class Lookups(Protocol):
    """The failed look-ups budget of the caller (`ratelimit.LookupBudget`): a batch of typed
    codes must not be a way around it."""

    def refuse_over_budget(self) -> None: ...

    def count_failures(self, failures: int) -> None: ...


class _Unlimited:
    def refuse_over_budget(self) -> None:
        pass

    def count_failures(self, failures: int) -> None:
        pass


UNLIMITED: Lookups = _Unlimited()


@dataclass
class _Item:
    """One item on its way through the batch."""

    index: int
    upload: Upload
    scan: Scan
    fingerprint: str
    target: Target | None = None
    refused: DomainError | None = None
    redemption_id: str | None = None
    outcome: Outcome | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.upload.device_id, self.upload.nonce


def upload(session: Session, principal: Principal, ring: KeyRing, uploads: Sequence[Upload], *,
           lookups: Lookups = UNLIMITED, client_address: str | None = None) -> list[Outcome]:
    """Redeem a batch of offline scans; one outcome per upload, in order. The caller commits."""
    if principal.merchant_id is None:
        raise DomainError("forbidden", say("offline scans are uploaded with a key of their merchant"))
    _require_stores(principal, uploads)
    lookups.refuse_over_budget()
    return _deadlocks_retried(session, lambda: _upload(session, principal, ring, uploads, lookups,
                                                       client_address))


def _deadlocks_retried(session: Session, work: Callable[[], list[Outcome]]) -> list[Outcome]:
    """`work()`, run again from a savepoint when PostgreSQL broke a deadlock by aborting it.

    A batch locks its coupons in code order, so batches never deadlock one another, but a
    deal being cancelled (`campaigns/settle.py`) or tipping locks its coupons in an order of
    its own. The batch then starts over (its failed look-ups are counted again: a rare
    overcount). SQLite has a single writer and no deadlock."""
    if session.get_bind().dialect.name != "postgresql":
        return work()
    for attempt in count(1):
        try:
            with session.begin_nested():
                return work()
        except OperationalError as error:
            if attempt >= DEADLOCK_TRIES or not isinstance(error.orig, DeadlockDetected):
                raise


def _upload(session: Session, principal: Principal, ring: KeyRing, uploads: Sequence[Upload],
            lookups: Lookups, client_address: str | None) -> list[Outcome]:
    now = utcnow()
    items = [_read(principal, ring, n, u, now, client_address) for n, u in enumerate(uploads)]
    firsts: dict[tuple[str, str], _Item] = {}
    for item in items:
        firsts.setdefault(item.key, item)
    claimed = _claim(session, principal, list(firsts.values()), now)
    found = _lock(session, principal, [item for item in claimed if item.target is not None])
    lookups.count_failures(sum(1 for item in claimed if item.upload.code is not None and (
        item.target is None and item.refused.code == "invalid_code"
        or item.target is not None and item.target.code not in found)))
    for item in claimed:
        if item.target is not None and item.target.code not in found:
            item.refused = DomainError("coupon_not_found")
    missed = _redeem(session, principal, [item for item in claimed if item.refused is None], now)
    for item in missed:
        _explain(session, principal, item)
    for item in claimed:
        if item.outcome is None:
            item.outcome = _refusal_outcome(item, REJECTED)
    _store(session, principal, claimed, now)
    for item in items:
        if item.outcome is None:  # the same device and nonce again within this batch
            item.outcome = _replayed(principal, item, firsts[item.key])
    return [item.outcome for item in items]


def _require_stores(principal: Principal, uploads: Sequence[Upload]) -> None:
    if principal.store_id is not None:
        return
    missing = {n: {"store_id": ["Required for a key not pinned to a store."]}
               for n, u in enumerate(uploads) if not u.store_id}
    if missing:
        raise DomainError("validation_error", say("store_id is required for a key not pinned to a store"),
                          errors={"items": missing})


def _read(principal: Principal, ring: KeyRing, index: int, upload: Upload, now: datetime,
          client_address: str | None) -> _Item:
    """What can be told of an item without the database: its coupon, store and campaign,
    or why it is refused (a scan from the future, a bad signature or code, another store)."""
    scan = Scan(principal=principal, code=upload.code, qr=upload.qr, store_id=upload.store_id,
                uses=upload.uses, device_id=upload.device_id, client_address=client_address)
    scanned_at = to_utc(upload.scanned_at)
    item = _Item(index=index, upload=replace(upload, scanned_at=scanned_at), scan=scan,
                 fingerprint=_fingerprint(upload, scanned_at, upload.store_id or principal.store_id))
    if scanned_at > now + CLOCK_SKEW:
        item.refused = DomainError("scanned_in_future", say(
            "scanned at %(time)s, later than the service's clock allows", time=scanned_at.isoformat()))
        return item
    try:
        item.target = resolve(scan, ring)
    except DomainError as error:
        item.refused = error
    else:
        item.redemption_id = new_id("red")
    return item


def _fingerprint(upload: Upload, scanned_at: datetime, store_id: str | None) -> str:
    """Tells a repeat of a scan from another scan sent under the same device and nonce."""
    kind, raw = ("code", upload.code) if upload.code is not None else ("qr", (upload.qr or "").strip())
    parts = (kind, raw, store_id or "", scanned_at.isoformat(), str(upload.uses))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


# ------------------------------------------------------------------- the claims --
_SCANS = OfflineScan.__table__
_CLAIM_COLUMNS = (("merchant_id", Text()), ("device_id", Text()), ("nonce", Text()), ("fingerprint", Text()),
                  ("status", Text()), ("reason", Text()), ("redemption_id", Text()), ("coupon_code", Text()),
                  ("store_id", Text()), ("api_key_id", Text()), ("scanned_at", TIME), ("uploaded_at", TIME))


def _claim(session: Session, principal: Principal, items: list[_Item], now: datetime) -> list[_Item]:
    """Claim each item's (device, nonce) for this merchant, written as accepted (or as
    refused, when it already is) and corrected in `_store`; the items claimed. One already
    claimed is answered from its first outcome."""
    dialect = session.get_bind().dialect
    claims = json_table(dialect, "claims", _CLAIM_COLUMNS, [{
        "merchant_id": principal.merchant_id, "device_id": item.upload.device_id,
        "nonce": item.upload.nonce, "fingerprint": item.fingerprint,
        "status": REJECTED if item.refused else ACCEPTED,
        "reason": item.refused.code if item.refused else None,
        "redemption_id": item.redemption_id, "coupon_code": item.target.code if item.target else None,
        "store_id": item.target.store_id if item.target else (item.upload.store_id or principal.store_id),
        "api_key_id": principal.key_id, "scanned_at": item.upload.scanned_at, "uploaded_at": now,
    } for item in items])
    names = [name for name, _ in _CLAIM_COLUMNS]
    module = postgresql if dialect.name == "postgresql" else sqlite
    statement = (module.insert(_SCANS)
                 .from_select(names, select(*(claims.c[name] for name in names)).where(true())
                              .order_by(claims.c.device_id, claims.c.nonce))  # one order: claims queue
                 .on_conflict_do_nothing().returning(_SCANS.c.device_id, _SCANS.c.nonce))
    won = {tuple(row) for row in session.execute(statement)}
    others = [item for item in items if item.key not in won]
    if others:
        s = _SCANS.c
        first = {(row.device_id, row.nonce): row for row in session.execute(
            select(s.device_id, s.nonce, s.fingerprint, s.status, s.reason, s.redemption_id,
                   s.coupon_code, s.store_id)
            .where(s.merchant_id == principal.merchant_id,
                   tuple_(s.device_id, s.nonce).in_([item.key for item in others])))}
        for item in others:
            item.outcome = _answer_again(principal, item, first.get(item.key))
    return [item for item in items if item.key in won]


def _answer_again(principal: Principal, item: _Item, first) -> Outcome:
    nonce = item.upload.nonce
    if first is None:  # claimed by an upload that was rolled back since: send it again
        return Outcome(nonce, REJECTED, "idempotency_key_in_use")
    if first.fingerprint != item.fingerprint:
        return Outcome(nonce, REJECTED, "idempotency_key_reused",
                       detail=say("this device sent another scan with this nonce"))
    if principal.store_id is not None and first.store_id not in (None, principal.store_id):
        return Outcome(nonce, REJECTED, "store_not_allowed",
                       detail=say("this scanner key is pinned to another store"))
    return Outcome(nonce, DUPLICATE, first.reason, first.redemption_id, first.coupon_code,
                   first_status=first.status)


def _replayed(principal: Principal, item: _Item, first: _Item) -> Outcome:
    """An item repeating an earlier one of the same batch (same device and nonce)."""
    if first.fingerprint != item.fingerprint:
        return Outcome(item.upload.nonce, REJECTED, "idempotency_key_reused",
                       detail=say("this device sent another scan with this nonce"))
    done = first.outcome
    if done.status == DUPLICATE:
        return done
    return Outcome(item.upload.nonce, DUPLICATE, done.reason, done.redemption_id, done.code,
                   first_status=done.status)


# ------------------------------------------------------------------ the redeem --
def _lock(session: Session, principal: Principal, items: list[_Item]) -> set[str]:
    """Lock the merchant's coupons these items ask for, in code order; their codes."""
    codes = sorted({item.target.code for item in items})
    if not codes:
        return set()
    c = Coupon.__table__.c
    query = select(c.code).where(c.code.in_(codes)).order_by(c.code).with_for_update()
    if principal.merchant_scope is not None:
        query = query.where(c.merchant_id == principal.merchant_scope)
    return set(session.execute(query).scalars())


def _redeem(session: Session, principal: Principal, items: list[_Item], now: datetime) -> list[_Item]:
    """Redeem the items, one scan of each coupon per round (earliest scan first); the
    items that did not redeem. The accepted ones get their outcome."""
    by_code: dict[str, list[_Item]] = {}
    for item in sorted(items, key=lambda item: (item.upload.scanned_at, item.index)):
        by_code.setdefault(item.target.code, []).append(item)
    missed = []
    for round_ in zip_longest(*by_code.values()):
        batch = [item for item in round_ if item is not None]
        done = redeem_many(session, principal, [Claimed(
            code=item.target.code, store_id=item.target.store_id, uses=item.upload.uses,
            scanned_at=item.upload.scanned_at, campaign_id=item.target.campaign_id,
            redemption_id=item.redemption_id, device_id=item.upload.device_id) for item in batch], now)
        for item in batch:
            if item.target.code in done:
                item.outcome = Outcome(item.upload.nonce, ACCEPTED, None, item.redemption_id,
                                       item.target.code)
            else:
                missed.append(item)
    return missed


def _explain(session: Session, principal: Principal, item: _Item) -> None:
    """Why an item did not redeem, judged at its scan time, and whether that makes it a
    conflict (the service decided otherwise first) or a refusal."""
    scanned_at = item.upload.scanned_at
    error = refusal(session, principal, item.target, item.upload.uses, scanned_at)
    item.refused = error
    coupon = session.get(Coupon, item.target.code)
    used_elsewhere = error.code == "coupon_already_redeemed" or (
        error.code == "insufficient_uses" and coupon.uses_total >= item.upload.uses)
    voided_since = error.code == "coupon_voided" and coupon.voided_at is not None \
        and coupon.voided_at > scanned_at
    item.outcome = _refusal_outcome(item, CONFLICTED if used_elsewhere or voided_since else REJECTED)


def _refusal_outcome(item: _Item, status: str) -> Outcome:
    return Outcome(item.upload.nonce, status, item.refused.code, None,
                   item.target.code if item.target else None, detail=item.refused.detail)


# --------------------------------------------------------------- what is kept --
_SETTLE = (
    update(_SCANS)
    .where(_SCANS.c.merchant_id == bindparam("b_merchant_id"), _SCANS.c.device_id == bindparam("b_device_id"),
           _SCANS.c.nonce == bindparam("b_nonce"))
    .values(status=bindparam("b_status"), reason=bindparam("b_reason"), redemption_id=None)
)


def _store(session: Session, principal: Principal, items: list[_Item], now: datetime) -> None:
    """Correct the claims of the items that did not redeem, and record those as attempts:
    a conflict as `offline_conflict`, a refusal with its reason."""
    unsettled = [item for item in items if item.outcome.status != ACCEPTED and item.redemption_id]
    if unsettled:
        session.execute(_SETTLE, [{
            "b_merchant_id": principal.merchant_id, "b_device_id": item.upload.device_id,
            "b_nonce": item.upload.nonce, "b_status": item.outcome.status, "b_reason": item.outcome.reason,
        } for item in unsettled])
    attempts = [attempt_row(item.scan, ACTION, CONFLICT if item.outcome.status == CONFLICTED
                            else item.outcome.reason, now, item.upload.scanned_at)
                for item in items if item.outcome.status != ACCEPTED]
    if attempts:
        session.execute(INSERT_ATTEMPTS, attempts)
