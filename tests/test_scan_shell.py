"""The scanner page's shell: the page in both languages, its manifest and its service
worker, which must list only files the app serves and never another host."""

from __future__ import annotations

import json
import re

import pytest


@pytest.mark.parametrize(("accept", "label", "lang"), [("zh-CN", "核销密钥", "zh-CN"), ("en", "Scanner key", "en")])
def test_the_page_speaks_the_language_asked(client, accept, label, lang):
    page = client.http.get("/scan", headers={"Accept-Language": accept})
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert f'<html lang="{lang}">' in text and f">{label}</label>" in text
    strings = json.loads(re.search(r'id="scan-strings">(.*?)</script>', text, re.S)[1])
    settings = json.loads(re.search(r'id="scan-settings">(.*?)</script>', text, re.S)[1])
    assert strings["reason"]["coupon_already_redeemed"] == ("已使用" if lang == "zh-CN" else "Already used")
    assert settings["language"] == lang[:2] and settings["api"] == "/api/v1"
    assert settings["wasm"].endswith(".wasm") and settings["wasm"].startswith("/static/vendor/zxing-wasm/")


def test_chinese_is_the_default_and_the_slash_redirects(client):
    assert 'lang="zh-CN"' in client.http.get("/scan").get_data(as_text=True)
    moved = client.http.get("/scan/")
    assert moved.status_code == 302 and moved.headers["Location"].endswith("/scan")


def test_the_manifest_makes_it_installable(client):
    answer = client.http.get("/scan/manifest.webmanifest")
    assert answer.mimetype == "application/manifest+json"
    manifest = json.loads(answer.get_data(as_text=True))
    assert manifest["start_url"] == manifest["scope"] == "/scan"
    assert manifest["display"] == "standalone"
    assert {icon["sizes"] for icon in manifest["icons"]} == {"192x192", "512x512"}
    for icon in manifest["icons"]:
        assert client.http.get(icon["src"]).status_code == 200


def test_the_service_worker_caches_what_the_page_needs_and_nothing_else(client):
    answer = client.http.get("/scan/sw.js")
    assert answer.mimetype == "text/javascript"
    assert answer.headers["Service-Worker-Allowed"] == "/scan"
    assert answer.headers["Cache-Control"] == "no-cache"
    text = answer.get_data(as_text=True)
    files = json.loads(re.search(r"var FILES = (\[.*?\]);", text)[1])
    page = client.http.get("/scan").get_data(as_text=True)
    for url in files:
        assert url.startswith("/") and not url.startswith("//"), url
        assert client.http.get(url).status_code == 200, url
    for src in re.findall(r'<script src="([^"]+)"', page):
        assert src in files, src
    assert any(url.endswith("zxing_reader.wasm") for url in files)
    assert "/api/" in text and "indexOf(\"/api/\")" in text  # the API is never answered from the cache
    version = re.search(r'var CACHE = "couponsvc-scan-(\w+)"', text)[1]
    assert version in client.http.get("/scan/sw.js").get_data(as_text=True)
