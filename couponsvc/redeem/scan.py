"""What a till sends: a typed code or a scanned QR, where, by whom, how many uses."""

from __future__ import annotations

from dataclasses import dataclass

from .. import codes
from ..domain_error import DomainError, say
from ..principal import Principal
from ..qr import payload
from ..qr.keyring import KeyRing


@dataclass(frozen=True)
class Scan:
    principal: Principal
    code: str | None = None
    qr: str | None = None
    store_id: str | None = None
    uses: int = 1
    device_id: str | None = None
    client_address: str | None = None
    # The caller's failed-look-up budgets (`lookup_blocks` subjects): while one is used up,
    # the redeem's statement changes nothing (PostgreSQL; `ratelimit.budget_subjects`)
    budgets: tuple[str, ...] = ()

    @property
    def raw(self) -> str:
        return (self.code if self.code is not None else self.qr or "")[:300]


@dataclass(frozen=True)
class Target:
    """A scan resolved to a canonical code, a store, and (for a QR) its signed campaign."""

    code: str
    store_id: str
    campaign_id: str | None


def resolve(scan: Scan, ring: KeyRing) -> Target:
    if (scan.code is None) == (scan.qr is None):
        raise DomainError("validation_error", say("send exactly one of code or qr"),
                          errors={"code": ["Send exactly one of code or qr."]})
    campaign_id = None
    if scan.code is not None:
        try:
            code = codes.canonical(scan.code)
        except codes.CodeError as error:
            raise DomainError("invalid_code", _typo(error)) from None
    else:
        try:
            claims = payload.parse(ring, scan.qr)
        except payload.QrError as error:
            raise DomainError("invalid_qr", str(error)) from None
        code, campaign_id = claims.code, claims.campaign_id
    return Target(code=code, store_id=store_for(scan), campaign_id=campaign_id)


def store_for(scan: Scan) -> str:
    pinned = scan.principal.store_id
    if pinned is not None:
        if scan.store_id is not None and scan.store_id != pinned:
            raise DomainError("store_not_allowed", say("this scanner key is pinned to another store"))
        return pinned
    if not scan.store_id:
        raise DomainError("validation_error", say("store_id is required for a key not pinned to a store"),
                          errors={"store_id": ["Required for a key not pinned to a store."]})
    return scan.store_id


def _typo(error: codes.CodeError) -> str:
    if error.reason == "length":
        return say("a coupon code has %(length)d characters", length=codes.LENGTH)
    if error.reason == "character":
        return say("the code has a character that no coupon code uses")
    if error.reason == "check":
        return say("the code does not add up: a character is mistyped")
    return str(error)
