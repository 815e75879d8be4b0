"""What every adapter must do, built in or installed: one check, run against each."""

from __future__ import annotations

import json

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
from integrations.registry import conformance_problem, describe

from .conftest import REDEEMED, campaign_event, issued_event, make_event

# A 200 body every built-in reads as success: robots see errcode 0, Odoo a result.
UNIVERSAL_OK = {"errcode": 0, "errmsg": "ok", "jsonrpc": "2.0", "id": 1, "result": 1}


def sample_event(type_: str):
    if type_ == "coupon.issued":
        return issued_event(sold=9)
    if type_.startswith("campaign."):
        return campaign_event(type_)
    if type_.startswith("coupon."):
        return make_event(type_, REDEEMED)
    return make_event(type_, {"merchant_id": "mer_1"})


def assert_conforms(adapter: Adapter, raw_config: dict, receiver, service=None) -> None:
    """`service`, when given, answers the receiver's requests as the adapter's real service
    would (a `Receiver.handler`); otherwise every request gets a 200 with `UNIVERSAL_OK`."""
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

    context = Context(timeout=2.0)
    receiver.default.body = json.dumps(UNIVERSAL_OK).encode()
    receiver.handler = service
    outcome = adapter.deliver(make_event(), config, context)
    assert isinstance(outcome, Outcome) and outcome.status_code is not None, "ping must call"

    failures = {type_: problem for type_ in sorted(adapter.events)
                if (problem := _delivery_problem(adapter, type_, config, context, receiver))}
    assert not failures, (f"{adapter.name} fails events it declares, "
                          f"to a service that accepts them: {failures}")

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


def _delivery_problem(adapter: Adapter, type_: str, config: dict, context: Context,
                      receiver) -> str | None:
    """Why delivering a sample `type_` event did not reach the service and succeed, or None."""
    before = len(receiver.requests)
    try:
        result = adapter.deliver(sample_event(type_), config, context)
    except DeliveryError as error:
        return f"{type(error).__name__}: {error}"
    if not isinstance(result, Outcome):
        return f"answered {result!r}, not an Outcome"
    if len(receiver.requests) == before:
        return f"made no call ({result.excerpt!r})"
    if result.status_code is None or not 200 <= result.status_code < 300:
        return f"answered status {result.status_code}"
    return None
