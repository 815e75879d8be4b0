"""Campaigns in chromium, by their labels, in Chinese and in English: a campaign created
through the form (a field error shown, then fixed), published, seen on the dashboard;
another merchant's campaign is not found by URL; the dashboard, the list, the form with an
error, the campaign page and the print sheet looked at on a 1280 px screen and a 390 px phone."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from rq import Queue, SimpleWorker

from couponsvc import people
from couponsvc.jobs import runner
from tests.admin.conftest import make_person

from .conftest import DESKTOP, PHONE, assert_fits, screenshot, sign_in

WORDS = {
    "zh-CN": {"email": "邮箱", "password": "密码", "sign_in": "登录", "campaigns": "团购活动",
              "dashboard": "概览", "new": "新建团购", "title": "标题", "price": "售价（元）",
              "list_price": "原价（元）", "tipping": "成团人数", "sales_start": "开售时间",
              "sales_end": "停售时间", "valid_from": "生效时间", "valid_until": "失效时间",
              "create": "创建草稿", "not_money": "请填写以元为单位的金额", "publish": "发布",
              "yes": "确定", "published": "已发布", "live": "在售团购", "not_found": "未找到",
              "print": "打印二维码券"},
    "en-US": {"email": "Email", "password": "Password", "sign_in": "Sign in", "campaigns": "Campaigns",
              "dashboard": "Dashboard", "new": "New campaign", "title": "Title", "price": "Price (yuan)",
              "list_price": "List price (yuan)", "tipping": "Tipping point", "sales_start": "Sales start",
              "sales_end": "Sales end", "valid_from": "Valid from", "valid_until": "Valid until",
              "create": "Create draft", "not_money": "Enter an amount in yuan", "publish": "Publish",
              "yes": "Yes", "published": "Published:", "live": "Live deals", "not_found": "Not found",
              "print": "Print QR coupons"},
}
SIZES = (("1280", DESKTOP), ("390", PHONE))


def look(page, name: str) -> None:
    """A screenshot at each size, after checking that nothing runs off the side."""
    for size, viewport in SIZES:
        page.set_viewport_size(viewport)
        assert_fits(page)
        screenshot(page, f"{name}-{size}")
    page.set_viewport_size(DESKTOP)


def local(moment: datetime) -> str:
    return moment.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%dT%H:%M")


def bulk_codes(app, client, shop_key: str, campaign_id: str, count: int) -> None:
    client.ok(client.post(f"campaigns/{campaign_id}/coupons/bulk", {"count": count}, key=shop_key), 202)
    connection = runner(app).redis()
    with app.app_context():
        SimpleWorker([Queue("bulk", connection=connection)], connection=connection).work(burst=True)


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_create_with_an_error_fix_it_publish_and_see_it_on_the_dashboard(app, client, live_server,
                                                                         new_context, locale):
    words, short = WORDS[locale], locale[:2]
    app.config["ADMIN_FIGURES_SLOW"] = None  # figures counted on every view, however slow the machine
    merchant = client.merchant(name="老街牛肉面", city="赣州")
    client.store(merchant["id"], name="章贡店")
    manager_key = client.key(merchant["id"], "manager")
    manager = make_person(app, role=people.MANAGER, merchant_id=merchant["id"], name="李店长")
    # a distribution campaign with printed codes, and a deal already selling
    handout = client.campaign(merchant["id"], title="全城派券：满 100 减 20", max_coupons=100)
    bulk_codes(app, client, manager_key, handout["id"], 14)
    for _ in range(3):
        client.order(handout["id"])
    page = new_context(locale=locale, viewport=DESKTOP).new_page()
    sign_in(page, words, manager)

    page.get_by_role("navigation").get_by_role("link", name=words["campaigns"], exact=True).click()
    page.get_by_role("heading", name=words["campaigns"]).wait_for()
    look(page, f"admin-campaigns-{short}")
    page.get_by_role("link", name=words["new"]).click()
    now = datetime.now(ZoneInfo("UTC"))
    page.get_by_label(words["title"], exact=True).fill("双人火锅套餐")
    page.get_by_label(words["price"], exact=True).fill("39.9元")  # a typo the form refuses
    page.get_by_label(words["list_price"], exact=True).fill("68")
    page.get_by_label(words["tipping"], exact=True).fill("2")
    page.get_by_label(words["sales_start"], exact=True).fill(local(now - timedelta(hours=1)))
    page.get_by_label(words["sales_end"], exact=True).fill(local(now + timedelta(days=7)))
    page.get_by_label(words["valid_from"], exact=True).fill(local(now - timedelta(hours=1)))
    page.get_by_label(words["valid_until"], exact=True).fill(local(now + timedelta(days=30)))
    page.get_by_role("button", name=words["create"]).click()
    price = page.get_by_label(words["price"], exact=True)
    assert price.get_attribute("aria-invalid") == "true"
    assert words["not_money"] in page.locator("#f-price-error").inner_text()
    assert price.input_value() == "39.9元"  # what was typed is kept
    assert page.get_by_label(words["title"], exact=True).input_value() == "双人火锅套餐"
    look(page, f"admin-campaign-form-error-{short}")

    price.fill("39.90")
    page.get_by_role("button", name=words["create"]).click()
    page.get_by_role("heading", name=re.compile("双人火锅套餐")).wait_for()
    assert "¥39.90" in page.content()
    page.locator("summary", has_text=words["publish"]).click()
    page.get_by_role("button", name=f"{words['yes']}: {words['publish']}").click()
    page.locator(".flash-success", has_text=words["published"]).wait_for()
    look(page, f"admin-campaign-page-{short}")

    page.get_by_role("navigation").get_by_role("link", name=words["dashboard"], exact=True).click()
    deals = page.locator("table.deals")
    deals.get_by_role("link", name="双人火锅套餐").wait_for()
    assert deals.get_by_role("link", name=handout["title"]).count() == 1
    assert page.locator('[data-figure="sold-today"]').inner_text() == "3"
    look(page, f"admin-dashboard-{short}")

    page.goto(f"/admin/campaigns/{handout['id']}")
    look(page, f"admin-campaign-page-bulk-{short}")
    page.get_by_role("link", name=words["print"]).click()
    coupons = page.locator(".coupon")
    assert coupons.count() == 12 and page.locator(".coupon svg").count() == 12
    look(page, f"admin-print-sheet-{short}")
    page.emulate_media(media="print")
    screenshot(page, f"admin-print-sheet-{short}-print")
    pdf = page.pdf(prefer_css_page_size=True)  # the sheet is one A4 page: 595 x 842 points
    assert len(re.findall(rb"/Type\s*/Page\b", pdf)) == 1
    box = [float(n) for n in re.search(rb"/MediaBox\s*\[([^\]]*)\]", pdf).group(1).split()]
    assert abs(box[2] - box[0] - 595) < 2 and abs(box[3] - box[1] - 842) < 2, box

    # an operator sees every merchant, with a merchant filter
    client.campaign(client.merchant(name="上饶米粉")["id"], title="米粉两碗")
    operator = make_person(app, role=people.OPERATOR, name="运营小王")
    desk = new_context(locale=locale, viewport=DESKTOP).new_page()
    sign_in(desk, words, operator)
    deals = desk.locator("table.deals")
    deals.get_by_role("link", name="米粉两碗").wait_for()
    assert deals.get_by_text("上饶米粉").count() == 1 and deals.get_by_text("老街牛肉面").count() >= 1
    look(desk, f"admin-dashboard-operator-{short}")
    desk.get_by_role("navigation").get_by_role("link", name=words["campaigns"], exact=True).click()
    desk.get_by_role("heading", name=words["campaigns"]).wait_for()
    desk.locator("#f-merchant_id").select_option(label="上饶米粉")
    desk.locator("form.filters button").click()
    desk.get_by_role("link", name="米粉两碗").wait_for()
    assert desk.get_by_role("link", name="双人火锅套餐").count() == 0
    look(desk, f"admin-campaigns-operator-{short}")


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_a_manager_cannot_reach_another_merchants_campaign_by_url(app, client, live_server, new_context,
                                                                 locale):
    words = WORDS[locale]
    own, other = client.merchant(), client.merchant()
    theirs = client.campaign(other["id"], title="别家的团购")
    manager = make_person(app, role=people.MANAGER, merchant_id=own["id"])
    page = new_context(locale=locale, viewport=PHONE).new_page()
    sign_in(page, words, manager)
    for path in ("", "/edit", "/print", "/publish"):
        answer = page.goto(f"/admin/campaigns/{theirs['id']}{path}")
        assert answer.status == 404, path
        assert page.get_by_role("heading", name=words["not_found"]).count() == 1
        assert "别家的团购" not in page.content()
    page.goto("/admin/campaigns")
    assert "别家的团购" not in page.content()


def test_the_campaign_pages_figures_follow_the_sales_until_the_session_ends(app, client, live_server,
                                                                            new_context):
    """htmx asks for the figures again (every second here, ADMIN_FIGURES_EVERY): an order
    placed meanwhile shows without a reload; once the session is gone the answer is a 401,
    which htmx leaves out of the page (base.html's noSwap): the figures stay, no sign-in
    form appears in their place, and no script error."""
    words = WORDS["zh-CN"]
    app.config["ADMIN_FIGURES_SLOW"] = None
    app.config["ADMIN_FIGURES_EVERY"] = 1
    merchant = client.merchant(name="老街牛肉面", city="赣州")
    client.store(merchant["id"], name="章贡店")
    deal = client.campaign(merchant["id"], title="牛肉面双人餐", min_group_size=3)
    client.order(deal["id"])
    manager = make_person(app, role=people.MANAGER, merchant_id=merchant["id"], name="李店长")
    page = new_context(locale="zh-CN", viewport=DESKTOP).new_page()
    sign_in(page, words, manager)
    page.goto(f"/admin/campaigns/{deal['id']}")
    sold = page.locator('#campaign-figures [data-figure="sold"]')
    assert sold.inner_text() == "1"
    client.order(deal["id"], quantity=2)
    page.locator('#campaign-figures [data-figure="sold"]', has_text="3").wait_for(timeout=15_000)
    assert page.locator("#campaign-figures .badge-tipped").count() == 1  # tipped at 3, no reload
    # the coupons by status too (out of band), all three active once tipped
    page.locator('#campaign-coupon-figures [data-figure="coupons-active"]', has_text="3").wait_for()
    assert page.locator('#campaign-coupon-figures [data-figure="coupons-pending"]').inner_text() == "0"
    screenshot(page, "admin-campaign-figures-followed-zh-1280")

    page.context.clear_cookies()
    # until htmx has finished with a 401 (`htmx:finally:request` comes after its swap, or none)
    page.evaluate("""() => new Promise((done, fail) => {
        setTimeout(() => fail(new Error('no 401 within 30 s')), 30000);
        document.addEventListener('htmx:finally:request',
            event => { if (event.detail.ctx.response?.status === 401) done(); });
    })""")
    assert page.locator('#campaign-figures [data-figure="sold"]').inner_text() == "3"
    assert page.get_by_label(words["password"], exact=True).count() == 0
    assert page.get_by_role("heading", name="牛肉面双人餐").count() == 1
