"""Weibo: statuses/share with the poster, 140 Weibo characters, the safe domain, error codes."""

from dataclasses import replace

import pytest
from marshmallow import ValidationError

from integrations.adapter import PermanentError, RetryableError
from integrations.share import FixedPoster, Share
from integrations.weibo import WeiboAdapter, WeiboConfig, weibo_length

from .conftest import campaign_event, issued_event, make_event, sample_png
from .services import FakeWeibo, weibo_units

TEMPLATE = "https://shop.example.cn/deals/{campaign_id}"


@pytest.fixture
def weibo(receiver):
    service = FakeWeibo()
    receiver.handler = service
    return service


def configure(receiver, **extra):
    return WeiboConfig().load({"access_token": "2.00weibo-token", "api_base": receiver.url,
                               "safe_domain": "shop.example.cn", "link_template": TEMPLATE, **extra})


def shared(event):
    return replace(event, share=Share("https://elsewhere.example/d/cmp_1", FixedPoster(sample_png())))


def test_a_share_with_the_poster_as_pic(receiver, weibo, context):
    outcome = WeiboAdapter().deliver(shared(campaign_event("campaign.published")),
                                     configure(receiver, rip="203.0.113.7"), context)
    assert outcome.status_code == 200 and weibo.problems == []
    sent = receiver.requests[0]
    assert (sent.method, sent.path) == ("POST", "/2/statuses/share.json")
    parts = sent.multipart()
    assert parts["access_token"][0].text == "2.00weibo-token" and parts["rip"][0].text == "203.0.113.7"
    assert parts["pic"][0].data == sample_png() and parts["pic"][0].content_type == "image/png"
    [status] = weibo.statuses
    assert status["picture"] == sample_png()
    assert status["text"].splitlines() == [
        "新团购上线：赣州老字号双人套餐", "团购价 ¥39.90，原价 ¥68.00，省 ¥28.10",
        "已售 8 / 成团 10，还差 2 人成团", "https://shop.example.cn/deals/cmp_1"]


def test_without_a_poster_the_form_is_urlencoded(receiver, weibo, context):
    WeiboAdapter().deliver(issued_event(sold=9), configure(receiver), context)
    sent = receiver.requests[0]
    assert sent.content_type == "application/x-www-form-urlencoded" and weibo.problems == []
    assert sent.form()["status"][0].startswith("还差 1 人成团：")
    assert "rip" not in sent.form()


def test_statuses_are_shortened_to_140_weibo_characters_with_the_link_whole(receiver, weibo, context):
    event = campaign_event("campaign.published", title="赣州#老字号#" + "团" * 300 + "tasty" * 40)
    WeiboAdapter().deliver(event, configure(receiver), context)
    assert weibo.problems == []
    [status] = weibo.statuses
    assert weibo_units(status["text"]) <= 140 and weibo_length(status["text"]) <= 140
    assert status["text"].endswith("\nhttps://shop.example.cn/deals/cmp_1")
    assert "#" not in status["text"] and "＃老字号＃" in status["text"]


def test_weibo_counts_ascii_as_half_and_a_link_as_ten():
    assert weibo_length("团购") == 2
    assert weibo_length("ab") == 1 and weibo_length("abc") == 2
    assert weibo_length("团 " + "https://shop.example.cn/deals/" + "x" * 80) == 12  # 2 + 1 + 20 halves
    assert weibo_length("我司CEO与我司吉祥物...好大一坨！") == 16  # as Weibo's composer counts it


def test_the_link_must_be_on_the_safe_domain_when_saved(receiver):
    with pytest.raises(ValidationError) as refused:
        configure(receiver, link_template="https://other.example.cn/deals/{campaign_id}")
    assert "safe domain" in str(refused.value.messages["link_template"])
    assert configure(receiver, link_template="https://m.shop.example.cn/d/{campaign_id}")
    with pytest.raises(ValidationError):
        configure(receiver, safe_domain="not a domain")
    with pytest.raises(ValidationError):
        WeiboConfig().load({"access_token": "t", "safe_domain": "shop.example.cn"})  # no link


