from datetime import UTC, datetime, timedelta, timezone

import pytest

from integrations.adapter import (
    Context,
    DeliveryError,
    Event,
    Outcome,
    PermanentError,
    RetryableError,
    load_config,
    private_targets_allowed,
)
from integrations.webhook import WebhookAdapter


def test_envelope_is_the_standard_webhooks_body():
    event = Event("evt_1", "coupon.redeemed",
                  datetime(2030, 1, 5, 12, 30, tzinfo=timezone(timedelta(hours=8))),
                  {"coupon": {"code": "K7QM"}})
    assert event.envelope() == {"type": "coupon.redeemed",
                                "timestamp": "2030-01-05T04:30:00Z",
                                "data": {"coupon": {"code": "K7QM"}}}


def test_event_times_must_be_aware():
    with pytest.raises(ValueError):
        Event("evt_1", "ping", datetime(2030, 1, 5), {})


def test_excerpts_are_cut_at_500_characters():
    assert len(Outcome(200, "x" * 2000).excerpt) == 500
    assert len(RetryableError("y" * 2000).excerpt) == 500
    error = PermanentError("short", status_code=410, excerpt="body", disable=True)
    assert (error.status_code, error.excerpt, error.disable) == (410, "body", True)
    assert isinstance(error, DeliveryError) and str(error) == "short"


@pytest.mark.parametrize(("value", "allowed"), [
    ("1", True), ("true", True), ("yes", True), ("0", False), ("", False), ("no", False)])
def test_private_targets_switch_reads_the_environment(value, allowed):
    assert private_targets_allowed({"COUPONSVC_ALLOW_PRIVATE_WEBHOOK_TARGETS": value}) is allowed


def test_private_targets_switch_is_strict():
    with pytest.raises(ValueError, match="COUPONSVC_ALLOW_PRIVATE_WEBHOOK_TARGETS"):
        private_targets_allowed({"COUPONSVC_ALLOW_PRIVATE_WEBHOOK_TARGETS": "maybe"})


def test_context_defaults(monkeypatch):
    monkeypatch.delenv("COUPONSVC_ALLOW_PRIVATE_WEBHOOK_TARGETS")
    context = Context()
    assert (context.timeout, context.allow_private_targets, context.session) == (15.0, False, None)
    monkeypatch.setenv("COUPONSVC_ALLOW_PRIVATE_WEBHOOK_TARGETS", "1")
    assert Context().allow_private_targets is True


def test_a_stored_config_that_no_longer_loads_is_permanent(receiver, context):
    from integrations.wecom import WeComAdapter

    with pytest.raises(PermanentError, match="invalid wecom config") as caught:
        WeComAdapter().deliver(Event("evt_1", "ping", datetime.now(UTC), {}),
                               {"locale": "fr"}, context)
    assert not caught.value.disable and receiver.requests == []


def test_a_stored_config_is_loaded_once_per_content_and_each_caller_gets_its_own_copy():
    adapter = WebhookAdapter()
    config = {"url": "https://erp.example.com/hook", "secret": "whsec_" + "A" * 32, "headers": {"X-A": "1"}}
    first = load_config(adapter, config)
    first["url"] = "changed by the caller"
    again = load_config(adapter, dict(config))
    assert again["url"] == "https://erp.example.com/hook"
    assert again["headers"] == {"X-A": "1"}
    edited = load_config(adapter, {**config, "url": "https://erp.example.com/other"})
    assert edited["url"] == "https://erp.example.com/other"
    with pytest.raises(PermanentError, match="invalid webhook config"):
        load_config(adapter, {**config, "url": "not a url"})
