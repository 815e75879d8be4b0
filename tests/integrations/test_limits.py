"""What adapters declare of their channels' rate limits, read as the worker reads it."""

import pytest

from integrations.limits import RateLimit, per_minute, rate_limits, usage
from integrations.odoo import OdooAdapter
from integrations.webhook import WebhookAdapter
from integrations.wecom import WeComAdapter

from .conftest import campaign_event, make_event


class Plugin:
    """An adapter of an older plugin: no `rate_limits`, no `usage`."""

    name, kind, events = "plugin", "erp", frozenset({"ping"})
    config_schema = WebhookAdapter.config_schema

    def deliver(self, event, config, context):
        raise NotImplementedError


class LimitsOnly(Plugin):
    """Limits declared, but not what a delivery uses of them."""

    name = "limits-only"

    def rate_limits(self, settings):
        return (RateLimit("requests", 10, 60), RateLimit("posts", 1, 3600))


def test_no_declaration_no_limits():
    assert rate_limits(Plugin(), {"url": "https://erp.example.cn/hook"}) == ()


def test_limits_follow_the_stored_config():
    webhook = WebhookAdapter()
    assert rate_limits(webhook, {"url": "https://erp.example.cn/hook"}) == ()
    limited = rate_limits(webhook, {"url": "https://erp.example.cn/hook", "max_per_minute": 30})
    assert limited == (RateLimit("requests", 30, 60),)
    assert usage(webhook, make_event("coupon.redeemed"), {"url": "https://erp.example.cn/hook"}, limited) == {
        "requests": 1}
    assert rate_limits(OdooAdapter(), {"url": "https://acme.odoo.com", "database": "a", "login": "b",
                                       "api_key": "k", "max_per_minute": 5}) == (RateLimit("requests", 5, 60),)


def test_a_config_that_no_longer_loads_has_no_limits_and_uses_nothing():
    assert rate_limits(WeComAdapter(), {}) == ()
    assert usage(WeComAdapter(), campaign_event("campaign.published"), {},
                 (RateLimit("messages", 20, 60),)) == {}


def test_without_usage_a_delivery_uses_one_of_every_unit():
    adapter = LimitsOnly()
    limits = rate_limits(adapter, {"url": "https://erp.example.cn/hook"})
    assert usage(adapter, make_event(), {"url": "https://erp.example.cn/hook"}, limits) == {
        "requests": 1, "posts": 1}
    assert usage(adapter, make_event(), {"url": "https://erp.example.cn/hook"}, ()) == {}


def test_a_rate_limit_is_well_formed():
    with pytest.raises(ValueError):
        RateLimit("messages", 0, 60)
    with pytest.raises(ValueError):
        RateLimit("", 1, 60)
    assert per_minute({}) == () and per_minute({"max_per_minute": None}) == ()


class Buggy(LimitsOnly):
    name = "buggy"

    def usage(self, event, settings):
        raise KeyError("oops")


class BuggierStill(Plugin):
    name = "buggier"

    def rate_limits(self, settings):
        raise RuntimeError("oops")


def test_a_plugins_bug_does_not_stop_its_deliveries(caplog):
    config = {"url": "https://erp.example.cn/hook"}
    assert rate_limits(BuggierStill(), config) == ()
    limits = rate_limits(Buggy(), config)
    assert usage(Buggy(), make_event(), config, limits) == {"requests": 1, "posts": 1}
    assert "its rate_limits failed" in caplog.text and "its usage failed" in caplog.text
