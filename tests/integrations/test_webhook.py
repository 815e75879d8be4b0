"""The generic adapter, checked with the reference `standardwebhooks` package."""

import base64
import json
import time

import pytest
from marshmallow import ValidationError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from integrations.adapter import PermanentError, RetryableError
from integrations.webhook import WebhookAdapter, WebhookConfig, new_secret

from .conftest import REDEEMED, make_event


def configure(url, **extra):
    return WebhookConfig().load({"url": url, **extra})


def test_signature_verifies_with_the_reference_library(receiver, context):
    config = configure(receiver.url + "/hooks/couponsvc")
    event = make_event("coupon.redeemed", REDEEMED)
    outcome = WebhookAdapter().deliver(event, config, context)
    assert outcome.status_code == 200
    sent = receiver.requests[0]
    assert (sent.method, sent.path) == ("POST", "/hooks/couponsvc")
    payload = Webhook(config["secret"]).verify(sent.body, sent.headers)
    assert payload == event.envelope()
    assert sent.headers["webhook-id"] == "evt_1"
    assert abs(int(sent.headers["webhook-timestamp"]) - time.time()) < 5
    assert sent.headers["webhook-signature"].startswith("v1,")
    assert sent.headers["content-type"] == "application/json"


def test_the_body_is_compact_utf8_as_signed(receiver, context):
    config = configure(receiver.url)
    WebhookAdapter().deliver(make_event("coupon.redeemed", REDEEMED), config, context)
    body = receiver.requests[0].body
    assert "赣州老字号双人套餐".encode() in body
    assert body == json.dumps(json.loads(body), ensure_ascii=False,
                              separators=(",", ":")).encode()
    assert list(json.loads(body)) == ["type", "timestamp", "data"]


def test_a_wrong_secret_or_altered_body_fails_verification(receiver, context):
    config = configure(receiver.url)
    WebhookAdapter().deliver(make_event(), config, context)
    sent = receiver.requests[0]
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(sent.body, sent.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(config["secret"]).verify(sent.body + b" ", sent.headers)


def test_retries_keep_the_id_and_sign_again(receiver, context):
    config = configure(receiver.url)
    receiver.answer(500, "down")
    event = make_event("campaign.tipped", {"campaign": {"id": "cmp_1"}}, id_="evt_42")
    with pytest.raises(RetryableError):
        WebhookAdapter().deliver(event, config, context)
    WebhookAdapter().deliver(event, config, context)
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == "evt_42"
    for sent in (first, second):
        Webhook(config["secret"]).verify(sent.body, sent.headers)


def test_a_secret_is_generated_once_and_never_dumped():
    config = WebhookConfig().load({"url": "https://erp.example.com/hook"})
    secret = config["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 24
    assert WebhookConfig().load(config)["secret"] == secret
    assert "secret" not in WebhookConfig().dump(config)
    assert WebhookConfig().load({"url": "https://x.example"})["secret"] != secret


@pytest.mark.parametrize("secret", ["nope", "whsec_???", "whsec_" + "QUJD", "sk_" + "A" * 40])
def test_bad_secrets_are_refused(secret):
    with pytest.raises(ValidationError) as caught:
        WebhookConfig().load({"url": "https://x.example", "secret": secret})
    assert "secret" in caught.value.messages


def test_extra_headers_are_sent_but_cannot_override_the_signature(receiver, context):
    config = configure(receiver.url, headers={"X-Tenant": "mer_1"})
    WebhookAdapter().deliver(make_event(), config, context)
    assert receiver.requests[0].headers["x-tenant"] == "mer_1"
    for name in ("webhook-signature", "Content-Type", "Host", "bad header"):
        with pytest.raises(ValidationError):
            configure(receiver.url, headers={name: "x"})
    with pytest.raises(ValidationError):
        configure(receiver.url, headers={"X-Evil": "a\r\nInjected: 1"})


def test_a_stored_config_without_secret_is_permanent(receiver, context):
    with pytest.raises(PermanentError, match="no signing secret"):
        WebhookAdapter().deliver(make_event(), {"url": receiver.url}, context)
    assert receiver.requests == []


def test_the_url_must_be_http(context):
    with pytest.raises(ValidationError):
        configure("ftp://erp.example.com/hook")
