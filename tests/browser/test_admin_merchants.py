"""A manager's merchant page in chromium: a store added, a scanner key pinned to it created
and shown once, then revoked after the confirmation. In Chinese and in English; the page
with its keys looked at on a 1280 px screen and a 390 px phone."""

from __future__ import annotations

import pytest

from couponsvc import people
from tests.admin.conftest import make_person

from .conftest import DESKTOP, PHONE, assert_fits, screenshot, sign_in

WORDS = {
    "zh-CN": {"email": "邮箱", "password": "密码", "sign_in": "登录", "merchants": "商户",
              "add_store": "添加门店", "name": "门店名称", "address": "地址", "store_button": "添加门店",
              "create_key": "创建 API 密钥", "role": "角色", "store": "门店", "label": "备注",
              "key_button": "创建密钥", "once": "只显示这一次", "revoke": "吊销", "revoked": "已吊销"},
    "en-US": {"email": "Email", "password": "Password", "sign_in": "Sign in", "merchants": "Merchants",
              "add_store": "Add a store", "name": "Store name", "address": "Address", "store_button": "Add store",
              "create_key": "Create an API key", "role": "Role", "store": "Store", "label": "Label",
              "key_button": "Create key", "once": "shown this once", "revoke": "Revoke", "revoked": "revoked"},
}


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_a_store_and_a_key_shown_once_then_revoked(app, client, new_context, locale):
    words, short = WORDS[locale], locale[:2]
    merchant = client.merchant(name="老街牛肉面", city="赣州")
    client.store(merchant["id"], name="文清路店")
    manager = make_person(app, role=people.MANAGER, merchant_id=merchant["id"], name="李店长")
    page = new_context(locale=locale, viewport=DESKTOP).new_page()
    sign_in(page, words, manager)
    page.get_by_role("navigation").get_by_role("link", name=words["merchants"], exact=True).click()
    page.get_by_role("heading", name="老街牛肉面").wait_for()

    page.locator("summary", has_text=words["add_store"]).click()
    store_form = page.locator("form", has=page.get_by_role("button", name=words["store_button"], exact=True))
    store_form.get_by_label(words["name"], exact=True).fill("章贡店")
    store_form.get_by_label(words["address"], exact=True).fill("章贡区红旗大道 8 号")
    store_form.get_by_role("button", name=words["store_button"], exact=True).click()
    page.get_by_role("cell", name="章贡区红旗大道 8 号").wait_for()

    page.locator("summary", has_text=words["create_key"]).click()
    key_form = page.locator("form", has=page.get_by_role("button", name=words["key_button"], exact=True))
    key_form.get_by_label(words["store"], exact=True).select_option(label="章贡店")
    key_form.get_by_label(words["label"], exact=True).fill("章贡店前台")
    key_form.get_by_role("button", name=words["key_button"], exact=True).click()
    secret = page.get_by_test_id("new-key").inner_text().strip()
    assert secret.startswith("cpn_scanner_") and words["once"] in page.get_by_role("status").inner_text()
    whoami = client.ok(client.get("whoami", key=secret))
    assert whoami["store"]["name"] == "章贡店"
    screenshot(page, f"admin-merchant-new-key-{short}-1280")

    page.reload()  # the browser sends the form again: no second key, the first not shown again
    page.locator("p.flash-warning").wait_for()
    assert secret not in page.content() and secret[:16] in page.content()
    assert page.locator("tr.api-key", has_text="章贡店前台").count() == 1
    screenshot(page, f"admin-merchant-reloaded-{short}-1280")
    row = page.locator("tr.api-key", has_text="章贡店前台")
    row.locator("summary", has_text=words["revoke"]).click()
    row.get_by_role("button", name=words["revoke"]).click()
    page.locator("tr.api-key.revoked", has_text="章贡店前台").wait_for()
    assert client.get("whoami", key=secret).status_code == 401
    screenshot(page, f"admin-merchant-{short}-1280")

    phone = new_context(locale=locale, viewport=PHONE).new_page()
    sign_in(phone, words, manager)
    phone.goto(f"/admin/merchants/{merchant['id']}")
    phone.locator("tr.api-key.revoked").wait_for()
    assert_fits(phone)
    screenshot(phone, f"admin-merchant-{short}-390")
