"""Mastodon: POST /api/v1/statuses, form-encoded, bearer token, Idempotency-Key."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from integrations.adapter import PermanentError, RetryableError
from integrations.mastodon import MastodonAdapter, MastodonConfig
from integrations.share import FixedPoster, Share

from .conftest import campaign_event, issued_event, make_event, sample_png
from .services import FakeMastodon


def configure(receiver, **extra):
    return MastodonConfig().load({
        "instance_url": receiver.url + "/", "access_token": "tok-abc",
        "link_template": "https://shop.example.cn/deals/{campaign_id}", **extra})


def test_a_status_with_bearer_and_idempotency_key(receiver, context):
    receiver.answer(200, {"id": "1093", "visibility": "public"})
    event = campaign_event("campaign.published")
    outcome = MastodonAdapter().deliver(event, configure(receiver), context)
    assert outcome.status_code == 200 and '"id": "1093"' in outcome.excerpt
    sent = receiver.requests[0]
    assert (sent.method, sent.path) == ("POST", "/api/v1/statuses")
    assert sent.headers["authorization"] == "Bearer tok-abc"
    assert sent.headers["idempotency-key"] == "evt_1"
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    form = sent.form()
    assert form["visibility"] == ["public"] and form["language"] == ["zh"]
    status = form["status"][0]
    assert status.splitlines() == [
        "新团购上线：赣州老字号双人套餐", "团购价 ¥39.90，原价 ¥68.00，省 ¥28.10",
        "已售 8 / 成团 10，还差 2 人成团", "https://shop.example.cn/deals/cmp_1"]


def test_the_same_event_sends_the_same_key(receiver, context):
    config = configure(receiver, visibility="unlisted", language="en", locale="en")
    for _ in range(2):
        MastodonAdapter().deliver(issued_event(sold=7), config, context)
    keys = {r.headers["idempotency-key"] for r in receiver.requests}
    assert keys == {"evt_1"}
    form = receiver.requests[0].form()
    assert form["visibility"] == ["unlisted"] and form["language"] == ["en"]
    assert form["status"][0].startswith("3 more to go: ")


def test_statuses_fit_500_characters_with_the_link_whole(receiver, context):
    MastodonAdapter().deliver(campaign_event("campaign.published", title="团" * 800),
                              configure(receiver), context)
    status = receiver.requests[0].form()["status"][0]
    assert len(status) <= 500 and status.endswith("\nhttps://shop.example.cn/deals/cmp_1")


def test_ping_checks_the_token_without_posting(receiver, context):
    receiver.answer(200, {"id": "1", "username": "gz_deals"})
    MastodonAdapter().deliver(make_event(), configure(receiver), context)
    sent = receiver.requests[0]
    assert (sent.method, sent.path) == ("GET", "/api/v1/accounts/verify_credentials")
    assert sent.headers["authorization"] == "Bearer tok-abc"


@pytest.mark.parametrize("status", [401, 403, 422])
def test_a_refused_token_or_status_is_permanent(receiver, context, status):
    receiver.answer(status, {"error": "The access token is invalid"})
    with pytest.raises(PermanentError) as caught:
        MastodonAdapter().deliver(campaign_event("campaign.tipped"), configure(receiver),
                                  context)
    assert caught.value.status_code == status and "access token" in caught.value.excerpt


def test_rate_limit_waits_for_the_reset(receiver, context):
    reset = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    receiver.answer(429, {"error": "Too many requests"}, headers={"X-RateLimit-Reset": reset})
    with pytest.raises(RetryableError) as caught:
        MastodonAdapter().deliver(campaign_event("campaign.tipped"), configure(receiver),
                                  context)
    assert 290 <= caught.value.retry_after <= 300


def test_the_token_is_not_dumped():
    config = MastodonConfig().load({"instance_url": "https://m.example", "access_token": "t"})
    assert "access_token" not in MastodonConfig().dump(config)


def test_events_it_does_not_announce_are_skipped(receiver, context):
    outcome = MastodonAdapter().deliver(issued_event(sold=1), configure(receiver), context)
    assert outcome.excerpt.startswith("skipped:") and receiver.requests == []


@pytest.mark.parametrize("reset", [None, "not-a-date"])
def test_rate_limit_without_a_usable_reset(receiver, context, reset):
    headers = {"X-RateLimit-Reset": reset} if reset else {}
    receiver.answer(429, {"error": "Too many requests"}, headers=headers)
    with pytest.raises(RetryableError) as caught:
        MastodonAdapter().deliver(campaign_event("campaign.tipped"), configure(receiver),
                                  context)
    assert caught.value.retry_after is None


# ---------------------------------------------------------------------------- the poster --
def shared(event):
    return replace(event, share=Share("https://couponsvc.example.cn/d/cmp_1", FixedPoster(sample_png())))


def test_the_poster_is_attached_as_media(receiver, context):
    mastodon = FakeMastodon()
    receiver.handler = mastodon
    MastodonAdapter().deliver(shared(campaign_event("campaign.published")),
                              configure(receiver, link_template=None), context)
    assert mastodon.problems == []
    upload, post = receiver.requests
    assert (upload.method, upload.path) == ("POST", "/api/v2/media")
    parts = upload.multipart()
    assert parts["file"][0].data == sample_png() and parts["file"][0].filename == "poster.png"
    assert parts["description"][0].text == "新团购上线：赣州老字号双人套餐"
    assert post.form()["media_ids[]"] == ["1000"]
    assert post.form()["status"][0].endswith("\nhttps://couponsvc.example.cn/d/cmp_1")
    [status] = mastodon.statuses.values()
    assert status["media_attachments"][0]["id"] == "1000"


def test_a_media_still_processing_is_retried_before_posting(receiver, context):
    receiver.answer(202, {"id": "77", "type": "image", "url": None})
    receiver.answer(206, {"id": "77", "type": "image", "url": None})
    with pytest.raises(RetryableError) as waited:
        MastodonAdapter().deliver(shared(campaign_event("campaign.published")), configure(receiver), context)
    assert waited.value.retry_after == 5
    assert [r.path for r in receiver.requests] == ["/api/v2/media", "/api/v1/media/77"]


def test_a_processed_media_after_202_is_attached(receiver, context):
    receiver.answer(202, {"id": "77", "type": "image", "url": None})
    receiver.answer(200, {"id": "77", "type": "image", "url": "https://m.example/77.png"})
    receiver.answer(200, {"id": "1"})
    MastodonAdapter().deliver(shared(campaign_event("campaign.published")), configure(receiver), context)
    assert receiver.requests[-1].form()["media_ids[]"] == ["77"]


@pytest.mark.parametrize("status", [413, 422])
def test_a_refused_media_leaves_the_status_without_it(receiver, context, status):
    receiver.answer(status, {"error": "File is too large"})
    receiver.answer(200, {"id": "1"})
    MastodonAdapter().deliver(shared(campaign_event("campaign.published")), configure(receiver), context)
    assert "media_ids[]" not in receiver.requests[-1].form()


def test_no_media_when_turned_off(receiver, context):
    MastodonAdapter().deliver(shared(campaign_event("campaign.published")),
                              configure(receiver, poster=False), context)
    assert [r.path for r in receiver.requests] == ["/api/v1/statuses"]


def test_limits_and_usage(receiver):
    adapter, settings = MastodonAdapter(), configure(receiver)
    assert [str(limit) for limit in adapter.rate_limits(settings)] == [
        "300 requests / 300 s", "30 media / 1800 s"]
    assert adapter.usage(shared(campaign_event("campaign.published")), settings) == {"requests": 3, "media": 1}
    assert adapter.usage(campaign_event("campaign.published"), settings) == {"requests": 1}
    assert adapter.usage(make_event(), settings) == {"requests": 1}
