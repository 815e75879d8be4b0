"""Mastodon: POST /api/v1/statuses, form-encoded, bearer token, Idempotency-Key."""

from datetime import UTC, datetime, timedelta

import pytest

from integrations.adapter import PermanentError, RetryableError
from integrations.mastodon import MastodonAdapter, MastodonConfig

from .conftest import campaign_event, issued_event, make_event


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
