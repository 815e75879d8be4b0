"""Deals on the forum and on Weibo, end to end: a deal published through the API reaches the
channel's local stand-in through the outbox and the drain, with its link and its poster
drawn by the service; a retried delivery opens no second topic; an expired Weibo token
disables the integration with its reason, and nothing is lost until it is enabled again."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from couponsvc.promotion.fonts import find_fonts
from tests.factories import Client
from tests.integrations.receiver import Receiver
from tests.integrations.services import FakeDiscourse, FakeWeibo, png_size

from .test_drain import work_off

pytestmark = [
    pytest.mark.config(ALLOW_PRIVATE_WEBHOOK_TARGETS=True),
    pytest.mark.skipif(find_fonts(None) is None, reason="no CJK font to draw posters (fonts-noto-cjk)"),
]

TEMPLATE = "https://shop.example.cn/m/{merchant_id}/d/{campaign_id}"


class Merchant:
    """A merchant with its own deal link template and a manager key, no deal yet."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.merchant = client.merchant(deal_url_template=TEMPLATE)
        client.store(self.merchant["id"])
        self.manager = client.key(self.merchant["id"], "manager")

    def integrate(self, adapter: str, config: dict, events: list[str]) -> dict:
        body = {"adapter": adapter, "config": config, "events": events}
        return self.client.ok(self.client.post(f"merchants/{self.merchant['id']}/integrations", body,
                                               key=self.manager), 201)

    def deliveries(self, integration: dict) -> list[dict]:
        return self.client.ok(self.client.get(f"integrations/{integration['id']}/deliveries",
                                              key=self.manager))["data"]

    def link(self, campaign: dict) -> str:
        return TEMPLATE.format(merchant_id=self.merchant["id"], campaign_id=campaign["id"])


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


def test_a_deal_on_the_forum_its_topic_poster_and_replies(client, app, receiver):
    forum = FakeDiscourse(base=receiver.url)
    receiver.handler = forum
    shop = Merchant(client)
    integration = shop.integrate("discourse", {"base_url": receiver.url, "api_key": "key-abc",
                                               "category_id": 7},
                                 ["campaign.published", "campaign.tipped", "coupon.issued"])
    campaign = client.campaign(shop.merchant["id"], title="章贡区老字号牛肉粉双人套餐", min_group_size=5)
    work_off(app)

    [topic] = forum.topics.values()
    assert topic.external_id == f"couponsvc-{campaign['id']}" and forum.problems == []
    [poster] = forum.uploads.values()
    assert (poster["width"], poster["height"]) == (1080, 1920)  # the service's share poster
    assert f"({poster['short_url']})" in topic.posts[0]
    assert topic.posts[0].endswith(f"[立即抢购]({shop.link(campaign)})")  # the merchant's deal link

    client.order(campaign["id"], quantity=1)  # 4 to go: not announced
    client.order(campaign["id"], quantity=2)  # 2 to go
    client.order(campaign["id"], quantity=2)  # tipped
    work_off(app)
    assert [post.split("**")[1] for post in topic.posts[1:]] == [
        "还差 2 人成团：章贡区老字号牛肉粉双人套餐", "已成团：章贡区老字号牛肉粉双人套餐"]
    assert len(forum.topics) == 1 and forum.problems == []

    # a person sends the publication again: the forum keeps its one topic
    published = next(d for d in shop.deliveries(integration) if d["event_type"] == "campaign.published")
    client.ok(client.post(f"deliveries/{published['id']}/retry", key=shop.manager), 202)
    work_off(app)
    again = next(d for d in shop.deliveries(integration) if d["id"] == published["id"])
    assert again["status"] == "succeeded" and "the topic exists already" in again["last_response"]
    assert len(forum.topics) == 1


