"""Draining one integration: send what is due, in batches, until nothing is.

A drain job holds the integration's lock (`couponsvc/outbox/wakeup.py`). Each round it clears the
integration's flag, claims up to `BATCH` due deliveries in one statement, calls the
adapter for each in turn over one keep-alive session, and records the attempts in
one transaction (every `RECORD_EVERY` seconds when the receiver is slow, so a
worker killed mid-round re-sends at most that much). It stops when a round finds
less than a full batch and nothing flagged the integration meanwhile; after `BUDGET` seconds it hands over (lets the
lock go and queues a fresh drain behind the other integrations' jobs), so one busy
integration cannot starve the others on a shared worker.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from integrations.adapter import Context

from .. import integration_credentials as credentials
from ..adapters import http_session
from ..data_keys import DataKeyError, DataKeys
from ..models import Integration
from ..outbox.wakeup import LOCK_TTL, drains, wake
from ..timeutil import utcnow
from . import batch, health
from .attempt import Attempt, attempt

log = logging.getLogger(__name__)

BATCH = 100
BUDGET = 5.0  # seconds of calls per drain job before it hands over
LEASE_MARGIN = 15.0  # seconds beyond the budget and one call's timeout
KEEP_EVERY = 1.0  # seconds between extensions of the lock while calling
RECORD_EVERY = 1.0  # seconds of calls after which a round records what it has so far


_INTEGRATION = select(Integration.status, Integration.adapter, Integration.config, Integration.credentials,
                      Integration.timeout, Integration.failing_since).where(Integration.id == bindparam("id"))


@dataclass(frozen=True)
class Round:
    sent: int
    more: bool  # a full batch, or stopped early: more may be due


def drain(session: Session, integration_id: str, token: str, *, keys: DataKeys,
          allow_private_targets: bool, disable_failing_after: int) -> int:
    """Run the drain that `token` was queued for; the number of attempts it made. The
    operator's settings come in as arguments: the data keys that decrypt credentials,
    whether receivers may be private addresses (COUPONSVC_ALLOW_PRIVATE_WEBHOOK_TARGETS),
    after how many seconds of failures an integration is disabled
    (COUPONSVC_DISABLE_FAILING_AFTER)."""
    state = drains()
    sent, deadline = 0, time.monotonic() + BUDGET
    try:
        while True:
            if not state.keep(integration_id, token):
                return sent  # another drain holds the integration now
            state.begin(integration_id)
            done = send_round(session, integration_id, token, deadline, keys, allow_private_targets,
                              disable_failing_after)
            sent += done.sent
            if not done.more and state.finish(integration_id, token):
                return sent
            if time.monotonic() >= deadline:  # more to do, but others' turn first
                state.release(integration_id, token)
                wake([integration_id])
                return sent
    except BaseException:
        state.release(integration_id, token)
        raise


def send_round(session: Session, integration_id: str, token: str, deadline: float, keys: DataKeys,
               allow_private_targets: bool, disable_failing_after: int) -> Round:
    integration = session.connection().execute(_INTEGRATION, {"id": integration_id}).first()
    if integration is None or integration.status != "active":
        session.rollback()
        return Round(0, False)
    try:  # decrypted once a round, kept in memory only
        config = credentials.unseal(integration.config, integration.credentials, keys)
    except DataKeyError:
        log.error("integration %s: no data key decrypts its credentials; its deliveries wait", integration_id)
        session.rollback()
        return Round(0, False)
    timeout, was_failing = integration.timeout, integration.failing_since is not None
    now = utcnow()
    lease = now + timedelta(seconds=max(0.0, deadline - time.monotonic()) + timeout + LEASE_MARGIN)
    claimed = batch.claim(session, integration_id, BATCH, now, lease)
    session.commit()
    if not claimed:
        return Round(0, False)

    context = Context(timeout=timeout, allow_private_targets=allow_private_targets,
                      session=http_session(allow_private_targets))
    state, kept = drains(), float("-inf")
    unrecorded: list[Attempt] = []
    made, stopped, flushed = 0, False, time.monotonic()
    for item in claimed:
        clock = time.monotonic()
        if made and clock >= deadline:
            stopped = True
            break
        if clock - kept >= KEEP_EVERY:  # the lock must outlive the call about to be made
            if not state.keep(integration_id, token, max(LOCK_TTL, timeout + LEASE_MARGIN)):
                stopped = True  # another drain took over: give the rest back to it
                break
            kept = clock
        unrecorded.append(attempt(item.delivery_id, item.number, integration.adapter, item.event,
                                  config, context))
        made += 1
        if unrecorded[-1].result == "disabled":  # 410 Gone: no more calls to this receiver
            stopped = True
            break
        if time.monotonic() - flushed >= RECORD_EVERY:  # a slow receiver: keep the log current
            was_failing = _record(session, integration_id, unrecorded, was_failing, disable_failing_after)
            unrecorded, flushed = [], time.monotonic()

    batch.release(session, claimed[made:])
    _record(session, integration_id, unrecorded, was_failing, disable_failing_after)
    return Round(made, stopped or len(claimed) == BATCH)


def _record(session: Session, integration_id: str, attempts: list[Attempt], was_failing: bool,
            disable_failing_after: int) -> bool:
    """Record these attempts and commit; whether the integration may now be failing."""
    now = utcnow()
    recorded = batch.record(session, attempts, now)
    health.note_attempts(session, integration_id, recorded, now, was_failing=was_failing,
                         disable_after=disable_failing_after)
    session.commit()
    return was_failing or any(a.result != "succeeded" for a in recorded)
