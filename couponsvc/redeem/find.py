"""Which redemptions a caller may see: its merchant's, and a pinned scanner its store's only."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ..domain_error import DomainError
from ..models import Redemption
from ..principal import Principal


def find_redemption(session: Session, principal: Principal, redemption_id: str) -> Redemption:
    found = session.get(Redemption, redemption_id)
    if (found is None or not principal.sees(found.merchant_id)
            or principal.store_id not in (None, found.store_id)):
        raise DomainError("redemption_not_found")
    return found
