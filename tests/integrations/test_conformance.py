"""The one conformance test, run against every registered adapter."""

import pytest

from integrations.adapter import RetryableError
from integrations.registry import load_adapters
from integrations.webhook import WebhookAdapter

from .conformance import assert_conforms
from .test_odoo import FakeOdoo

ADAPTERS = load_adapters()


def sample_config(name: str, url: str) -> dict | None:
    return {
        "webhook": {"url": url + "/hook"},
        "odoo": {"url": url, "database": "acme", "login": "bot", "api_key": "k"},
        "wecom": {"webhook_url": url + "/cgi-bin/webhook/send?key=k"},
        "dingtalk": {"webhook_url": url + "/robot/send?access_token=t", "secret": "SECabc"},
        "mastodon": {"instance_url": url, "access_token": "t"},
    }.get(name)


# Adapters whose service needs more than a 200 with a universal body to accept an event.
SERVICES = {"odoo": FakeOdoo}


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_adapter_conforms(name, receiver):
    config = sample_config(name, receiver.url)
    assert config is not None, f"the installed adapter {name!r} needs a sample config here"
    service = SERVICES[name]() if name in SERVICES else None
    assert_conforms(ADAPTERS[name], config, receiver, service)


def test_every_builtin_is_checked():
    assert {"webhook", "odoo", "wecom", "dingtalk", "mastodon"} <= set(ADAPTERS)


class PingOnly(WebhookAdapter):
    """A webhook adapter broken on purpose: it fails every event but `ping`."""

    name = "ping-only"

    def deliver(self, event, config, context):
        if event.type != "ping":
            raise RetryableError("broken on purpose")
        return super().deliver(event, config, context)


def test_an_adapter_that_fails_its_events_does_not_conform(receiver):
    with pytest.raises(AssertionError, match="ping-only fails events it declares") as failed:
        assert_conforms(PingOnly(), sample_config("webhook", receiver.url), receiver)
    assert "'coupon.redeemed': 'RetryableError: broken on purpose'" in str(failed.value)
    assert "'ping'" not in str(failed.value)
