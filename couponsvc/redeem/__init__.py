"""Redemption at the till: validate, redeem, reverse, the scans made offline and uploaded
later (`batch.py`), and the record of refusals."""

from .find import find_redemption
from .redeem import Redeemed, redeem
from .refusal import record_refusal
from .reverse import Reversed, reverse
from .scan import Scan
from .validate import Validation, validate

__all__ = ["Redeemed", "Reversed", "Scan", "Validation", "find_redemption", "record_refusal",
           "redeem", "reverse", "validate"]
