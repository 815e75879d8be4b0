"""The integration pages with the promotion adapters: their forms drawn from their schemas,
a Weibo link off the app's safe domain refused by its field (Chinese and English), and a
forum integration added with its key kept write-only."""

from __future__ import annotations

import re

import pytest

from couponsvc.extensions import db
from couponsvc.models import Integration
from tests.factories import Shop

WEIBO = {"adapter": "weibo", "config.access_token": "2.00weibo-SECRET", "config.safe_domain": "shop.example.cn",
         "config.link_template": "https://other.example.cn/deals/{campaign_id}", "events": ["campaign.published"]}


def text(answer) -> str:
    return re.sub(r"\s+", " ", answer.get_data(as_text=True))


def field_error(html: str, name: str) -> str:
    found = re.search(rf'<p class="error" id="f-{re.escape(name)}-error">(.*?)</p>', html)
    return found.group(1).strip() if found else ""


@pytest.fixture
def shop(client):
    return Shop(client)


@pytest.fixture
def manager(shop, manager_of, signed_in, client):
    return signed_in(client, manager_of(shop.merchant))


def test_the_promotion_adapters_forms(manager):
    chooser = text(manager.get("/admin/integrations/new"))
    assert all(f"adapter={name}" in chooser for name in ("discourse", "weibo", "feishu"))
    assert "在 Discourse 论坛为每个团购开一个主题帖" in chooser
    weibo = text(manager.get("/admin/integrations/new", query_string={"adapter": "weibo"}))
    assert 'name="config.access_token" type="password"' in weibo
    assert re.search(r'<label for="f-config.safe_domain">安全域名', weibo)
    assert "应用绑定的安全域名；团购链接必须在这个域名下" in weibo
    assert re.search(r'name="config.link_template" [^>]*required', weibo)
    feishu = text(manager.get("/admin/integrations/new", query_string={"adapter": "feishu"}))
    assert 'name="config.webhook_url" type="password"' in feishu and 'name="config.secret" type="password"' in feishu
    discourse = text(manager.get("/admin/integrations/new", query_string={"adapter": "discourse"}))
    assert 'name="config.category_id" type="number"' in discourse and "论坛的 API 密钥" in discourse
    wecom = text(manager.get("/admin/integrations/new", query_string={"adapter": "wecom"}))
    assert re.search(r'<select id="f-config.poster" name="config.poster".*?<option value="image" selected>', wecom)


def test_a_weibo_link_off_the_safe_domain_is_refused_by_its_field(app, shop, manager):
    refused = manager.post("/admin/integrations/new", {**WEIBO, "merchant_id": shop.merchant["id"]})
    assert refused.status_code == 422
    html = text(refused)
    assert field_error(html, "config.link_template") == "链接的主机必须是安全域名或它的子域名：微博拒绝其他域名的链接。"
    assert "2.00weibo-SECRET" not in html
    manager.http.get("/language/en")
    english = text(manager.post("/admin/integrations/new", {
        **WEIBO, "merchant_id": shop.merchant["id"], "config.safe_domain": "not a domain"}))
    assert field_error(english, "config.safe_domain") == "A host name such as shop.example.cn."
    with app.app_context():
        assert db.session.query(Integration).count() == 0
        db.session.remove()


@pytest.mark.config(ALLOW_PRIVATE_WEBHOOK_TARGETS=True)
def test_a_forum_integration_is_added_its_key_hidden(app, shop, manager):
    added = manager.post("/admin/integrations/new", {
        "adapter": "discourse", "merchant_id": shop.merchant["id"], "config.base_url": "http://127.0.0.1:9",
        "config.api_key": "discourse-SECRET-key", "config.category_id": "7",
        "events": ["campaign.published", "campaign.tipped"]})
    assert added.status_code == 201, text(added)
    with app.app_context():
        [integration] = db.session.query(Integration).all()
        assert integration.config["category_id"] == 7 and "api_key" not in integration.config
        integration_id = integration.id
        db.session.remove()
    page = text(manager.get(f"/admin/integrations/{integration_id}"))
    edit = text(manager.get(f"/admin/integrations/{integration_id}/edit"))
    assert "discourse-SECRET-key" not in page + edit and "分类 ID" in page
    assert 'name="config.api_key" type="password" value=""' in edit
