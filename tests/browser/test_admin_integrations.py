"""Hooking up a webhook in chromium: the form drawn from the adapter's schema refuses a
missing URL by its field, takes a local receiver, shows the signing secret once; a test
ping fails at the receiver, is given up after its last attempt (the real drain, in the
live server's process), and is retried by hand from the deliveries log once the receiver
is back. In Chinese and in English; the list, the form, the log looked at on a 1280 px
screen and a 390 px phone."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from standardwebhooks.webhooks import Webhook

from couponsvc import people
from couponsvc.deliveries.schedule import MAX_ATTEMPTS
from couponsvc.extensions import db
from couponsvc.models import Delivery
from couponsvc.timeutil import utcnow
from tests.admin.conftest import make_person
from tests.factories import Shop
from tests.integrations.receiver import Receiver

from .conftest import DESKTOP, PHONE, assert_fits, screenshot, sign_in

# Deliveries run on the live server's own threads (no RQ worker), to a receiver on 127.0.0.1.
pytestmark = pytest.mark.config(REDIS_URL=None, ALLOW_PRIVATE_WEBHOOK_TARGETS=True)

WORDS = {
    "zh-CN": {"email": "邮箱", "password": "密码", "sign_in": "登录", "integrations": "系统对接",
              "add": "添加对接", "url": "地址", "submit": "添加对接", "required": "此项必填。",
              "secret": "签名密钥", "go": "查看该对接", "ping": "发送测试", "dead": "已放弃",
              "retry": "立即重试", "sent_again": "已重新发送该投递。", "succeeded": "成功",
              "deliveries": "投递记录"},
    "en-US": {"email": "Email", "password": "Password", "sign_in": "Sign in", "integrations": "Integrations",
              "add": "Add an integration", "url": "URL", "submit": "Add integration",
              "required": "Missing data for required field.", "secret": "Signing secret",
              "go": "Go to the integration", "ping": "Send a test ping", "dead": "dead", "retry": "Retry now",
              "sent_again": "Delivery sent again.", "succeeded": "succeeded", "deliveries": "Deliveries log"},
}


def wait_until(condition, what: str, seconds: float = 30):
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, f"gave up after {seconds} s waiting for {what}"
        time.sleep(0.05)


def delivery_status(app) -> str | None:
    with app.app_context():
        status = db.session.scalar(select(Delivery.status))
        db.session.remove()
        return status


def give_up_after_the_last_attempt(app):
    """Time travel to the last attempt, then the real sweep and drain make the delivery dead."""
    from workers.relay import sweep

    with app.app_context():
        db.session.execute(update(Delivery).values(attempts=MAX_ATTEMPTS - 1,
                                                   next_attempt_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        sweep()
        db.session.remove()
    wait_until(lambda: delivery_status(app) == "dead", "the delivery to be given up")


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_add_a_webhook_and_retry_a_dead_delivery(app, client, new_context, locale):
    words, short = WORDS[locale], locale[:2]
    shop = Shop(client)
    manager = make_person(app, role=people.MANAGER, merchant_id=shop.merchant["id"], name="李店长")
    with Receiver() as receiver:
        receiver.default.status = 503
        page = new_context(locale=locale, viewport=DESKTOP).new_page()
        sign_in(page, words, manager)
        page.get_by_role("navigation").get_by_role("link", name=words["integrations"], exact=True).click()
        page.get_by_role("link", name=words["add"], exact=True).click()
        page.get_by_role("link", name="webhook").click()

        page.get_by_role("button", name=words["submit"], exact=True).click()  # no URL yet
        url_field = page.get_by_label(words["url"], exact=True)
        assert url_field.get_attribute("aria-invalid") == "true"
        assert words["required"] in page.locator(".has-error .error").first.inner_text()
        screenshot(page, f"admin-integration-form-{short}-1280")
        url_field.fill(receiver.url + "/hook")
        page.get_by_role("button", name=words["submit"], exact=True).click()
        page.get_by_role("heading", name=words["secret"]).wait_for()
        secret = page.get_by_test_id("webhook-secret").inner_text().strip()
        assert secret.startswith("whsec_")

        screenshot(page, f"admin-integration-secret-{short}-1280")
        page.get_by_role("link", name=words["go"]).click()
        assert secret not in page.content()
        screenshot(page, f"admin-integration-{short}-1280")
        page.get_by_role("button", name=words["ping"], exact=True).click()
        wait_until(lambda: len(receiver.requests) == 1, "the ping to reach the receiver")
        assert Webhook(secret).verify(receiver.requests[0].body, receiver.requests[0].headers)["type"] == "ping"
        wait_until(lambda: delivery_status(app) == "failed", "the refused ping to be retrying")
        give_up_after_the_last_attempt(app)

        receiver.default.status = 200
        page.reload()
        page.get_by_role("link", name=words["dead"], exact=True).click()
        dead = page.locator("tr.delivery")
        assert dead.count() == 1 and dead.get_attribute("data-status") == "dead"
        assert "HTTP 503" in dead.inner_text()
        screenshot(page, f"admin-deliveries-{short}-1280")
        page.get_by_role("button", name=words["retry"], exact=True).click()
        page.get_by_role("status").filter(has_text=words["sent_again"]).wait_for()
        wait_until(lambda: delivery_status(app) == "succeeded", "the retried delivery to succeed")
        assert len(receiver.requests) == 3  # the first attempt, the last one, the retry
        page.get_by_role("link", name=words["succeeded"], exact=True).click()
        assert page.locator("tr.delivery").get_attribute("data-status") == "succeeded"

        page.get_by_role("navigation").get_by_role("link", name=words["integrations"], exact=True).click()
        screenshot(page, f"admin-integrations-{short}-1280")

        phone = new_context(locale=locale, viewport=PHONE).new_page()
        sign_in(phone, words, manager)
        phone.get_by_role("navigation").get_by_role("link", name=words["integrations"], exact=True).click()
        assert_fits(phone)
        screenshot(phone, f"admin-integrations-{short}-390")
        phone.get_by_role("link", name="webhook", exact=True).click()
        phone.get_by_role("link", name=words["deliveries"]).click()
        assert_fits(phone)
        screenshot(phone, f"admin-deliveries-{short}-390")
        phone.goto("/admin/integrations/new?adapter=odoo")
        assert_fits(phone)
        screenshot(phone, f"admin-integration-form-odoo-{short}-390")
