"""GET /api/v1/campaigns/{id}/poster.png: who may draw it, what it says, caching."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import text

from couponsvc.deal_pages import POSTERS
from tests.factories import Shop, in_db, now, problem

from .conftest import open_png, qr_texts

PUBLIC = "http://couponsvc.test"
DEJAVU = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def poster_path(campaign_id: str) -> str:
    return f"/api/v1/campaigns/{campaign_id}/poster.png"


def token_of(campaign: dict) -> str:
    return parse_qs(urlsplit(campaign["poster_url"]).query)["token"][0]


def fetch(client, campaign: dict, extra: str = "", **kw):
    """The poster through its capability URL, as an <img> or a chat app loads it."""
    url = urlsplit(campaign["poster_url"])
    return client.get(f"{url.path}?{url.query}{extra}", key=None, **kw)


@pytest.mark.config(PUBLIC_URL=PUBLIC)
def test_the_campaign_answers_its_poster_url(client):
    shop = Shop(client)
    url = shop.campaign["poster_url"]
    assert url.startswith(f"{PUBLIC}{poster_path(shop.campaign['id'])}?token=")
    listed = client.ok(client.get("campaigns", key=shop.manager))["data"][0]
    assert listed["poster_url"] == url


@pytest.mark.config(PUBLIC_URL=PUBLIC)
def test_the_capability_url_draws_the_poster_and_its_qr_is_the_deal_page(client):
    shop = Shop(client, min_group_size=5)
    answer = fetch(client, shop.campaign)
    assert answer.status_code == 200 and answer.mimetype == "image/png"
    image = open_png(answer.data)
    assert image.size == (1080, 1920)
    assert qr_texts(image) == [f"{PUBLIC}/d/{shop.campaign['id']}"]
    assert answer.headers["Cache-Control"] == "public, max-age=300"
    assert answer.headers["ETag"]


@pytest.mark.config(PUBLIC_URL=PUBLIC, DEAL_URL_TEMPLATE="https://shop.example.cn/deals/{campaign_id}?m={merchant_id}")
def test_with_a_deployment_template_the_qr_is_the_storefront_link(client):
    shop = Shop(client)
    image = open_png(fetch(client, shop.campaign).data)
    assert qr_texts(image) == [
        f"https://shop.example.cn/deals/{shop.campaign['id']}?m={shop.merchant['id']}"]


def test_a_manager_key_draws_its_own_campaigns_even_a_draft(client):
    shop = Shop(client)
    draft = client.campaign(shop.merchant["id"], publish=False)
    for campaign in (shop.campaign, draft):
        answer = client.get(poster_path(campaign["id"]), key=shop.manager)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        assert answer.headers["Cache-Control"] == "private, max-age=60"
        assert open_png(answer.data).size == (1080, 1920)
    assert client.get(poster_path(shop.campaign["id"])).status_code == 200  # the platform key


def test_without_a_valid_token_or_key_the_answer_is_404(client):
    shop, other = Shop(client), Shop(client)
    campaign_id = shop.campaign["id"]
    refused = [
        client.get(poster_path(campaign_id), key=None),  # nothing
        client.get(f"{poster_path(campaign_id)}?token=AAAAAAAAAAAAAAAAAAAAAA", key=None),  # wrong
        client.get(f"{poster_path(campaign_id)}?token={token_of(other.campaign)}", key=None),  # another's
        client.get(f"{poster_path('cmp_nope')}?token={token_of(shop.campaign)}", key=None),
        client.get(poster_path(campaign_id), key=other.manager),  # a manager of another merchant
        client.get(poster_path(campaign_id), key=shop.scanner),  # a scanner of the merchant
        client.get(poster_path("cmp_nope"), key=shop.manager),
    ]
    for answer in refused:
        problem(answer, 404, "not_found")
    problem(client.get(poster_path(campaign_id), key="cpn_manager_forged"), 401, "unauthenticated")
    problem(client.get(f"{poster_path(campaign_id)}?lang=fr", key=shop.manager), 422, "validation_error")


def test_a_token_of_a_coupon_qr_does_not_open_a_poster(client):
    shop = Shop(client)
    coupon = shop.coupon()
    coupon_token = parse_qs(urlsplit(coupon["qr_url"]).query)["token"][0]
    # the same HMAC construction, another key: a coupon's token for the campaign id fails
    problem(client.get(f"{poster_path(shop.campaign['id'])}?token={coupon_token}", key=None), 404,
            "not_found")


def test_etag_answers_304_and_changes_when_the_poster_would(client):
    shop = Shop(client, min_group_size=3)
    first = fetch(client, shop.campaign)
    etag = first.headers["ETag"]
    again = fetch(client, shop.campaign, headers={"If-None-Match": etag})
    assert again.status_code == 304 and not again.data and again.headers["ETag"] == etag
    shop.coupon()  # one buyer more: "还差 2 人成团"
    moved = fetch(client, shop.campaign, headers={"If-None-Match": etag})
    assert moved.status_code == 200 and moved.headers["ETag"] != etag
    shop.coupons(2)  # tipped
    tipped = fetch(client, shop.campaign).headers["ETag"]
    shop.coupon()  # sold after tipping: the poster says the same ("已成团")
    assert fetch(client, shop.campaign).headers["ETag"] == tipped
    english = fetch(client, shop.campaign, "&lang=en")
    assert english.status_code == 200 and english.headers["ETag"] != tipped


def test_a_drawn_poster_is_kept_in_memory_and_on_disk(client, app, instance_path):
    shop = Shop(client)
    answer = fetch(client, shop.campaign)
    key = answer.headers["ETag"].strip('"')
    cache = app.extensions[POSTERS]
    assert cache.get(key) == answer.data
    cache.clear_memory()
    assert (cache.directory / f"{key}.png").read_bytes() == answer.data
    assert cache.get(key) == answer.data  # read back from disk
    assert fetch(client, shop.campaign).data == answer.data


@pytest.mark.config(POSTER_FONT=DEJAVU)
def test_without_a_chinese_font_the_poster_is_refused_not_drawn_in_boxes(client):
    shop = Shop(client)
    body = problem(fetch(client, shop.campaign), 503, "poster_font_missing")
    guidance = client.get(urlsplit(body["type"]).path, key=None).get_data(as_text=True)
    assert "COUPONSVC_POSTER_FONT" in guidance and "fonts-noto-cjk" in guidance


def test_the_poster_says_the_state_of_an_ended_deal(client, app):
    shop = Shop(client, min_group_size=1)
    shop.coupon()
    before = fetch(client, shop.campaign).headers["ETag"]
    in_db(app, text("UPDATE campaigns SET sales_end = :t WHERE id = :id").bindparams(
        t=now() - timedelta(minutes=1), id=shop.campaign["id"]))
    assert fetch(client, shop.campaign).headers["ETag"] != before  # "已结束" beside the progress
