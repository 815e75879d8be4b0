"""Looking up a coupon in chromium, as a manager at the counter would: a code typed with a
typo is told at once, then typed right; its page shows what happened to it; it is voided.
In Chinese and in English; the coupon page looked at on a 1280 px screen and a 390 px phone."""

from __future__ import annotations

import pytest

from couponsvc import codes, people
from tests.admin.conftest import make_person
from tests.factories import Shop

from .conftest import DESKTOP, PHONE, assert_fits, screenshot, sign_in

WORDS = {
    "zh-CN": {"email": "邮箱", "password": "密码", "sign_in": "登录", "coupons": "券码", "code": "券码",
              "look_up": "查询", "typo": "券码无效（输错了？）", "void": "作废此券", "reason": "原因",
              "yes": "确定作废", "voided": "已作废", "history": "历史记录", "refused": "被拒绝的尝试"},
    "en-US": {"email": "Email", "password": "Password", "sign_in": "Sign in", "coupons": "Coupons",
              "code": "Coupon code", "look_up": "Look up", "typo": "Invalid code (typo?)",
              "void": "Void this coupon", "reason": "Reason", "yes": "Yes, void it", "voided": "voided",
              "history": "History", "refused": "Refused attempts"},
}


def with_a_typo(code: str) -> str:
    """The code as a customer might read it out, one symbol wrong."""
    wrong = codes.ALPHABET[(codes.ALPHABET.index(code[5]) + 3) % codes.BASE]
    typed = code[:5] + wrong + code[6:]
    return f"{typed[:4]}-{typed[4:8]}-{typed[8:]}".lower()


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_look_up_a_typed_code_then_void_it(app, client, new_context, locale):
    words, short = WORDS[locale], locale[:2]
    shop = Shop(client)
    code = shop.coupon()["code"]
    redeemed = client.ok(shop.redeem(code, device_id="till-1"), 201)
    assert shop.redeem(code, device_id="phone-2").status_code == 409  # refused: used already
    client.ok(client.post(f"redemptions/{redeemed['id']}/reverse", {"reason": "扫错了顾客"}, key=shop.scanner))
    manager = make_person(app, role=people.MANAGER, merchant_id=shop.merchant["id"], name="李店长")
    page = new_context(locale=locale, viewport=DESKTOP).new_page()
    sign_in(page, words, manager)
    page.get_by_role("navigation").get_by_role("link", name=words["coupons"], exact=True).click()

    field = page.get_by_label(words["code"], exact=True)
    field.fill(with_a_typo(code))
    page.get_by_role("button", name=words["look_up"], exact=True).click()
    assert words["typo"] in page.locator(".has-error .error").inner_text()
    assert page.get_by_label(words["code"], exact=True).get_attribute("aria-invalid") == "true"
    screenshot(page, f"admin-coupon-typo-{short}-1280")

    page.get_by_label(words["code"], exact=True).fill(f" {code[:4].lower()} {code[4:8]} {code[8:].lower()} ")
    page.get_by_role("button", name=words["look_up"], exact=True).click()
    page.get_by_role("heading", name=codes.display(code)).wait_for()
    assert page.get_by_role("heading", name=words["history"]).is_visible()
    assert page.locator("tr.step").count() == 3  # issued, redeemed, reversed
    assert page.locator("tr.attempt").count() == 1 and "phone-2" in page.locator("tr.attempt").inner_text()
    assert "till-1" in page.locator("tr.step-redeemed").inner_text()

    page.get_by_text(words["void"], exact=True).click()
    page.get_by_label(words["reason"], exact=True).fill("顾客已退款")
    page.get_by_role("button", name=words["yes"], exact=True).click()
    page.get_by_role("status").filter(has_text=codes.display(code)).wait_for()
    assert words["voided"] in page.get_by_role("heading", name=codes.display(code)).inner_text()
    assert "顾客已退款" in page.locator("tr.step-voided").inner_text()
    assert client.ok(client.get(f"coupons/{code}"))["status"] == "voided"
    screenshot(page, f"admin-coupon-{short}-1280")

    phone = new_context(locale=locale, viewport=PHONE).new_page()
    sign_in(phone, words, manager)
    phone.goto(f"/admin/coupons/{code}")
    phone.get_by_role("heading", name=words["refused"]).wait_for()
    assert_fits(phone)
    screenshot(phone, f"admin-coupon-{short}-390")
