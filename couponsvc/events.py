"""Moved to `couponsvc.outbox.emit`; re-exported until every caller imports it from there."""

from .outbox.emit import emit, emit_many

__all__ = ["emit", "emit_many"]
