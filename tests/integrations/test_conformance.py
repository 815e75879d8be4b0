"""The one conformance test, run against every registered adapter."""

import pytest

from integrations.adapter import RetryableError
from integrations.registry import load_adapters
from integrations.webhook import WebhookAdapter

from .conformance import assert_conforms
from .services import FakeDiscourse, FakeFeishu, FakeMastodon, FakeWeCom, FakeWeibo
from .test_odoo import FakeOdoo

ADAPTERS = load_adapters()


def sample_config(name: str, url: str) -> dict | None:
    return {
        "webhook": {"url": url + "/hook"},
        "odoo": {"url": url, "database": "acme", "login": "bot", "api_key": "k"},
        "wecom": {"webhook_url": url + "/cgi-bin/webhook/send?key=k"},
        "dingtalk": {"webhook_url": url + "/robot/send?access_token=t", "secret": "SECabc"},
        "mastodon": {"instance_url": url, "access_token": "tok-abc"},
        "discourse": {"base_url": url, "api_key": "key-abc", "category_id": 7},
        "weibo": {"access_token": "2.00weibo-token", "api_base": url, "safe_domain": "shop.example.cn",
                  "link_template": "https://shop.example.cn/deals/{campaign_id}"},
        "feishu": {"webhook_url": url + "/open-apis/bot/v2/hook/hook-token", "secret": "feishu-secret"},
    }.get(name)


# The services that answer as the real one does (the others get a 200 with a universal body).
SERVICES = {
    "odoo": lambda url: FakeOdoo(),
    "wecom": lambda url: FakeWeCom(key="k"),
    "mastodon": lambda url: FakeMastodon(),
    "discourse": lambda url: FakeDiscourse(base=url),
    "weibo": lambda url: FakeWeibo(),
    "feishu": lambda url: FakeFeishu(secret="feishu-secret"),
}


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_adapter_conforms(name, receiver):
    config = sample_config(name, receiver.url)
    assert config is not None, f"the installed adapter {name!r} needs a sample config here"
    service = SERVICES[name](receiver.url) if name in SERVICES else None
    assert_conforms(ADAPTERS[name], config, receiver, service)


def test_every_builtin_is_checked():
    assert {"webhook", "odoo", "wecom", "dingtalk", "mastodon", "discourse", "weibo",
            "feishu"} <= set(ADAPTERS)


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
