"""WeCom group robot: the documented markdown message and errcode handling."""

import base64
import hashlib
from dataclasses import replace

import pytest
from marshmallow import ValidationError

from integrations import wecom
from integrations.adapter import PermanentError, RetryableError
from integrations.share import FixedPoster, Share
from integrations.wecom import WeComAdapter, WeComConfig

from .conftest import campaign_event, issued_event, make_event, sample_png
from .services import FakeWeCom


def configure(receiver, **extra):
    return WeComConfig().load({
        "webhook_url": receiver.url + "/cgi-bin/webhook/send?key=693a-key",
        "link_template": "https://shop.example.cn/deals/{campaign_id}", **extra})


def test_a_published_deal_is_a_markdown_message(receiver, context):
    receiver.answer(200, {"errcode": 0, "errmsg": "ok"})
    outcome = WeComAdapter().deliver(campaign_event("campaign.published"),
                                     configure(receiver), context)
    assert outcome.status_code == 200
    sent = receiver.requests[0]
    assert (sent.method, sent.path, sent.query) == ("POST", "/cgi-bin/webhook/send",
                                                    {"key": ["693a-key"]})
    assert "\\u" not in sent.body.decode()  # WeCom refuses \\uXXXX escapes (40033)
    body = sent.json()
    assert list(body) == ["msgtype", "markdown"] and body["msgtype"] == "markdown"
    content = body["markdown"]["content"]
    assert content.startswith("### 新团购上线：赣州老字号双人套餐")
    assert "团购价 ¥39.90，原价 ¥68.00，省 ¥28.10" in content
    assert "已售 8 / 成团 10，还差 2 人成团" in content
    assert "[立即抢购](https://shop.example.cn/deals/cmp_1)" in content


def test_a_tipped_deal_and_a_nearly_tipped_one(receiver, context):
    receiver.default.body = b'{"errcode":0,"errmsg":"ok"}'
    adapter, config = WeComAdapter(), configure(receiver)
    adapter.deliver(campaign_event("campaign.tipped", sold=10, tipped=True), config, context)
    adapter.deliver(issued_event(sold=8), config, context)
    tipped, nearly = (r.json()["markdown"]["content"] for r in receiver.requests)
    assert tipped.startswith("### 已成团：") and "已售 10，已成团" in tipped
    assert nearly.startswith("### 还差 2 人成团：赣州老字号双人套餐")


@pytest.mark.parametrize("event", [
    issued_event(sold=2), issued_event(sold=10, tipped=True), issued_event(sold=12),
    make_event("coupon.issued", {"campaign_id": "cmp_1", "count": 50}),
    campaign_event("campaign.ended")])
def test_other_events_are_skipped_without_a_call(receiver, context, event):
    outcome = WeComAdapter().deliver(event, configure(receiver), context)
    assert outcome.status_code is None and outcome.excerpt.startswith("skipped:")
    assert receiver.requests == []


def test_the_key_alone_builds_the_official_url(monkeypatch, receiver, context):
    monkeypatch.setattr(wecom, "ENDPOINT", receiver.url + "/cgi-bin/webhook/send")
    config = WeComConfig().load({"key": "a b/c"})
    receiver.answer(200, {"errcode": 0, "errmsg": "ok"})
    WeComAdapter().deliver(make_event(), config, context)
    assert receiver.requests[0].raw_query == "key=a%20b%2Fc"
    assert wecom.ENDPOINT.endswith("/cgi-bin/webhook/send")


def test_config_needs_exactly_one_target():
    with pytest.raises(ValidationError):
        WeComConfig().load({})
    with pytest.raises(ValidationError):
        WeComConfig().load({"key": "k", "webhook_url": "https://qyapi.weixin.qq.com/x"})
    assert WeComConfig().dump(WeComConfig().load({"key": "k"})).get("key") is None


def test_rate_limit_is_retried_after_a_minute(receiver, context):
    receiver.answer(200, {"errcode": 45009, "errmsg": "api freq out of limit"})
    with pytest.raises(RetryableError) as caught:
        WeComAdapter().deliver(make_event(), configure(receiver), context)
    assert caught.value.retry_after == 60 and "45009" in caught.value.excerpt


def test_an_invalid_key_is_permanent(receiver, context):
    receiver.answer(200, {"errcode": 93000, "errmsg": "invalid webhook url"})
    with pytest.raises(PermanentError) as caught:
        WeComAdapter().deliver(make_event(), configure(receiver), context)
    assert not caught.value.disable and caught.value.status_code == 200


