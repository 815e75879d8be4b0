"""The public deal page and its embed card in chromium, in Chinese and in English, on a 390 px
phone and a 1280 px screen: the facts a buyer reads, the progress bar refreshing itself as
people buy, the poster shown for saving, the card in another site's iframe while the page
itself refuses to be framed. Screenshots under artifacts/screenshots/deal-*."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.factories import Shop

from .conftest import DESKTOP, PHONE, assert_fits, screenshot

WORDS = {
    "zh-CN": {"progress": "成团进度", "left": "还差 3 人成团", "fewer": "还差 2 人成团",
              "stores": "适用门店", "ends": "截止", "share": "分享海报", "missing": "找不到这个团购"},
    "en-US": {"progress": "Group progress", "left": "3 more buyers to tip",
              "fewer": "2 more buyers to tip", "stores": "Where to use it", "ends": "Sales end",
              "share": "Share the poster", "missing": "This deal is not here"},
}
TITLE = "双人牛肉面套餐：招牌牛肉面两碗＋卤蛋两个＋凉菜一份"


def make_shop(client) -> Shop:
    shop = Shop(client, title=TITLE, price=3990, list_price=8800, min_group_size=5,
                description="周末节假日通用，无需预约。\n每桌限用一张。")
    client.store(shop.merchant["id"], name="章江新区店", address="长征大道 9 号 万象城 B1 层")
    client.order(shop.campaign["id"], 2)
    return shop


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_the_deal_page_on_a_phone_and_a_screen(client, new_context, locale):
    words = WORDS[locale]
    shop = make_shop(client)
    for size, viewport in (("390", PHONE), ("1280", DESKTOP)):
        page = new_context(locale=locale, viewport=viewport, is_mobile=size == "390").new_page()
        page.goto(f"/d/{shop.campaign['id']}")
        expect(page.get_by_role("heading", level=1)).to_have_text(TITLE)
        expect(page.locator(".price-now")).to_have_text("¥39.90")
        expect(page.locator(".price-list")).to_contain_text("¥88")
        section = page.get_by_role("region", name=words["progress"])
        expect(section.get_by_role("progressbar", name=words["left"])).to_be_visible()
        expect(section).to_contain_text(words["ends"])
        expect(page.get_by_role("heading", name=words["stores"])).to_be_visible()
        expect(page.get_by_text("章江新区店")).to_be_visible()
        assert_fits(page)
        poster = page.get_by_role("img")
        poster.scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete && img.naturalWidth === 1080", arg=poster.element_handle())
        screenshot(page, f"deal-page-{locale}-{size}")


@pytest.mark.config(DEAL_PROGRESS_POLL=1)
def test_the_progress_bar_follows_the_sales_by_itself(client, new_context):
    shop = make_shop(client)
    page = new_context(locale="zh-CN", viewport=PHONE).new_page()
    page.goto(f"/d/{shop.campaign['id']}")
    bar = page.get_by_role("progressbar")
    expect(bar).to_have_accessible_name(WORDS["zh-CN"]["left"])
    client.order(shop.campaign["id"], 1)
    expect(page.locator("[data-progress-label]")).to_have_text(WORDS["zh-CN"]["fewer"])
    assert bar.evaluate("bar => bar.value") == pytest.approx(0.6)
    client.order(shop.campaign["id"], 2)
    expect(page.locator("[data-progress-label]")).to_have_text("已成团")
    expect(page.locator("[data-progress-sold]")).to_have_text("已售 5 份")
    assert bar.evaluate("bar => bar.value") == 1
    screenshot(page, "deal-page-tipped-390")


def test_the_card_shows_in_another_site_s_iframe_and_the_page_does_not(client, new_context, live_server):
    shop = make_shop(client)
    page = new_context(locale="zh-CN", viewport={"width": 480, "height": 640}).new_page()
    oembed = client.http.get("/oembed", query_string={
        "url": f"{live_server.url}/d/{shop.campaign['id']}"}).get_json()
    # A forum of another origin: the same server by another name, the page replaced by its post.
    page.goto(live_server.url.replace("127.0.0.1", "localhost") + "/healthz")
    page.set_content(f"""<!doctype html><body style="margin:16px;background:#eee">
        {oembed['html']}
        <iframe id="page" src="{live_server.url}/d/{shop.campaign['id']}" width="400" height="200"></iframe>
        </body>""")
    card = page.frame_locator("iframe[title]")
    expect(card.get_by_role("heading", level=1)).to_have_text(TITLE)
    expect(card.get_by_role("progressbar")).to_be_visible()
    expect(card.get_by_role("link", name="查看团购")).to_have_attribute(
        "href", f"{live_server.url}/d/{shop.campaign['id']}")
    page.wait_for_load_state("load")
    framed = page.frame_locator("#page")
    expect(framed.get_by_role("heading", level=1)).to_have_count(0)  # refused: X-Frame-Options DENY
    screenshot(page, "deal-embed-zh", full_page=False)


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_a_draft_is_a_not_found_page(client, new_context, locale):
    shop = Shop(client)
    draft = client.campaign(shop.merchant["id"], publish=False)
    page = new_context(locale=locale, viewport=PHONE).new_page()
    answer = page.goto(f"/d/{draft['id']}")
    assert answer.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text(WORDS[locale]["missing"])
    assert_fits(page)
