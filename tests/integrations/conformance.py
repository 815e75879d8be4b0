"""What every adapter must do, built in or installed: one check, run against each."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from integrations.adapter import (
    EVENT_TYPES,
    Adapter,
    Context,
    DeliveryError,
    Outcome,
    PermanentError,
    RetryableError,
)
from integrations.limits import RateLimit, rate_limits, usage
from integrations.registry import conformance_problem, describe
from integrations.share import FixedPoster, Share

from .conftest import REDEEMED, campaign_event, issued_event, make_event, sample_png

# A 200 body every built-in reads as success: robots see errcode 0, Feishu code 0, Odoo a result.
UNIVERSAL_OK = {"errcode": 0, "errmsg": "ok", "code": 0, "jsonrpc": "2.0", "id": 1, "result": 1}
SHARED_LINK = "https://shop.example.cn/deals/cmp_1"


def sample_event(type_: str, share: Share | None = None):
    """A sample `type_` event; with a share, about another deal (so that no channel takes it
    for a repeat of the first pass)."""
    other = {"id": "cmp_2", "title": "章贡区老店红烧牛肉面"} if share is not None else {}
    if type_ == "coupon.issued":
        event = issued_event(sold=9, **other)
    elif type_.startswith("campaign."):
        event = campaign_event(type_, **other)
    elif type_.startswith("coupon."):
        event = make_event(type_, REDEEMED)
    else:
        event = make_event(type_, {"merchant_id": "mer_1"})
    return replace(event, share=share)


def assert_conforms(adapter: Adapter, raw_config: dict, receiver, service=None) -> None:
    """`service`, when given, answers the receiver's requests as the adapter's real service
    would (a `Receiver.handler`, with the `problems` it found in them); otherwise every
    request gets a 200 with `UNIVERSAL_OK`. Each event the adapter declares is delivered
    twice: as the event alone, then with a deal's link and poster (`Event.share`)."""
    assert conformance_problem(adapter) is None
    assert isinstance(adapter, Adapter)
    assert adapter.kind in ("erp", "social")
    assert "ping" in adapter.events and adapter.events <= EVENT_TYPES

    description = describe(adapter)
    json.dumps(description)
    assert description["name"] == adapter.name
    assert description["config_schema"]["type"] == "object"

    schema = adapter.config_schema()
    config = schema.load(raw_config)
    shown = schema.dump(config)
    for name, field in schema.fields.items():
        if field.load_only:
            assert name not in shown, f"{name} is a secret and must not be dumped"
    config = json.loads(json.dumps(config))  # as stored
    _assert_limits_declared(adapter, config)

    context = Context(timeout=2.0)
    receiver.default.body = json.dumps(UNIVERSAL_OK).encode()
    receiver.handler = service
    outcome = adapter.deliver(make_event(), config, context)
    assert isinstance(outcome, Outcome) and outcome.status_code is not None, "ping must call"

    share = Share(SHARED_LINK, FixedPoster(sample_png(), receiver.url + "/poster.png"))
    for shared in (None, share):
        failures = {type_: problem for type_ in sorted(adapter.events)
                    if (problem := _delivery_problem(adapter, type_, config, context, receiver, shared))}
        assert not failures, (f"{adapter.name} fails events it declares, to a service that "
                              f"accepts them ({'with' if shared else 'without'} a share): {failures}")
    assert not getattr(service, "problems", []), f"{adapter.name}'s requests broke its API: {service.problems}"

    receiver.handler = None
    receiver.answer(410, "gone")
    with pytest.raises(PermanentError) as gone:
        adapter.deliver(make_event(), config, context)
    assert gone.value.disable

    receiver.answer(503, "busy", headers={"Retry-After": "7"})
    with pytest.raises(RetryableError) as busy:
        adapter.deliver(make_event(), config, context)
    assert busy.value.retry_after == 7 and busy.value.status_code == 503

    receiver.answer(200, json.dumps(UNIVERSAL_OK), delay=1.0)
    with pytest.raises(RetryableError):
        adapter.deliver(make_event(), config, Context(timeout=0.2))

    before = len(receiver.requests)
    with pytest.raises(PermanentError, match="target refused"):
        adapter.deliver(make_event(), config, Context(allow_private_targets=False))
    assert len(receiver.requests) == before


def _assert_limits_declared(adapter: Adapter, config: dict) -> None:
    """Declared limits are `RateLimit`s; a delivery's use names only their units."""
    limits = rate_limits(adapter, config)
    assert all(isinstance(limit, RateLimit) for limit in limits), limits
    units = {limit.unit for limit in limits}
    for type_ in adapter.events:
        for event in (sample_event(type_), sample_event(type_, Share(SHARED_LINK))):
            used = usage(adapter, event, config, limits)
            assert set(used) <= units and all(amount > 0 for amount in used.values()), (type_, used)


def _delivery_problem(adapter: Adapter, type_: str, config: dict, context: Context,
                      receiver, share: Share | None) -> str | None:
    """Why delivering a sample `type_` event did not reach the service and succeed, or None."""
    before = len(receiver.requests)
    try:
        result = adapter.deliver(sample_event(type_, share), config, context)
    except DeliveryError as error:
        return f"{type(error).__name__}: {error}"
    if not isinstance(result, Outcome):
        return f"answered {result!r}, not an Outcome"
    if len(receiver.requests) == before:
        return f"made no call ({result.excerpt!r})"
    if result.status_code is None or not 200 <= result.status_code < 300:
        return f"answered status {result.status_code}"
    return None
