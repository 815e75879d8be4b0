"""`/` leads somewhere: the admin's sign-in, the scanner page, the API docs; in Chinese by
default, in English from the switch or Accept-Language."""

from __future__ import annotations

import pytest


def test_the_landing_page_links_the_sign_in_the_scanner_and_the_docs(app):
    answer = app.test_client().get("/")
    assert answer.status_code == 200 and answer.headers["Content-Language"] == "zh"
    text = answer.get_data(as_text=True)
    for link in ('href="/admin/sign-in"', 'href="/scan"', 'href="/api/v1/docs"'):
        assert link in text
    assert "管理后台登录" in text and '<html lang="zh-CN">' in text


def test_accept_language_and_the_switch_choose_english(app):
    http = app.test_client()
    assert "Admin sign-in" in http.get("/", headers={"Accept-Language": "en-GB,en"}).get_data(as_text=True)
    switched = http.get("/language/en?next=/admin/sign-in")
    assert switched.status_code == 302 and switched.location == "/admin/sign-in"
    cookie = switched.headers["Set-Cookie"]
    assert cookie.startswith("lang=en;") and "SameSite=Lax" in cookie
    assert "Admin sign-in" in http.get("/", headers={"Accept-Language": "zh"}).get_data(as_text=True)
    http.get("/language/zh")
    assert "管理后台登录" in http.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example",
                                    "javascript:alert(1)"])
def test_the_switch_goes_back_only_to_this_site(app, target):
    answer = app.test_client().get("/language/en", query_string={"next": target})
    assert answer.location == "/"


def test_an_unknown_language_is_ignored(app):
    answer = app.test_client().get("/language/fr")
    assert answer.status_code == 302 and "Set-Cookie" not in answer.headers


def test_the_api_keeps_english_unless_asked(app, client):
    client.http.get("/language/zh")
    answer = client.get("coupons/K7QM-3XPA-9RTX")
    assert answer.headers["Content-Language"] == "en"
