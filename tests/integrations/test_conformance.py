"""The one conformance test, run against every registered adapter."""

import pytest

from integrations.registry import load_adapters

from .conformance import assert_conforms

ADAPTERS = load_adapters()


def sample_config(name: str, url: str) -> dict | None:
    return {
        "webhook": {"url": url + "/hook"},
        "odoo": {"url": url, "database": "acme", "login": "bot", "api_key": "k"},
        "wecom": {"webhook_url": url + "/cgi-bin/webhook/send?key=k"},
        "dingtalk": {"webhook_url": url + "/robot/send?access_token=t", "secret": "SECabc"},
        "mastodon": {"instance_url": url, "access_token": "t"},
    }.get(name)


@pytest.mark.parametrize("name", sorted(ADAPTERS))
def test_adapter_conforms(name, receiver):
    config = sample_config(name, receiver.url)
    if config is None:
        pytest.skip(f"no sample config for the installed adapter {name!r}")
    assert_conforms(ADAPTERS[name], config, receiver)


def test_every_builtin_is_checked():
    assert {"webhook", "odoo", "wecom", "dingtalk", "mastodon"} <= set(ADAPTERS)
