"""Draining one integration: send what is due, in batches, until nothing is.

A drain job holds the integration's lock (`couponsvc/outbox/wakeup.py`). Each round it clears the
integration's flag, claims up to `BATCH` due deliveries in one statement, calls the
adapter for each in turn over one keep-alive session, and records the attempts in
one transaction (every `RECORD_EVERY` seconds when the receiver is slow, so a
worker killed mid-round re-sends at most that much). It stops when a round finds
less than a full batch and nothing flagged the integration meanwhile; after `BUDGET` seconds it hands over (lets the
lock go and queues a fresh drain behind the other integrations' jobs), so one busy
integration cannot starve the others on a shared worker.

Before each call the channel's rate limits are asked (`channel_limits.py`): a delivery
that would take the integration over one is not sent; it and the integration's other due
deliveries are held until the window opens (not counted as attempts) and the round ends.
A social adapter gets the events about a deal with the deal's link and poster
(`deal_share.py`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from integrations.adapter import Context
from integrations.limits import rate_limits, usage

from .. import integration_credentials as credentials
from ..adapters import adapter_named, http_session
from ..data_keys import DataKeyError, DataKeys
from ..models import Integration
from ..outbox.wakeup import LOCK_TTL, drains, wake
from ..timeutil import utcnow
from . import batch, health
from .attempt import Attempt, attempt
from .channel_limits import ChannelLimiter
from .deal_share import Sharing, with_shares

log = logging.getLogger(__name__)

BATCH = 100
BUDGET = 5.0  # seconds of calls per drain job before it hands over
LEASE_MARGIN = 15.0  # seconds beyond the budget and one call's timeout
KEEP_EVERY = 1.0  # seconds between extensions of the lock while calling
RECORD_EVERY = 1.0  # seconds of calls after which a round records what it has so far


_INTEGRATION = select(Integration.status, Integration.merchant_id, Integration.adapter, Integration.config,
                      Integration.credentials, Integration.timeout, Integration.failing_since,
                      ).where(Integration.id == bindparam("id"))


@dataclass(frozen=True)
class Round:
    sent: int
    more: bool  # a full batch, or stopped early: more may be due


@dataclass(frozen=True)
class Settings:
    """The operator's settings a drain works under: the data keys that decrypt credentials,
    whether receivers may be private addresses (COUPONSVC_ALLOW_PRIVATE_WEBHOOK_TARGETS),
    after how many seconds of failures an integration is disabled
    (COUPONSVC_DISABLE_FAILING_AFTER), the channels' rate limiter (None: no limits kept) and
    what deals are shared with (None: social adapters get no link or poster from here)."""

    keys: DataKeys
    allow_private_targets: bool
    disable_failing_after: int
    limiter: ChannelLimiter | None = None
    sharing: Sharing | None = None


def drain(session: Session, integration_id: str, token: str, *, keys: DataKeys,
          allow_private_targets: bool, disable_failing_after: int,
          limiter: ChannelLimiter | None = None, sharing: Sharing | None = None) -> int:
    """Run the drain that `token` was queued for; the number of attempts it made (see
    `Settings` for the operator's settings that come in as arguments)."""
    settings = Settings(keys, allow_private_targets, disable_failing_after, limiter, sharing)
    state = drains()
    sent, deadline = 0, time.monotonic() + BUDGET
    try:
        while True:
            if not state.keep(integration_id, token):
                return sent  # another drain holds the integration now
            state.begin(integration_id)
            done = send_round(session, integration_id, token, deadline, settings)
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


def send_round(session: Session, integration_id: str, token: str, deadline: float,
               settings: Settings) -> Round:
    disable_failing_after = settings.disable_failing_after
    integration = session.connection().execute(_INTEGRATION, {"id": integration_id}).first()
    if integration is None or integration.status != "active":
        session.rollback()
        return Round(0, False)
    try:  # decrypted once a round, kept in memory only
        config = credentials.unseal(integration.config, integration.credentials, settings.keys)
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

    context = Context(timeout=timeout, allow_private_targets=settings.allow_private_targets,
                      session=http_session(settings.allow_private_targets))
    adapter = adapter_named(integration.adapter)
    limits = rate_limits(adapter, config) if adapter is not None and settings.limiter is not None else ()
    events = [item.event for item in claimed]
    if adapter is not None and adapter.kind == "social" and settings.sharing is not None:
        events = with_shares(session, integration.merchant_id, events, settings.sharing)
    state, kept = drains(), float("-inf")
    unrecorded: list[Attempt] = []
    made, stopped, flushed = 0, False, time.monotonic()
    for item, event in zip(claimed, events, strict=True):
        clock = time.monotonic()
        if made and clock >= deadline:
            stopped = True
            break
        if clock - kept >= KEEP_EVERY:  # the lock must outlive the call about to be made
            if not state.keep(integration_id, token, max(LOCK_TTL, timeout + LEASE_MARGIN)):
                stopped = True  # another drain took over: give the rest back to it
                break
            kept = clock
        if limits:
            wait = settings.limiter.admit(integration_id, limits, usage(adapter, event, config, limits))
            if wait is not None:  # over the channel's limit: this one and the rest wait for the window
                _hold(session, integration_id, claimed[made:], wait, unrecorded, was_failing,
                      disable_failing_after)
                return Round(made, False)
        unrecorded.append(attempt(item.delivery_id, item.number, integration.adapter, event,
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


def _hold(session: Session, integration_id: str, rest: list[batch.Claimed], wait: float,
          attempts: list[Attempt], was_failing: bool, disable_failing_after: int) -> None:
    """Record what was sent, and hold the rest until the channel's window lets them through."""
    now = utcnow()
    batch.hold(session, integration_id, rest, now + timedelta(seconds=wait), now)
    _record(session, integration_id, attempts, was_failing, disable_failing_after)


def _record(session: Session, integration_id: str, attempts: list[Attempt], was_failing: bool,
            disable_failing_after: int) -> bool:
    """Record these attempts and commit; whether the integration may now be failing."""
    now = utcnow()
    recorded = batch.record(session, attempts, now)
    health.note_attempts(session, integration_id, recorded, now, was_failing=was_failing,
                         disable_after=disable_failing_after)
    session.commit()
    return was_failing or any(a.result != "succeeded" for a in recorded)
