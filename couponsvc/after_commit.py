"""Run callbacks only once the session's transaction has committed.

Domain code calls `after_commit(session, fn, *args)` (to enqueue a job, say); the
callbacks run after COMMIT and are dropped on ROLLBACK, so nothing is ever
enqueued for a change that did not happen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)
_KEY = "couponsvc.after_commit"


def after_commit(session: Session, fn: Callable[..., Any], *args: Any) -> None:
    session.info.setdefault(_KEY, []).append((fn, args))


@event.listens_for(Session, "after_commit")
def _run(session: Session) -> None:
    run_pending(session)


def run_pending(session: Session) -> None:
    """Run the callbacks now: for a statement that committed itself (autocommit)."""
    callbacks = session.info.pop(_KEY, [])
    for fn, args in callbacks:
        try:
            fn(*args)
        except Exception:  # the change is committed; the relay sweep catches up
            log.exception("after-commit callback %r failed", fn)


@event.listens_for(Session, "after_soft_rollback")
def _drop(session: Session, previous_transaction: Any) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_KEY, None)