def test_busy_and_unreadable_answers_are_retried(receiver, context):
    receiver.answer(200, {"errcode": -1, "errmsg": "system busy"})
    receiver.answer(200, "<html>proxy error</html>")
    for _ in range(2):
        with pytest.raises(RetryableError):
            WeComAdapter().deliver(make_event(), configure(receiver), context)


def test_long_messages_are_cut_to_4096_bytes(receiver, context):
    receiver.answer(200, {"errcode": 0, "errmsg": "ok"})
    WeComAdapter().deliver(campaign_event("campaign.published", title="团" * 3000),
                           configure(receiver), context)
    content = receiver.requests[0].json()["markdown"]["content"]
    assert len(content.encode()) <= 4096
    assert content.endswith("[立即抢购](https://shop.example.cn/deals/cmp_1)")  # the link whole


# ---------------------------------------------------------------------------- the poster --
def shared(event, poster=None, address=None):
    return replace(event, share=Share("https://couponsvc.example.cn/d/cmp_1",
                                      FixedPoster(poster if poster is not None else sample_png(), address)))


@pytest.fixture
def robot_service(receiver):
    service = FakeWeCom()
    receiver.handler = service
    return service


def test_the_poster_follows_the_text_as_an_image(receiver, robot_service, context):
    outcome = WeComAdapter().deliver(shared(campaign_event("campaign.published")),
                                     configure(receiver, link_template=None), context)
    assert outcome.status_code == 200 and robot_service.problems == []
    markdown, image = robot_service.messages
    assert "[立即抢购](https://couponsvc.example.cn/d/cmp_1)" in markdown["markdown"]["content"]
    assert image["msgtype"] == "image"
    assert base64.b64decode(image["image"]["base64"]) == sample_png()
    assert image["image"]["md5"] == hashlib.md5(sample_png()).hexdigest()  # noqa: S324


def test_a_news_card_with_the_poster_url(receiver, robot_service, context):
    poster = "https://couponsvc.example.cn/api/v1/campaigns/cmp_1/poster.png?token=t"
    WeComAdapter().deliver(shared(issued_event(sold=9), address=poster),
                           configure(receiver, poster="news"), context)
    [news] = robot_service.messages
    [article] = news["news"]["articles"]
    assert article == {"title": "还差 1 人成团：赣州老字号双人套餐",
                       "description": "团购价 ¥39.90，原价 ¥68.00，省 ¥28.10\n已售 9 / 成团 10，还差 1 人成团",
                       "url": "https://shop.example.cn/deals/cmp_1", "picurl": poster}


def test_no_poster_when_asked_or_none_to_send(receiver, robot_service, context):
    WeComAdapter().deliver(shared(campaign_event("campaign.published")),
                           configure(receiver, poster="none"), context)
    outcome = WeComAdapter().deliver(replace(campaign_event("campaign.tipped"),
                                             share=Share("https://couponsvc.example.cn/d/cmp_1")),
                                     configure(receiver), context)
    assert [m["msgtype"] for m in robot_service.messages] == ["markdown", "markdown"]
    assert "no poster to send" in outcome.excerpt


def test_a_poster_over_2_mb_is_not_sent(receiver, robot_service, context):
    huge = sample_png() + b"\0" * (2 * 1024 * 1024)
    WeComAdapter().deliver(shared(campaign_event("campaign.published"), poster=huge),
                           configure(receiver), context)
    assert [m["msgtype"] for m in robot_service.messages] == ["markdown"]


def test_a_refused_image_after_the_text_is_still_a_delivery(receiver, context):
    receiver.answer(200, {"errcode": 0, "errmsg": "ok"})
    receiver.answer(200, {"errcode": 45009, "errmsg": "api freq out of limit"})
    outcome = WeComAdapter().deliver(shared(campaign_event("campaign.published")),
                                     configure(receiver), context)
    assert outcome.status_code == 200 and "the poster was not sent" in outcome.excerpt


def test_limits_and_usage(receiver):
    adapter, settings = WeComAdapter(), configure(receiver)
    assert [str(limit) for limit in adapter.rate_limits(settings)] == ["20 messages / 60 s"]
    assert adapter.usage(shared(campaign_event("campaign.published")), settings) == {"messages": 2}
    assert adapter.usage(campaign_event("campaign.published"), settings) == {"messages": 1}
    assert adapter.usage(shared(campaign_event("campaign.published")),
                         configure(receiver, poster="news")) == {"messages": 1}
    assert adapter.usage(campaign_event("campaign.ended"), settings) == {}
