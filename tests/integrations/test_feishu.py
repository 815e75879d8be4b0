"""Feishu custom bot: an interactive card, signed in the body, Feishu's codes in a 200."""

import base64
import hashlib
import hmac
import time
from dataclasses import replace

import pytest
from marshmallow import ValidationError

from integrations.adapter import PermanentError, RetryableError
from integrations.feishu import FeishuAdapter, FeishuConfig
from integrations.share import FixedPoster, Share

from .conftest import campaign_event, issued_event, make_event
from .services import FakeFeishu

SECRET = "qnR2PaKfbXyqUNXRnhJg3b"
POSTER = "https://couponsvc.example.cn/api/v1/campaigns/cmp_1/poster.png?token=t&v=abc"


@pytest.fixture
def bot(receiver):
    service = FakeFeishu(secret=SECRET)
    receiver.handler = service
    return service


def configure(receiver, **extra):
    return FeishuConfig().load({"webhook_url": receiver.url + "/open-apis/bot/v2/hook/hook-token",
                                "secret": SECRET, **extra})


def shared(event):
    return replace(event, share=Share("https://couponsvc.example.cn/d/cmp_1", FixedPoster(address=POSTER)))


def test_a_signed_interactive_card_with_a_button_to_the_deal(receiver, bot, context):
    before = int(time.time())
    FeishuAdapter().deliver(shared(campaign_event("campaign.published")), configure(receiver), context)
    assert bot.problems == []
    sent = receiver.requests[0]
    assert sent.path == "/open-apis/bot/v2/hook/hook-token" and sent.content_type == "application/json"
    body = sent.json()
    # the signature in the body, recomputed here as Feishu documents it
    assert before <= int(body["timestamp"]) <= time.time()
    key = f"{body['timestamp']}\n{SECRET}".encode()
    assert body["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert sent.query == {}  # not in the query, as DingTalk's
    assert body["msg_type"] == "interactive"
    card = body["card"]
    assert card["header"]["title"] == {"tag": "plain_text", "content": "新团购上线：赣州老字号双人套餐"}
    assert card["elements"][0]["text"]["content"] == ("团购价 ¥39.90，原价 ¥68.00，省 ¥28.10\n"
                                                      "已售 8 / 成团 10，还差 2 人成团")
    deal, poster = card["elements"][1]["actions"]
    assert (deal["text"]["content"], deal["url"], deal["type"]) == (
        "立即抢购", "https://couponsvc.example.cn/d/cmp_1", "primary")
    assert (poster["text"]["content"], poster["url"]) == ("查看海报", POSTER)


def test_unsigned_without_a_secret(receiver, context):
    bot = FakeFeishu()
    receiver.handler = bot
    FeishuAdapter().deliver(issued_event(sold=9), configure(receiver, secret=None), context)
    body = receiver.requests[0].json()
    assert "sign" not in body and "timestamp" not in body and bot.problems == []


def test_a_wrong_secret_is_refused_for_good(receiver, bot, context):
    with pytest.raises(PermanentError) as refused:
        FeishuAdapter().deliver(make_event(), configure(receiver, secret="wrong"), context)
    assert "19021" in str(refused.value) and refused.value.status_code == 200
    assert bot.problems == ["sign or timestamp"]


@pytest.mark.parametrize("code", [9499, 11232])
def test_too_many_requests_is_retried_after_a_minute(receiver, context, code):
    receiver.answer(200, {"code": code, "msg": "too many request", "data": {}})
    with pytest.raises(RetryableError) as waited:
        FeishuAdapter().deliver(make_event(), configure(receiver), context)
    assert waited.value.retry_after == 60


@pytest.mark.parametrize("reply", [
    (400, {"code": 9499, "msg": "Bad Request", "data": {}}),
    (200, {"code": 9499, "msg": " bad request ", "data": {}}),
])
def test_a_body_feishu_cannot_read_is_refused_for_good(receiver, context, reply):
    """9499 is also Feishu's answer to a body it cannot read: sending it again cannot help."""
    receiver.answer(*reply)
    with pytest.raises(PermanentError, match="9499"):
        FeishuAdapter().deliver(make_event(), configure(receiver), context)


def test_a_9499_that_does_not_say_what_it_is_is_waited_on(receiver, context):
    receiver.answer(200, {"code": 9499, "data": {}})
    with pytest.raises(RetryableError):
        FeishuAdapter().deliver(make_event(), configure(receiver), context)


def test_the_bots_own_rate_answer(receiver, context):
    bot = FakeFeishu(secret=SECRET, limit=(5, 3600.0))  # a long second: no race with the clock
    receiver.handler = bot
    adapter, config = FeishuAdapter(), configure(receiver)
    for _ in range(5):
        adapter.deliver(make_event(), config, context)
    with pytest.raises(RetryableError, match="11232"):
        adapter.deliver(make_event(), config, context)


@pytest.mark.parametrize("code", [19001, 19022, 19024])
def test_other_refusals_are_permanent(receiver, context, code):
    receiver.answer(200, {"code": code, "msg": "refused", "data": {}})
    with pytest.raises(PermanentError):
        FeishuAdapter().deliver(make_event(), configure(receiver), context)


def test_old_bots_status_code_answer(receiver, context):
    receiver.answer(200, {"StatusCode": 0, "StatusMessage": "success"})
    assert FeishuAdapter().deliver(make_event(), configure(receiver), context).status_code == 200
    receiver.answer(200, "<html>proxy</html>")
    with pytest.raises(RetryableError):
        FeishuAdapter().deliver(make_event(), configure(receiver), context)


def test_a_card_over_20_kb_is_shortened_with_its_buttons(receiver, bot, context):
    FeishuAdapter().deliver(shared(campaign_event("campaign.published", title="团" * 20000)),
                            configure(receiver), context)
    assert bot.problems == [] and len(receiver.requests[0].body) <= 20000
    actions = receiver.requests[0].json()["card"]["elements"][1]["actions"]
    assert [a["url"] for a in actions] == ["https://couponsvc.example.cn/d/cmp_1", POSTER]


def test_without_a_poster_url_one_button(receiver, bot, context):
    event = replace(campaign_event("campaign.tipped", sold=10, tipped=True),
                    share=Share("https://couponsvc.example.cn/d/cmp_1"))
    FeishuAdapter().deliver(event, configure(receiver, locale="en"), context)
    card = receiver.requests[0].json()["card"]
    assert card["header"]["title"]["content"] == "The deal is on: 赣州老字号双人套餐"
    [button] = card["elements"][1]["actions"]
    assert button["text"]["content"] == "Get the deal"


def test_credentials_are_write_only():
    config = FeishuConfig().load({"webhook_url": "https://open.feishu.cn/open-apis/bot/v2/hook/x",
                                  "secret": SECRET})
    assert "webhook_url" not in FeishuConfig().dump(config) and "secret" not in FeishuConfig().dump(config)
    with pytest.raises(ValidationError):
        FeishuConfig().load({"secret": SECRET})


def test_limits(receiver):
    adapter, settings = FeishuAdapter(), configure(receiver)
    assert [str(limit) for limit in adapter.rate_limits(settings)] == [
        "100 messages / 60 s", "5 messages / 1 s"]
    assert adapter.usage(make_event(), settings) == {"messages": 1}
    assert adapter.usage(campaign_event("campaign.ended"), settings) == {}