def test_the_service_refuses_a_link_off_the_safe_domain(receiver, weibo, context):
    weibo.safe_domain = "another.example.cn"
    with pytest.raises(PermanentError) as refused:
        WeiboAdapter().deliver(campaign_event("campaign.published"), configure(receiver), context)
    assert "10017" in str(refused.value) and weibo.problems == ["no link on the safe domain"]


def test_an_expired_token_disables_the_integration_with_the_reason(receiver, weibo, context):
    weibo.expired = True
    with pytest.raises(PermanentError) as refused:
        WeiboAdapter().deliver(campaign_event("campaign.published"), configure(receiver), context)
    assert refused.value.disable and refused.value.status_code == 401
    assert "21327" in str(refused.value) and "authorise the app again" in str(refused.value)


@pytest.mark.parametrize("code", [21332, "21315", 21319, 21301])
def test_any_refused_token_disables(receiver, context, code):
    receiver.answer(401, {"request": "/2/statuses/share.json", "error_code": code, "error": "invalid_access_token"})
    with pytest.raises(PermanentError) as refused:
        WeiboAdapter().deliver(campaign_event("campaign.published"), configure(receiver), context)
    assert refused.value.disable


@pytest.mark.parametrize("code", [10022, 10023, 10024, 20016])
def test_rate_limits_are_retried_after_an_hour(receiver, context, code):
    receiver.answer(403, {"request": "/2/statuses/share.json", "error_code": str(code), "error": "out of rate limit"})
    with pytest.raises(RetryableError) as waited:
        WeiboAdapter().deliver(campaign_event("campaign.published"), configure(receiver), context)
    assert waited.value.retry_after == 3600


def test_a_repeat_is_success_not_a_second_post(receiver, weibo, context):
    adapter, config, event = WeiboAdapter(), configure(receiver), campaign_event("campaign.published")
    adapter.deliver(event, config, context)
    again = adapter.deliver(event, config, context)
    assert len(weibo.statuses) == 1
    assert again.status_code == 400 and again.excerpt.startswith("already posted (Weibo error 20019")


@pytest.mark.parametrize(("code", "outcome"), [
    (10001, RetryableError), (10009, RetryableError), (20012, PermanentError),
    (20018, PermanentError), (10014, PermanentError), (20032, None)])
def test_other_codes(receiver, context, code, outcome):
    receiver.answer(400, {"request": "/2/statuses/share.json", "error_code": code, "error": "x"})
    deliver = lambda: WeiboAdapter().deliver(campaign_event("campaign.published"),  # noqa: E731
                                             configure(receiver), context)
    if outcome is None:
        assert "shown after a delay" in deliver().excerpt
        return
    with pytest.raises(outcome) as failed:
        deliver()
    assert not getattr(failed.value, "disable", False)


def test_ping_asks_about_the_token_and_posts_nothing(receiver, weibo, context):
    outcome = WeiboAdapter().deliver(make_event(), configure(receiver), context)
    assert receiver.requests[0].path == "/oauth2/get_token_info" and weibo.statuses == []
    assert '"expire_in"' in outcome.excerpt
    weibo.expired = True
    with pytest.raises(PermanentError) as refused:
        WeiboAdapter().deliver(make_event(), configure(receiver), context)
    assert refused.value.disable


def test_the_token_is_write_only(receiver):
    assert "access_token" not in WeiboConfig().dump(configure(receiver))


def test_limits_and_usage(receiver):
    adapter, settings = WeiboAdapter(), configure(receiver)
    assert [str(limit) for limit in adapter.rate_limits(settings)] == ["30 posts / 3600 s"]
    assert adapter.usage(campaign_event("campaign.published"), settings) == {"posts": 1}
    assert adapter.usage(make_event(), settings) == {}
    assert adapter.usage(issued_event(sold=2), settings) == {}
