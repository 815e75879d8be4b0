"""A channel's published rate limits, as an adapter declares them, and what a delivery uses.

An adapter may declare, beside `deliver`:

- `rate_limits(settings) -> tuple[RateLimit, ...]`: what the channel accepts per
  integration (one robot, one account, one API key), e.g. WeCom's robot 20 messages a
  minute; `settings` is the loaded config, so a limit may be configurable (the webhook);
- `usage(event, settings) -> dict[unit, int]`: how much of each limited unit delivering
  `event` takes (0 for an event it skips without a call; a WeCom announcement with its
  poster is two messages).

The worker keeps every integration under its adapter's limits: a delivery that would go
over waits until the window lets it through, not counted as an attempt, instead of being
sent to collect a refusal (couponsvc/deliveries/channel_limits.py). An adapter without
`rate_limits` has none; one without `usage` uses 1 of every declared unit a delivery.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from marshmallow import fields, validate

from .adapter import Adapter, Event, PermanentError, load_config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RateLimit:
    """At most `count` `unit`s (messages, requests, posts, media) in any `seconds`."""

    unit: str
    count: int
    seconds: int

    def __post_init__(self) -> None:
        if not self.unit or self.count < 1 or self.seconds < 1:
            raise ValueError(f"a rate limit needs a unit, a count and seconds >= 1: {self!r}")

    def __str__(self) -> str:
        return f"{self.count} {self.unit} / {self.seconds} s"


def rate_limits(adapter: Adapter, config: dict[str, Any]) -> tuple[RateLimit, ...]:
    """The limits `adapter` declares for this (stored) config; none when it declares none
    or the config no longer loads (the delivery then fails on its own)."""
    declare = getattr(adapter, "rate_limits", None)
    if declare is None:
        return ()
    try:
        return tuple(declare(load_config(adapter, config)))
    except PermanentError:
        return ()
    except Exception:  # a plugin's bug must not stop its deliveries
        log.exception("adapter %s: its rate_limits failed; none kept", adapter.name)
        return ()


def usage(adapter: Adapter, event: Event, config: dict[str, Any],
          limits: tuple[RateLimit, ...]) -> Mapping[str, int]:
    """The units of `limits` that delivering `event` takes."""
    if not limits:
        return {}
    measure = getattr(adapter, "usage", None)
    if measure is None:
        return {limit.unit: 1 for limit in limits}
    try:
        used = measure(event, load_config(adapter, config))
        return {unit: int(amount) for unit, amount in used.items() if int(amount) > 0}
    except PermanentError:
        return {}
    except Exception:  # a plugin's bug: count the delivery as one of everything
        log.exception("adapter %s: its usage failed for %s", adapter.name, event.type)
        return {limit.unit: 1 for limit in limits}


def per_minute_field() -> fields.Integer:
    """A config field for receivers without a published limit (the webhook, an ERP): at
    most this many deliveries a minute, none when left empty."""
    return fields.Integer(allow_none=True, strict=True,
                          validate=validate.Range(min=1, max=100000),
                          metadata={"description": "at most this many deliveries a minute "
                                                   "(the receiver's own limit); none when empty"})


def per_minute(settings: dict[str, Any]) -> tuple[RateLimit, ...]:
    """The limits of a `per_minute_field` named `max_per_minute`."""
    count = settings.get("max_per_minute")
    return (RateLimit("requests", count, 60),) if count else ()
