"""Signing in to the admin in chromium, by the form's labels, in Chinese and in English:
a wrong password refused, the right one let in, an account locked after repeated
failures; the sign-in and users pages looked at on a 1280 px screen and a 390 px phone."""

from __future__ import annotations

import re

import pytest

from couponsvc import people
from tests.admin.conftest import make_person

from .conftest import DESKTOP, PHONE, assert_fits, screenshot, submit_sign_in

WORDS = {
    "zh-CN": {"email": "邮箱", "password": "密码", "sign_in": "登录", "sign_out": "退出登录",
              "wrong": "邮箱或密码不正确", "locked": "已被锁定", "users": "用户"},
    "en-US": {"email": "Email", "password": "Password", "sign_in": "Sign in",
              "sign_out": "Sign out", "wrong": "The e-mail or password is not right",
              "locked": "it is locked", "users": "Users"},
}


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_a_wrong_password_is_refused_and_the_right_one_lets_in(app, client, live_server,
                                                              new_context, locale):
    words = WORDS[locale]
    merchant = client.merchant(name="老街牛肉面")
    operator = make_person(app, role=people.OPERATOR, name="运营小王")
    make_person(app, role=people.MANAGER, merchant_id=merchant["id"], name="李店长")
    short = locale[:2]
    for size, viewport in (("1280", DESKTOP), ("390", PHONE)):
        page = new_context(locale=locale, viewport=viewport).new_page()
        submit_sign_in(page, words, operator.email, "not the password")
        alert = page.get_by_role("alert")
        assert words["wrong"] in alert.inner_text()
        assert page.get_by_label(words["email"], exact=True).input_value() == operator.email
        assert_fits(page)
        screenshot(page, f"admin-sign-in-refused-{short}-{size}")
        page.get_by_label(words["password"], exact=True).fill(operator.password)
        page.get_by_role("button", name=words["sign_in"], exact=True).click()
        sign_out = page.get_by_role("button", name=words["sign_out"])
        sign_out.wait_for()
        page.get_by_role("navigation").get_by_role("link", name=words["users"], exact=True).click()
        page.get_by_role("heading", name=words["users"]).wait_for()
        assert page.get_by_text("老街牛肉面").count() >= 1
        assert_fits(page)
        screenshot(page, f"admin-users-{short}-{size}")
        sign_out.click()
        page.get_by_label(words["email"], exact=True).wait_for()
        if size == "1280":
            screenshot(page, f"admin-sign-in-{short}-{size}")
        page.goto("/")
        assert_fits(page)
        screenshot(page, f"landing-{short}-{size}")


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_an_account_is_locked_after_repeated_failures(app, page, locale):
    words = WORDS[locale]
    manager = make_person(app, role=people.OPERATOR)
    for _ in range(app.config["ADMIN_MAX_FAILURES"]):
        submit_sign_in(page, words, manager.email, "a wrong guess")
    assert words["locked"] in page.get_by_role("alert").inner_text()
    submit_sign_in(page, words, manager.email, manager.password)  # the right one, but locked
    assert words["locked"] in page.get_by_role("alert").inner_text()
    assert re.search(r"/admin/sign-in", page.url)
    screenshot(page, f"admin-sign-in-locked-{locale[:2]}-1280")


def test_the_people_pages_fit_a_phone_and_a_screen(app, client, live_server, new_context):
    """Add a user with a field error fixed, see them, the audit log and the sessions page."""
    words = WORDS["zh-CN"]
    merchant = client.merchant(name="老街牛肉面")
    operator = make_person(app, role=people.OPERATOR, name="运营小王")
    for size, viewport in (("1280", DESKTOP), ("390", PHONE)):
        page = new_context(locale="zh-CN", viewport=viewport).new_page()
        submit_sign_in(page, words, operator.email, operator.password)
        page.get_by_role("button", name=words["sign_out"]).wait_for()
        page.goto("/admin/users/new")
        page.get_by_label("邮箱", exact=True).fill("not-an-email")
        page.get_by_label("商户", exact=True).select_option(label="老街牛肉面")
        page.get_by_role("button", name="添加", exact=True).click()
        assert page.locator("#f-email-error").inner_text() == "请输入有效的邮箱地址。"
        assert_fits(page)
        screenshot(page, f"admin-user-new-error-zh-{size}")
        page.get_by_label("邮箱", exact=True).fill(f"li{size}@example.cn")
        page.get_by_role("button", name="添加", exact=True).click()
        assert len(page.locator(".secret").inner_text()) == 16
        screenshot(page, f"admin-user-created-zh-{size}")
        page.goto("/admin/audit")
        page.get_by_role("cell", name="person.create").first.wait_for()
        assert_fits(page)
        screenshot(page, f"admin-audit-zh-{size}")
        page.goto("/admin/sessions")
        assert_fits(page)
        screenshot(page, f"admin-sessions-zh-{size}")
    assert merchant
