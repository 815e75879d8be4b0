"""Every problem `type` resolves: a page per code of the one list, under the public URL."""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

import pytest
from babel.messages.pofile import read_po

from couponsvc.domain_error import CODES, GUIDANCE
from couponsvc.i18n import TRANSLATIONS
from couponsvc.public_url import base_url
from tests.factories import Shop, problem


@pytest.fixture
def problems_answered(app) -> list[dict]:
    """The body of every problem+json answer the app gives during the test."""
    bodies: list[dict] = []

    @app.after_request
    def _record(response):
        if response.mimetype == "application/problem+json":
            bodies.append(response.get_json())
        return response

    return bodies


def test_every_code_has_a_meaning_and_advice():
    assert set(GUIDANCE) == set(CODES)
    assert all(meaning and advice for meaning, advice in GUIDANCE.values())


def test_every_code_has_a_page_with_its_status_and_advice(client):
    for code, (status, _title) in CODES.items():
        response = client.get(f"/problems/{code}", key=None)
        assert response.status_code == 200, code
        assert response.mimetype == "text/html"
        page = response.get_data(as_text=True)
        assert f'data-status="{status}"' in page, code
        text = html.unescape(re.sub(r"<[^>]+>", "", page))
        assert GUIDANCE[code][1].replace("`", "") in text, code


def test_a_page_answers_json_when_asked(client, app):
    response = client.get("/problems/coupon_voided", key=None, headers={"Accept": "application/json"})
    entry = client.ok(response)
    with app.app_context():
        assert entry["type"] == f"{base_url()}/problems/coupon_voided"
    assert entry["status"] == 422 and entry["advice"] == GUIDANCE["coupon_voided"][1]


def test_the_index_lists_every_code(client):
    page = client.get("/problems/", key=None).get_data(as_text=True)
    assert all(f"/problems/{code}\"" in page for code in CODES)
    listed = client.ok(client.get("/problems/", key=None, headers={"Accept": "application/json"}))
    assert [entry["code"] for entry in listed["data"]] == list(CODES)


def test_an_unknown_code_is_a_404_problem(client):
    problem(client.get("/problems/no_such_code", key=None), 404, "not_found")


def test_every_type_in_real_answers_resolves_under_the_public_url(client, app, problems_answered):
    shop = Shop(client)
    code = shop.coupon()["code"]
    client.ok(shop.redeem(code), 201)
    problem(shop.redeem(code), 409, "coupon_already_redeemed")
    problem(shop.redeem(code[:-1] + ("A" if code[-1] != "A" else "B")), 400, "invalid_code")
    problem(client.get("coupons/AAAA", key=None), 401, "unauthenticated")
    problem(client.get("merchants", key=shop.scanner), 403, "forbidden")
    problem(client.get("campaigns/cmp_nope"), 404, "not_found")
    problem(client.post("campaigns", {"title": 1}), 422, "validation_error")
    problem(client.post("campaigns", data="{", headers={"Content-Type": "application/json"}), 400,
            "malformed_json")
    problem(client.delete("campaigns"), 405, "method_not_allowed")
    problem(client.post(f"campaigns/{shop.campaign['id']}/publish"), 409, "invalid_state")
    assert {body["code"] for body in problems_answered} == {
        "coupon_already_redeemed", "invalid_code", "unauthenticated", "forbidden", "not_found",
        "validation_error", "malformed_json", "method_not_allowed", "invalid_state"}

    with app.app_context():
        public = base_url()
    for body in list(problems_answered):
        assert body["type"] == f"{public}/problems/{body['code']}", body
        page = client.get(urlsplit(body["type"]).path, key=None)
        assert page.status_code == 200, body["type"]
        assert f'data-status="{body["status"]}"' in page.get_data(as_text=True)


def test_the_pages_speak_chinese_when_asked(client):
    """As every API answer: English unless `Accept-Language` asks for Chinese."""
    chinese = {"Accept-Language": "zh-CN,zh;q=0.9"}
    english = client.get("/problems/coupon_voided", key=None)
    page = client.get("/problems/coupon_voided", key=None, headers=chinese)
    assert english.headers["Content-Language"] == "en" and page.headers["Content-Language"] == "zh"
    text = html.unescape(re.sub(r"<[^>]+>", "", page.get_data(as_text=True)))
    assert "不要接受这张券；顾客的订单已退款或正在退款。" in text and "怎么办" in text
    assert GUIDANCE["coupon_voided"][1] not in text and '<html lang="zh-CN">' in page.get_data(as_text=True)
    assert GUIDANCE["coupon_voided"][1] in html.unescape(english.get_data(as_text=True))
    entry = client.ok(client.get("/problems/insufficient_uses", key=None,
                                 headers={**chinese, "Accept": "application/json"}))
    assert entry["advice"] == "最多核销 `uses_left` 次。" and entry["code"] == "insufficient_uses"
    index = client.get("/problems/", key=None, headers=chinese).get_data(as_text=True)
    assert "问题代码" in index


def test_every_code_s_words_are_in_the_catalogue():
    """Each meaning and advice has its Chinese (tests/test_i18n.py checks that every entry
    of the catalogue is translated)."""
    with open(TRANSLATIONS / "zh/LC_MESSAGES/messages.po", "rb") as catalogue:
        ids = {m.id for m in read_po(catalogue) if m.id}
    assert {text for pair in GUIDANCE.values() for text in pair} <= ids
