"""DingTalk custom robot: markdown message, signed timestamp and sign parameters."""

import base64
import hashlib
import hmac
import time
from dataclasses import replace

import pytest
from marshmallow import ValidationError

from integrations.adapter import PermanentError, RetryableError
from integrations.dingtalk import DingTalkAdapter, DingTalkConfig
from integrations.share import FixedPoster, Share

from .conftest import campaign_event, issued_event, make_event

SECRET = "SEC5a3ecf88f2b3eb50db30ecfc00f53033ac909c99bf7f88fd612bda89d7f3a9dc"
OK = {"errcode": 0, "errmsg": "ok"}


def configure(receiver, **extra):
    return DingTalkConfig().load({
        "webhook_url": receiver.url + "/robot/send?access_token=tok123", **extra})


def test_markdown_message_shape(receiver, context):
    receiver.answer(200, OK)
    DingTalkAdapter().deliver(issued_event(sold=9), configure(receiver), context)
    sent = receiver.requests[0]
    assert (sent.method, sent.path, sent.query) == ("POST", "/robot/send",
                                                    {"access_token": ["tok123"]})
    body = sent.json()
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["title"] == "还差 1 人成团：赣州老字号双人套餐"
    assert "团购价 ¥39.90，原价 ¥68.00，省 ¥28.10" in body["markdown"]["text"]
    assert "已售 9 / 成团 10，还差 1 人成团" in body["markdown"]["text"]


def test_signed_when_a_secret_is_configured(receiver, context):
    receiver.answer(200, OK)
    before = int(time.time() * 1000)
    DingTalkAdapter().deliver(campaign_event("campaign.published"),
                              configure(receiver, secret=SECRET), context)
    sent = receiver.requests[0]
    timestamp = sent.query["timestamp"][0]
    assert before <= int(timestamp) <= int(time.time() * 1000)
    # recomputed here as DingTalk documents it, independently of the adapter
    string_to_sign = f"{timestamp}\n{SECRET}".encode()
    expected = base64.b64encode(hmac.new(SECRET.encode(), string_to_sign,
                                         hashlib.sha256).digest()).decode()
    assert sent.query["sign"] == [expected]
    assert sent.query["access_token"] == ["tok123"]
    raw_sign = sent.raw_query.split("sign=")[1].split("&")[0]
    assert "+" not in raw_sign and "/" not in raw_sign and "=" not in raw_sign  # encoded once
    assert "%25" not in raw_sign  # not twice


def test_unsigned_without_a_secret(receiver, context):
    receiver.answer(200, OK)
    DingTalkAdapter().deliver(make_event(), configure(receiver), context)
    assert set(receiver.requests[0].query) == {"access_token"}


def test_secret_and_token_are_not_dumped():
    config = DingTalkConfig().load({"access_token": "t", "secret": SECRET})
    assert DingTalkConfig().dump(config) == {
        "locale": "zh", "link_template": None, "nearly_tipped_threshold": 3, "poster": True}
    with pytest.raises(ValidationError):
        DingTalkConfig().load({"secret": SECRET})


def test_send_too_fast_is_retried_after_the_throttle(receiver, context):
    receiver.answer(200, {"errcode": 130101, "errmsg": "send too fast"})
    with pytest.raises(RetryableError) as caught:
        DingTalkAdapter().deliver(make_event(), configure(receiver), context)
    assert caught.value.retry_after == 600


@pytest.mark.parametrize("errcode", [310000, 300001, 400013])
def test_security_and_token_failures_are_permanent(receiver, context, errcode):
    receiver.answer(200, {"errcode": errcode, "errmsg": "sign not match"})
    with pytest.raises(PermanentError):
        DingTalkAdapter().deliver(make_event(), configure(receiver, secret=SECRET), context)


def test_english_messages(receiver, context):
    receiver.answer(200, OK)
    DingTalkAdapter().deliver(campaign_event("campaign.tipped", sold=10, tipped=True),
                              configure(receiver, locale="en"), context)
    text = receiver.requests[0].json()["markdown"]["text"]
    assert text.startswith("### The deal is on: 赣州老字号双人套餐")
    assert "Deal price ¥39.90, was ¥68.00, save ¥28.10" in text


def test_the_poster_under_the_text_and_the_deal_link(receiver, context):
    receiver.answer(200, OK)
    poster = "https://couponsvc.example.cn/api/v1/campaigns/cmp_1/poster.png?token=t&v=1"
    event = replace(campaign_event("campaign.published"),
                    share=Share("https://couponsvc.example.cn/d/cmp_1", FixedPoster(address=poster)))
    DingTalkAdapter().deliver(event, configure(receiver), context)
    text = receiver.requests[0].json()["markdown"]["text"]
    assert "[立即抢购](https://couponsvc.example.cn/d/cmp_1)" in text
    assert text.endswith(f"![新团购上线：赣州老字号双人套餐]({poster})")


def test_no_picture_when_turned_off(receiver, context):
    receiver.answer(200, OK)
    event = replace(campaign_event("campaign.published"),
                    share=Share("https://couponsvc.example.cn/d/cmp_1", FixedPoster(address="https://x.cn/p.png")))
    DingTalkAdapter().deliver(event, configure(receiver, poster=False), context)
    assert "![" not in receiver.requests[0].json()["markdown"]["text"]


def test_long_texts_fit_20000_bytes_with_link_and_picture(receiver, context):
    receiver.answer(200, OK)
    event = replace(campaign_event("campaign.published", title="团" * 9000),
                    share=Share("https://couponsvc.example.cn/d/cmp_1", FixedPoster(address="https://x.cn/p.png")))
    DingTalkAdapter().deliver(event, configure(receiver), context)
    markdown = receiver.requests[0].json()["markdown"]
    assert len(markdown["text"].encode()) <= 20000 and len(markdown["title"]) <= 64
    assert "(https://couponsvc.example.cn/d/cmp_1)" in markdown["text"]
    assert markdown["text"].endswith("(https://x.cn/p.png)")


def test_limits(receiver):
    settings = configure(receiver)
    assert [str(limit) for limit in DingTalkAdapter().rate_limits(settings)] == ["20 messages / 60 s"]
