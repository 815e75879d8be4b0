"""The adapter interface: what an adapter is given, what it returns, what it raises.

An adapter turns one outbox event into one call to a merchant's ERP or social channel.
The worker owns everything around that call (which integrations get which events,
retries and backoff, recording attempts, disabling); an adapter only answers, for one
event and one integration's config, "delivered" (an `Outcome`), "try again later"
(`RetryableError`) or "this will never work" (`PermanentError`).

Configs: `config_schema().load(raw)` validates a merchant's config and fills in
defaults, secrets included (the `webhook` adapter generates its `whsec_` secret there);
store what it loads. Credentials are declared with `credential(...)` (metadata `x-secret`,
and `load_only`, which the JSON Schema of `GET /adapters` shows as `writeOnly`):
`secret_fields()` names them, the service stores them encrypted, apart from the rest,
and `config_schema().dump(config)` leaves them out, so that is what may be shown back.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, runtime_checkable

import marshmallow
import requests
from cachetools import LRUCache

from .share import Share

EVENT_TYPES = frozenset({
    "campaign.published", "campaign.tipped", "campaign.ended", "campaign.failed",
    "campaign.cancelled", "order.confirmed", "order.refund_pending", "coupon.issued",
    "coupon.redeemed", "coupon.redemption_reversed", "coupon.voided", "ping",
    "integration.disabled",
})
"""Every event type an adapter may declare; `ping` is what an integration test sends."""

EXCERPT_CHARS = 500
SECRET_FLAG = "x-secret"
PRIVATE_TARGETS_VARIABLE = "COUPONSVC_ALLOW_PRIVATE_WEBHOOK_TARGETS"


@dataclass(frozen=True)
class Event:
    """One outbox event, as the worker hands it over.

    `share`, on an event about a deal given to a social adapter, is the deal's link and
    poster (`integrations.share`); None otherwise, and never part of the envelope.
    """

    id: str
    type: str
    created_at: datetime
    data: dict[str, Any]
    merchant_id: str | None = None
    coupon_seq: int | None = None
    share: Share | None = None

    def __post_init__(self) -> None:
        if self.created_at.tzinfo is None:
            raise ValueError("Event.created_at must be timezone-aware")

    def envelope(self) -> dict[str, Any]:
        """The Standard Webhooks body: `{"type", "timestamp", "data"}`."""
        timestamp = self.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return {"type": self.type, "timestamp": timestamp, "data": self.data}


@dataclass(frozen=True)
class Outcome:
    """A delivery the other side accepted (or one there was nothing to send for).

    `status_code` is None when no HTTP call was made (`excerpt` then says why, e.g.
    "skipped: ..."); `excerpt` is at most the first 500 characters of the answer.
    """

    status_code: int | None
    excerpt: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "excerpt", self.excerpt[:EXCERPT_CHARS])


class DeliveryError(Exception):
    """A delivery that failed; `status_code` is None when there was no HTTP answer."""

    def __init__(self, message: str, *, status_code: int | None = None,
                 excerpt: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.excerpt = (message if excerpt is None else excerpt)[:EXCERPT_CHARS]


class RetryableError(DeliveryError):
    """Worth trying again: 5xx, 429, timeouts, connection errors, any other non-2xx.

    `retry_after` is the wait the other side asked for, in seconds, from its
    `Retry-After` (delta-seconds or HTTP-date) or its documented rate limit, already
    clamped to [1 s, 6 h]; None when it asked for nothing.
    """

    def __init__(self, message: str, *, status_code: int | None = None,
                 excerpt: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, status_code=status_code, excerpt=excerpt)
        self.retry_after = retry_after


class PermanentError(DeliveryError):
    """Trying again cannot help (a refused target, a rejected config, 410 Gone).

    `disable` is True when the integration itself should be switched off (410 Gone).
    """

    def __init__(self, message: str, *, status_code: int | None = None,
                 excerpt: str | None = None, disable: bool = False) -> None:
        super().__init__(message, status_code=status_code, excerpt=excerpt)
        self.disable = disable


def private_targets_allowed(environ: os._Environ | dict[str, str] | None = None) -> bool:
    """Read COUPONSVC_ALLOW_PRIVATE_WEBHOOK_TARGETS strictly: 1/true/yes or 0/false/no/unset."""
    value = (os.environ if environ is None else environ).get(PRIVATE_TARGETS_VARIABLE, "")
    value = value.strip().lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("", "0", "false", "no"):
        return False
    raise ValueError(f"{PRIVATE_TARGETS_VARIABLE} must be 1 or 0, not {value!r}")


@dataclass(frozen=True)
class Context:
    """How to make the call: per-integration timeout, target policy, a shared session.

    `session` should come from `integrations.http.new_session(allow_private_targets=...)`
    with the same policy (keep-alive, no environment proxies, the connection-time target
    guard; a plain session gets the guard mounted); None uses one per thread.
    `allow_private_targets` defaults to COUPONSVC_ALLOW_PRIVATE_WEBHOOK_TARGETS.
    """

    timeout: float = 15.0
    allow_private_targets: bool = field(default_factory=private_targets_allowed)
    session: requests.Session | None = None


@runtime_checkable
class Adapter(Protocol):
    """What every adapter, built in or installed under `couponsvc.adapters`, provides.

    An entry point names an instance or a class (instantiated with no arguments).
    `events` must be a subset of `EVENT_TYPES` and include `ping`. `deliver` takes
    the config as stored (it loads it through `config_schema` itself), never raises
    anything but a `DeliveryError` subclass, and makes no call for an event it skips
    (it returns `Outcome(None, "skipped: ...")`). It may also declare its channel's rate
    limits, `rate_limits(settings)` and `usage(event, settings)` (`integrations.limits`).
    """

    name: str
    kind: Literal["erp", "social"]
    events: frozenset[str]
    config_schema: type[marshmallow.Schema]

    def deliver(self, event: Event, config: dict[str, Any], context: Context) -> Outcome:
        """Deliver one event under one integration's config."""
        ...


