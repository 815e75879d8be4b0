"""Discourse: a topic per deal (with its poster), replies in it, idempotent by external_id."""

from dataclasses import replace

import pytest
from marshmallow import ValidationError

from integrations.adapter import PermanentError, RetryableError
from integrations.discourse import DiscourseAdapter, DiscourseConfig, external_id
from integrations.share import FixedPoster, Share

from .conftest import campaign_event, issued_event, make_event, sample_png
from .receiver import Answer
from .services import FakeDiscourse, Topic

LINK = "https://shop.example.cn/deals/cmp_1"


@pytest.fixture
def forum(receiver):
    service = FakeDiscourse(base=receiver.url)
    receiver.handler = service
    return service


def configure(receiver, **extra):
    return DiscourseConfig().load({"base_url": receiver.url, "api_key": "key-abc",
                                   "category_id": 7, **extra})


def shared(event, poster=True):
    return replace(event, share=Share(LINK, FixedPoster(sample_png()) if poster else None))


def test_a_published_deal_opens_a_topic_with_its_poster(receiver, forum, context):
    outcome = DiscourseAdapter().deliver(shared(campaign_event("campaign.published")),
                                         configure(receiver), context)
    assert outcome.status_code == 200 and forum.problems == []
    upload, post = receiver.requests
    for sent in (upload, post):
        assert sent.headers["api-key"] == "key-abc" and sent.headers["api-username"] == "system"
    assert (upload.method, upload.path) == ("POST", "/uploads.json")
    parts = upload.multipart()
    assert parts["type"][0].text == "composer" and parts["file"][0].data == sample_png()
    body = post.json()
    assert (post.method, post.path, body["category"]) == ("POST", "/posts.json", 7)
    assert body["external_id"] == "couponsvc-cmp_1"
    assert body["title"] == "新团购上线：赣州老字号双人套餐｜团购价 ¥39.90，原价 ¥68.00，省 ¥28.10"
    [topic] = forum.topics.values()
    [short_url] = [u["short_url"] for u in forum.uploads.values()]
    assert f"![新团购上线：赣州老字号双人套餐|108x192]({short_url})" in topic.posts[0]
    assert topic.posts[0].startswith("**新团购上线：赣州老字号双人套餐**")
    assert topic.posts[0].endswith(f"[立即抢购]({LINK})")


def test_tipped_and_nearly_tipped_reply_in_the_same_topic(receiver, forum, context):
    adapter, config = DiscourseAdapter(), configure(receiver)
    adapter.deliver(shared(campaign_event("campaign.published")), config, context)
    adapter.deliver(shared(issued_event(sold=8)), config, context)
    adapter.deliver(shared(campaign_event("campaign.tipped", sold=10, tipped=True)), config, context)
    [topic] = forum.topics.values()
    assert len(topic.posts) == 3 and forum.problems == []
    assert topic.posts[1].startswith("**还差 2 人成团：赣州老字号双人套餐**")
    assert topic.posts[2].startswith("**已成团：赣州老字号双人套餐**")
    replies = [r.json() for r in receiver.requests if r.path == "/posts.json" and "topic_id" in r.json()]
    assert [r["topic_id"] for r in replies] == [topic.id, topic.id]
    assert not any("title" in r or "external_id" in r for r in replies)


def test_the_topic_is_found_by_its_external_id(receiver, forum, context):
    """Another worker (or a restart) knows no topic id: the forum is asked, the redirect read."""
    forum.topics[55] = existing = Topic(55, "新团购上线：赣州老字号双人套餐", 7, external_id("cmp_9"),
                                        ["**新团购上线**：first post of the deal"])
    DiscourseAdapter().deliver(campaign_event("campaign.tipped", id="cmp_9"), configure(receiver), context)
    lookup, post = receiver.requests
    assert (lookup.method, lookup.path) == ("GET", "/t/external_id/couponsvc-cmp_9.json")
    assert post.json()["topic_id"] == 55 and len(existing.posts) == 2


def test_a_retried_publication_never_opens_a_second_topic(receiver, forum, context):
    forum.lose_answers = 1  # the topic is made, its answer lost: the delivery fails and is retried
    adapter, config, event = DiscourseAdapter(), configure(receiver), shared(campaign_event("campaign.published"))
    with pytest.raises(RetryableError):
        adapter.deliver(event, config, context)
    outcome = adapter.deliver(event, config, context)
    assert len(forum.topics) == 1
    assert outcome.status_code == 422 and "the topic exists already" in outcome.excerpt
    assert [r.path for r in receiver.requests][-2:] == ["/posts.json", "/t/external_id/couponsvc-cmp_1.json"]
    assert forum.problems == []


