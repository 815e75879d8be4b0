"""Deal announcements: Chinese by default, price against list price, progress, link."""

import pytest
from marshmallow import ValidationError

from integrations.messages import AnnouncementSchema, Message, compose

from .conftest import campaign_event, issued_event, make_event

SETTINGS = AnnouncementSchema().load(
    {"link_template": "https://shop.example.cn/deals/{campaign_id}?m={merchant_id}"})


def test_published_in_chinese():
    message = compose(campaign_event("campaign.published"), SETTINGS)
    assert message.title == "新团购上线：赣州老字号双人套餐"
    assert message.lines == ("团购价 ¥39.90，原价 ¥68.00，省 ¥28.10",
                             "已售 8 / 成团 10，还差 2 人成团")
    assert message.link == "https://shop.example.cn/deals/cmp_1?m=mer_1"


def test_tipped():
    message = compose(campaign_event("campaign.tipped", sold=11, tipped=True), SETTINGS)
    assert message.title == "已成团：赣州老字号双人套餐"
    assert message.lines[1] == "已售 11，已成团，券已生效"


@pytest.mark.parametrize(("sold", "threshold", "announced"), [
    (7, 3, True), (9, 3, True), (6, 3, False), (10, 3, False), (5, 5, True), (9, 1, True),
    (8, 1, False)])
def test_nearly_tipped_threshold(sold, threshold, announced):
    settings = {**SETTINGS, "nearly_tipped_threshold": threshold}
    message = compose(issued_event(sold=sold), settings)
    assert (message is not None) is announced
    if announced:
        assert message.title == f"还差 {10 - sold} 人成团：赣州老字号双人套餐"


def test_a_tipped_campaign_is_not_nearly_tipped():
    assert compose(issued_event(sold=9, tipped=True), SETTINGS) is None


@pytest.mark.parametrize("type_", ["campaign.ended", "campaign.failed", "coupon.redeemed",
                                   "order.confirmed", "coupon.voided"])
def test_other_events_are_not_announced(type_):
    assert compose(campaign_event(type_), SETTINGS) is None


def test_no_list_price_no_saving_and_no_group():
    message = compose(campaign_event("campaign.published", list_price=None, min_group_size=1,
                                     sold=0), {**SETTINGS, "link_template": None})
    assert message.lines == ("团购价 ¥39.90",)
    assert message.link is None


def test_markdown_and_plain_renderings():
    message = compose(campaign_event("campaign.published", title="双人<b>套餐</b>\n新品"),
                      SETTINGS)
    assert message.markdown().splitlines() == [
        "### 新团购上线：双人＜b＞套餐＜/b＞ 新品",
        "> 团购价 ¥39.90，原价 ¥68.00，省 ¥28.10",
        "> 已售 8 / 成团 10，还差 2 人成团",
        "[立即抢购](https://shop.example.cn/deals/cmp_1?m=mer_1)"]
    assert message.plain().endswith("\nhttps://shop.example.cn/deals/cmp_1?m=mer_1")


def test_plain_text_is_cut_but_the_link_is_kept():
    message = Message("t" * 600, ("x",), "https://s.example/d/1", "go")
    text = message.plain(100)
    assert len(text) == 100 and text.endswith("…\nhttps://s.example/d/1")


def test_ids_in_links_are_quoted():
    message = compose(campaign_event("campaign.published", id="a/b c"), SETTINGS)
    assert message.link.startswith("https://shop.example.cn/deals/a%2Fb%20c?")


def test_ping_is_a_test_message():
    assert compose(make_event(), SETTINGS).title == "couponsvc 测试消息"
    assert compose(make_event(), {**SETTINGS, "locale": "en"}).title == "couponsvc test message"


@pytest.mark.parametrize("template", [
    "https://x.example/{deal}", "https://x.example/{0}", "javascript:alert(1)//{campaign_id}",
    "https://x.example/{campaign_id"])
def test_bad_link_templates(template):
    with pytest.raises(ValidationError):
        AnnouncementSchema().load({"link_template": template})


def test_locale_is_zh_or_en():
    assert AnnouncementSchema().load({})["locale"] == "zh"
    with pytest.raises(ValidationError):
        AnnouncementSchema().load({"locale": "fr"})