def credential(field: marshmallow.fields.Field) -> marshmallow.fields.Field:
    """Declare a config field a credential: write-only, stored encrypted."""
    field.load_only = True
    field.metadata = {**field.metadata, SECRET_FLAG: True}
    return field


def secret_fields(schema: type[marshmallow.Schema]) -> frozenset[str]:
    """The names of the credential fields of an adapter's config schema."""
    return frozenset(name for name, declared in schema._declared_fields.items()
                     if declared.metadata.get(SECRET_FLAG))


def load_config(adapter: Adapter, config: dict[str, Any]) -> dict[str, Any]:
    """Validate a stored config for `deliver`; a config that no longer loads is permanent.

    A drain delivers many events under one config: the loaded form is remembered by
    the config's content (under cProfile, loading through marshmallow was 9% of a
    drain's time, 0.3 ms of 3.3 ms a delivery). The key is a SHA-256 of the whole
    content, credentials included: a changed secret is a new entry, and no credential
    is kept as a key. The caller gets its own shallow copy.
    """
    content = json.dumps(config, sort_keys=True, default=str).encode()
    key = (adapter.name, type(adapter).__qualname__, hashlib.sha256(content).hexdigest())
    with _loaded_configs_lock:
        loaded = _loaded_configs.get(key)
    if loaded is None:
        try:
            loaded = adapter.config_schema().load(config)
        except marshmallow.ValidationError as error:
            raise PermanentError(f"invalid {adapter.name} config: {error.messages}") from error
        with _loaded_configs_lock:
            _loaded_configs[key] = loaded
    return dict(loaded)


# The least recently used configs are forgotten first. cachetools is not thread-safe:
# drains on several threads share it under the lock.
_LOADED_CONFIGS_MAX = 512
_loaded_configs: LRUCache[tuple[str, str, str], dict[str, Any]] = LRUCache(maxsize=_LOADED_CONFIGS_MAX)
_loaded_configs_lock = threading.Lock()
