"""Moved to `couponsvc.outbox.fanout`; re-exported until every caller imports it from there."""

from ..outbox.fanout import announce, fan_out

__all__ = ["announce", "fan_out"]