def test_an_expired_weibo_token_disables_the_integration_and_holds_its_posts(client, app, receiver):
    weibo = FakeWeibo(expired=True)
    receiver.handler = weibo
    shop = Merchant(client)
    integration = shop.integrate("weibo", {
        "access_token": "2.00weibo-token", "api_base": receiver.url, "safe_domain": "shop.example.cn",
        "link_template": TEMPLATE}, ["campaign.published"])
    first = client.campaign(shop.merchant["id"], title="赣州脐橙采摘双人票")
    work_off(app)

    state = client.ok(client.get(f"integrations/{integration['id']}", key=shop.manager))
    assert state["status"] == "disabled"
    assert "21327" in state["disabled_reason"] and "authorise the app again" in state["disabled_reason"]
    [held] = shop.deliveries(integration)
    assert held["status"] == "held" and held["attempts"] == 1
    disabled = client.events(key=shop.manager, type="integration.disabled")
    assert [e["data"]["integration"]["reason"] for e in disabled] == [state["disabled_reason"]]

    second = client.campaign(shop.merchant["id"], title="通天岩景区门票两张")
    work_off(app)
    assert len(receiver.requests) == 1  # nothing tried while it is disabled

    weibo.expired = False  # the merchant authorised the app again and saves the new token
    client.ok(client.patch(f"integrations/{integration['id']}",
                           {"config": {"access_token": "2.00weibo-token"}, "status": "active"},
                           key=shop.manager))
    work_off(app)
    assert [s["text"].splitlines()[0] for s in weibo.statuses] == [
        "新团购上线：赣州脐橙采摘双人票", "新团购上线：通天岩景区门票两张"]
    assert [s["text"].splitlines()[-1] for s in weibo.statuses] == [shop.link(first), shop.link(second)]
    assert all(png_size(s["picture"]) == (1080, 1920) for s in weibo.statuses)
    assert weibo.problems == []
    assert {d["status"] for d in shop.deliveries(integration)} == {"succeeded"}


@pytest.mark.parametrize(("locale", "lang"), [("zh", None), ("en", "en")])
def test_the_poster_url_a_robot_shows_serves_the_current_poster(client, app, receiver, locale, lang):
    receiver.default.body = b'{"errcode": 0, "errmsg": "ok"}'
    shop = Merchant(client)
    shop.integrate("dingtalk", {"webhook_url": receiver.url + "/robot/send?access_token=t", "locale": locale},
                   ["campaign.published"])
    campaign = client.campaign(shop.merchant["id"], title="客家擂茶体验课")
    work_off(app)

    text = receiver.requests[0].json()["markdown"]["text"]
    picture = re.search(r"!\[[^\]]*\]\((?P<url>[^)]+)\)$", text)["url"]
    parts = urlsplit(picture)
    assert parts.path == f"/api/v1/campaigns/{campaign['id']}/poster.png"
    query = parse_qs(parts.query)
    assert query.get("lang", [None])[0] == lang and set(query) <= {"token", "lang", "v"}
    served = client.get(f"{parts.path}?{parts.query}", key=None)  # the capability alone opens it
    assert served.status_code == 200 and served.mimetype == "image/png"
    assert served.headers["ETag"].strip('"').startswith(query["v"][0])  # the version is the poster's


def test_a_poster_that_cannot_be_had_leaves_the_text_to_go_alone(client, app, receiver, monkeypatch):
    from couponsvc.deal_pages.delivery_posters import AppPosters

    def broken(self, session, campaign_id, language):
        raise OSError("the disk is full")

    monkeypatch.setattr(AppPosters, "png", broken)
    receiver.default.body = b'{"errcode": 0, "errmsg": "ok"}'
    shop = Merchant(client)
    integration = shop.integrate("wecom", {"webhook_url": receiver.url + "/cgi-bin/webhook/send?key=k"},
                                 ["campaign.published"])
    client.campaign(shop.merchant["id"], title="米粉节双人套餐")
    work_off(app)
    assert [r.json()["msgtype"] for r in receiver.requests] == ["markdown"]
    [sent] = shop.deliveries(integration)
    assert sent["status"] == "succeeded" and "no poster to send" in sent["last_response"]
