"""The public deal page /d/{id}, its card /embed/d/{id}, its progress JSON and /oembed."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from sqlalchemy import text

from tests.factories import Shop, in_db, problem

from .conftest import open_png, qr_texts

PUBLIC = "https://tuan.example.cn"
pytestmark = pytest.mark.config(PUBLIC_URL=PUBLIC)


class Head(HTMLParser):
    """The meta and link tags of a page, and its text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.meta: dict[str, str] = {}
        self.links: list[dict[str, str]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = {name: value or "" for name, value in attrs}
        if tag == "meta" and ("property" in attrs or "name" in attrs):
            self.meta[attrs.get("property") or attrs["name"]] = attrs.get("content", "")
        elif tag in ("link", "a"):
            self.links.append({"tag": tag, **attrs})

    def handle_data(self, data):
        if data.strip():
            self.text.append(data.strip())

    @property
    def words(self) -> str:
        return " ".join(self.text)


def page(client, path: str, **headers):
    return client.get(path, key=None, headers=headers)


def local_path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


@pytest.fixture
def shop(client):
    return Shop(client, title="双人牛肉面套餐", price=3990, list_price=8800, min_group_size=5,
                description="招牌牛肉面两碗\n卤蛋两个")


def test_the_deal_page_speaks_chinese_with_the_deal_s_facts(client, shop):
    client.order(shop.campaign["id"], 2)
    answer = page(client, f"/d/{shop.campaign['id']}")
    assert answer.status_code == 200 and answer.mimetype == "text/html"
    assert answer.headers["Content-Language"] == "zh"
    html = answer.get_data(as_text=True)
    head = Head(html)
    assert '<html lang="zh-CN">' in html
    for words in ("双人牛肉面套餐", "¥39.90", "¥88", "还差 3 人成团", "已售 2 份，满 5 份成团", "截止 ",
                  "适用门店", shop.store["name"], "文清路 1 号", "招牌牛肉面两碗", "卤蛋两个"):
        assert words in head.words, words
    assert re.search(r'<s class="price-list">.*¥88</s>', html)
    assert re.search(r'<progress max="1" value="0\.4000"', html)
    assert "去店铺购买" not in head.words  # no storefront configured


def test_the_page_in_english_on_request(client, shop):
    by_header = page(client, f"/d/{shop.campaign['id']}", **{"Accept-Language": "en-US,en;q=0.8"})
    assert by_header.headers["Content-Language"] == "en"
    words = Head(by_header.get_data(as_text=True)).words
    assert "5 more buyers to tip" in words and "Sales end" in words and "Where to use it" in words
    client.http.set_cookie("lang", "en")
    by_cookie = page(client, f"/d/{shop.campaign['id']}", **{"Accept-Language": "zh-CN"})
    assert by_cookie.headers["Content-Language"] == "en"
    assert Head(by_cookie.get_data(as_text=True)).meta["og:locale"] == "en_US"


def test_opengraph_tags_make_a_card_with_the_poster(client, shop):
    head = Head(page(client, f"/d/{shop.campaign['id']}").get_data(as_text=True))
    meta = head.meta
    assert meta["og:title"] == "双人牛肉面套餐"
    assert meta["og:url"] == f"{PUBLIC}/d/{shop.campaign['id']}"
    assert meta["og:description"].startswith("¥39.90（原价 ¥88） · 还差 5 人成团 · 截止 ")
    assert meta["og:type"] == "website" and meta["og:site_name"] == shop.merchant["name"]
    image = meta["og:image"]  # absolute, from the public URL, with its token and version
    assert re.fullmatch(re.escape(shop.campaign["poster_url"]) + r"&v=[0-9a-f]{12}", image)
    assert (meta["og:image:width"], meta["og:image:height"]) == ("1080", "1920")
    poster = client.get(local_path(image), key=None)
    assert poster.status_code == 200
    assert qr_texts(open_png(poster.data)) == [f"{PUBLIC}/d/{shop.campaign['id']}"]
    english = Head(page(client, f"/d/{shop.campaign['id']}", **{"Accept-Language": "en"})
                   .get_data(as_text=True)).meta["og:image"]
    assert parse_qs(urlsplit(english).query)["lang"] == ["en"]
    client.order(shop.campaign["id"], 1)  # the poster changes: so does its URL
    later = Head(page(client, f"/d/{shop.campaign['id']}").get_data(as_text=True)).meta["og:image"]
    assert later != image and later.startswith(shop.campaign["poster_url"] + "&v=")


def test_the_page_names_its_oembed_and_the_answer_is_a_rich_iframe_card(client, shop):
    head = Head(page(client, f"/d/{shop.campaign['id']}").get_data(as_text=True))
    [discovery] = [link for link in head.links if link.get("type") == "application/json+oembed"]
    assert discovery["rel"] == "alternate"
    assert discovery["href"] == f"{PUBLIC}/oembed?" + urlencode(
        {"url": f"{PUBLIC}/d/{shop.campaign['id']}", "format": "json"})
    answer = client.get(local_path(discovery["href"]), key=None)
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    body = answer.get_json()
    assert body["version"] == "1.0" and body["type"] == "rich"
    assert body["title"] == "双人牛肉面套餐" and body["author_name"] == shop.merchant["name"]
    assert body["provider_url"] == PUBLIC and body["provider_name"] == "tuan.example.cn"
    assert (body["width"], body["height"]) == (400, 236)
    assert re.fullmatch(r'<iframe src="https://tuan\.example\.cn/embed/d/cmp_\w+" width="400" '
                        r'height="236" title="双人牛肉面套餐" [^<>]*></iframe>', body["html"])
    assert body["thumbnail_url"].startswith(shop.campaign["poster_url"] + "&v=")
    assert answer.headers["Access-Control-Allow-Origin"] == "*"


def test_oembed_respects_maxwidth_and_takes_the_card_url_too(client, shop):
    card = f"{PUBLIC}/embed/d/{shop.campaign['id']}"
    body = client.ok(client.get("/oembed", key=None,
                                query_string={"url": card, "maxwidth": 320, "maxheight": 600}))
    assert (body["width"], body["height"]) == (320, 236)
    assert 'width="320"' in body["html"]
    assert "thumbnail_url" not in body  # the poster is larger than asked


def test_oembed_refusals(client, shop):
    campaign_id = shop.campaign["id"]
    problem(client.get("/oembed", key=None), 422, "validation_error")
    for url in (f"https://evil.example/d/{campaign_id}", f"{PUBLIC}/admin/{campaign_id}",
                f"{PUBLIC}/d/", f"{PUBLIC}/d/nope", f"{PUBLIC}/d/{campaign_id}/x", f"{PUBLIC}/d/%00"):
        problem(client.get("/oembed", key=None, query_string={"url": url}), 404, "not_found")
    problem(client.get("/oembed", key=None, query_string={"url": f"{PUBLIC}/d/{campaign_id}",
                                                           "maxwidth": "wide"}), 422, "validation_error")
    problem(client.get("/oembed", key=None, query_string={"url": f"{PUBLIC}/d/{campaign_id}",
                                                           "maxwidth": "²"}), 422, "validation_error")
    problem(client.get("/oembed", key=None, query_string={"url": f"{PUBLIC}/d/{campaign_id}",
                                                           "maxheight": "9" * 5000}), 422, "validation_error")
    xml = client.get("/oembed", key=None, query_string={"url": f"{PUBLIC}/d/{campaign_id}",
                                                         "format": "xml"})
    assert xml.status_code == 501


def test_the_embed_card_may_be_framed_and_the_page_may_not(client, shop):
    card = page(client, f"/embed/d/{shop.campaign['id']}")
    assert card.status_code == 200
    assert "frame-ancestors *" in card.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in card.headers
    words = Head(card.get_data(as_text=True)).words
    assert "双人牛肉面套餐" in words and "¥39.90" in words and "还差 5 人成团" in words
    deal = page(client, f"/d/{shop.campaign['id']}")
    assert "frame-ancestors 'none'" in deal.headers["Content-Security-Policy"]
    assert deal.headers["X-Frame-Options"] == "DENY"
    for answer in (card, deal):  # only the app's own files and links
        assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
        urls = re.findall(r'(?:src|href)="([^"]+)"', answer.get_data(as_text=True))
        assert urls and all(url.startswith(("/", PUBLIC + "/")) and not url.startswith("//")
                            for url in urls), urls


def test_the_progress_json_follows_the_sales(client, shop):
    path = f"/d/{shop.campaign['id']}/progress.json"
    first = client.ok(client.get(path, key=None))
    assert first == {"status": "active", "sold": 0, "min_group_size": 5, "remaining": 5,
                     "tipped": False, "progress": 0.0, "label": "还差 5 人成团",
                     "sold_label": "已售 0 份，满 5 份成团", "badge": None, "over": False}
    client.order(shop.campaign["id"], 5)
    tipped = client.ok(client.get(path, key=None, headers={"Accept-Language": "en"}))
    assert tipped["tipped"] and tipped["remaining"] == 0 and tipped["progress"] == 1.0
    assert tipped["label"] == "Tipped: the deal is on" and tipped["sold_label"] == "5 sold"


def test_a_draft_a_cancelled_deal_or_an_unknown_id_is_a_404_page(client, shop):
    draft = client.campaign(shop.merchant["id"], publish=False)
    cancelled = client.campaign(shop.merchant["id"])
    client.ok(client.post(f"campaigns/{cancelled['id']}/cancel", {}))
    for campaign_id in (draft["id"], cancelled["id"], "cmp_nope", "%00", "x" * 300):
        for path in (f"/d/{campaign_id}", f"/embed/d/{campaign_id}"):
            answer = page(client, path)
            assert answer.status_code == 404 and answer.mimetype == "text/html", path
            assert "找不到这个团购" in answer.get_data(as_text=True)
        problem(client.get(f"/d/{campaign_id}/progress.json", key=None), 404, "not_found")
    english = page(client, f"/d/{draft['id']}", **{"Accept-Language": "en"})
    assert english.status_code == 404 and "This deal is not here" in english.get_data(as_text=True)


def test_an_ended_or_failed_deal_still_shows_what_it_was(client, app, shop):
    failed = client.campaign(shop.merchant["id"], min_group_size=10)
    in_db(app, text("UPDATE campaigns SET status = 'ended' WHERE id = :id").bindparams(id=shop.campaign["id"]),
          text("UPDATE campaigns SET status = 'failed' WHERE id = :id").bindparams(id=failed["id"]))
    ended = Head(page(client, f"/d/{shop.campaign['id']}").get_data(as_text=True)).words
    assert "已结束" in ended
    assert "未成团" in Head(page(client, f"/d/{failed['id']}").get_data(as_text=True)).words
    progress = client.ok(client.get(f"/d/{failed['id']}/progress.json", key=None))
    assert progress["over"] and progress["badge"] == "未成团"


def test_no_internal_id_but_the_campaign_s_leaks(client, shop):
    campaign_id = shop.campaign["id"]
    answers = [page(client, f"/d/{campaign_id}").get_data(as_text=True),
               page(client, f"/embed/d/{campaign_id}").get_data(as_text=True),
               client.get(f"/d/{campaign_id}/progress.json", key=None).get_data(as_text=True),
               client.get("/oembed", key=None, query_string={"url": f"{PUBLIC}/d/{campaign_id}"})
               .get_data(as_text=True)]
    for body in answers:
        assert campaign_id in body or "progress" in body
        for secret in (shop.merchant["id"], shop.store["id"], shop.other_store["id"]):
            assert secret not in body
        assert not re.search(r"\b(mer|sto|key|ord)_[0-9A-Z]{10,}", body)


@pytest.mark.config(DEAL_URL_TEMPLATE="https://shop.example.cn/deals/{campaign_id}")
def test_with_a_storefront_the_page_has_a_button_to_it(client, shop):
    html = page(client, f"/d/{shop.campaign['id']}").get_data(as_text=True)
    head = Head(html)
    [button] = [link for link in head.links if link.get("class") == "buy"]
    assert button["href"] == f"https://shop.example.cn/deals/{shop.campaign['id']}"
    assert "去店铺购买" in head.words
    card = Head(page(client, f"/embed/d/{shop.campaign['id']}").get_data(as_text=True))
    assert {link["href"] for link in card.links if link["tag"] == "a"} == {button["href"]}
    assert head.meta["og:url"] == f"{PUBLIC}/d/{shop.campaign['id']}"  # the page stays the card's URL


def test_a_deal_that_lists_no_stores_shows_every_store_of_the_merchant(client, shop):
    third = client.store(shop.merchant["id"], name="章江新区店", address="长征大道 9 号")
    words = Head(page(client, f"/d/{shop.campaign['id']}").get_data(as_text=True)).words
    assert "章江新区店" in words and "长征大道 9 号" in words
    only = client.campaign(shop.merchant["id"], store_ids=[third["id"]])
    words = Head(page(client, f"/d/{only['id']}").get_data(as_text=True)).words
    assert "章江新区店" in words and shop.store["name"] not in words