def test_a_deal_without_a_topic_gets_one_with_its_first_reply(receiver, forum, context):
    DiscourseAdapter().deliver(shared(issued_event(sold=9), poster=False), configure(receiver), context)
    [topic] = forum.topics.values()
    assert topic.external_id == "couponsvc-cmp_1" and topic.title.startswith("还差 1 人成团：")
    assert [r.path for r in receiver.requests] == ["/t/external_id/couponsvc-cmp_1.json", "/posts.json"]


def test_long_titles_and_bodies_are_shortened_not_refused(receiver, forum, context):
    DiscourseAdapter().deliver(shared(campaign_event("campaign.published", title="团" * 40000)),
                               configure(receiver), context)
    [topic] = forum.topics.values()
    assert len(topic.title) <= 255 and len(topic.posts[0]) <= 32000 and forum.problems == []
    assert topic.posts[0].endswith(f"[立即抢购]({LINK})")


def test_a_poster_the_forum_refuses_is_left_out(receiver, forum, context):
    def refuse_uploads(request):
        if request.path == "/uploads.json":
            return Answer(422, b'{"errors":["Sorry, the file you are trying to upload is too big"]}')
        return forum(request)

    receiver.handler = refuse_uploads
    DiscourseAdapter().deliver(shared(campaign_event("campaign.published")), configure(receiver), context)
    [topic] = forum.topics.values()
    assert "upload://" not in topic.posts[0]


def test_a_refused_key_is_permanent(receiver, forum, context):
    forum.api_key = "another"
    with pytest.raises(PermanentError) as refused:
        DiscourseAdapter().deliver(make_event(), configure(receiver), context)
    assert refused.value.status_code == 403 and "API username or key is invalid" in refused.value.excerpt


def test_rate_limited_waits_for_retry_after(receiver, context):
    receiver.answer(429, {"errors": ["You’ve performed this action too many times."],
                          "error_type": "rate_limit", "extras": {"wait_seconds": 33}},
                    headers={"Retry-After": "33"})
    with pytest.raises(RetryableError) as waited:
        DiscourseAdapter().deliver(campaign_event("campaign.published"), configure(receiver), context)
    assert waited.value.retry_after == 33


def test_ping_asks_who_the_key_is(receiver, forum, context):
    forum.api_username = "deals_bot"
    outcome = DiscourseAdapter().deliver(make_event(), configure(receiver, api_username="deals_bot"),
                                         context)
    assert receiver.requests[0].path == "/session/current.json" and forum.problems == []
    assert '"username": "deals_bot"' in outcome.excerpt and forum.topics == {}


def test_config_and_credentials():
    with pytest.raises(ValidationError):
        DiscourseConfig().load({"base_url": "https://bbs.example.cn", "api_key": "k"})
    with pytest.raises(ValidationError):
        DiscourseConfig().load({"base_url": "https://bbs.example.cn", "api_key": "k", "category_id": "7"})
    loaded = DiscourseConfig().load({"base_url": "https://bbs.example.cn", "api_key": "k", "category_id": 7})
    assert "api_key" not in DiscourseConfig().dump(loaded) and loaded["api_username"] == "system"


def test_external_ids_fit_discourse():
    assert external_id("cmp_01JD8Y3K2Q9V7M4T6X0A5B8C1D") == "couponsvc-cmp_01JD8Y3K2Q9V7M4T6X0A5B8C1D"
    long = external_id("x" * 60)
    assert len(long) <= 50 and long.startswith("couponsvc-") and long == external_id("x" * 60)
    assert external_id("a b/c") != "couponsvc-a b/c"


def test_limits_and_usage():
    adapter = DiscourseAdapter()
    settings = DiscourseConfig().load({"base_url": "https://bbs.example.cn", "api_key": "k", "category_id": 7})
    assert [str(limit) for limit in adapter.rate_limits(settings)] == ["60 requests / 60 s"]
    assert adapter.usage(shared(campaign_event("campaign.published")), settings) == {"requests": 3}
    assert adapter.usage(campaign_event("campaign.published"), settings) == {"requests": 2}
    assert adapter.usage(shared(campaign_event("campaign.tipped")), settings) == {"requests": 4}
    assert adapter.usage(campaign_event("campaign.ended"), settings) == {}
