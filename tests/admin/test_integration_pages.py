"""The integration pages: the list, a form drawn from the adapter's config schema (errors
inline, the SSRF guard, a webhook's secret shown once, credentials never shown back), a test
ping, the deliveries log with its filters and attempts, a dead delivery retried, enable and
disable; another merchant's ids are 404 whatever the method.

Deliveries go through the real drain: real Redis and RQ (a burst worker in this process),
a real HTTP receiver on 127.0.0.1.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from rq import Queue, SimpleWorker
from sqlalchemy import select, update
from standardwebhooks.webhooks import Webhook

from couponsvc.deliveries.schedule import MAX_ATTEMPTS
from couponsvc.extensions import db
from couponsvc.jobs import runner
from couponsvc.models import AuditEntry, Delivery, Integration
from couponsvc.timeutil import utcnow
from tests.factories import Shop
from tests.integrations.receiver import Receiver

PRIVATE_TARGETS = pytest.mark.config(ALLOW_PRIVATE_WEBHOOK_TARGETS=True)


def english(page):
    page.http.get("/language/en")
    return page


def text(answer) -> str:
    return re.sub(r"\s+", " ", answer.get_data(as_text=True))


def field_error(html: str, name: str) -> str:
    found = re.search(rf'<p class="error" id="f-{re.escape(name)}-error">(.*?)</p>', html)
    return found.group(1).strip() if found else ""


def work_off(app):
    """One burst worker on the queues `couponsvc worker` serves."""
    connection = runner(app).redis()
    with app.app_context():
        SimpleWorker([Queue(name, connection=connection) for name in ("deliveries", "default")],
                     connection=connection).work(burst=True)


def sweep(app):
    from workers.relay import sweep as sweep_job

    with app.app_context():
        return sweep_job()


def audit(app, action: str) -> list[AuditEntry]:
    with app.app_context():
        rows = db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)
                                  .order_by(AuditEntry.at)).all()
        db.session.expunge_all()
        return rows


def integration_ids(app, merchant_id: str) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(Integration.id).where(Integration.merchant_id == merchant_id)
                                       .order_by(Integration.id)))


def add_webhook(page, shop, url: str, events=("ping", "coupon.redeemed"), **extra):
    return page.post("/admin/integrations/new", {"adapter": "webhook", "merchant_id": shop.merchant["id"],
                                                 "config.url": url, "events": list(events), "timeout": "5", **extra})


def secret_of(answer) -> str:
    return re.search(r'data-testid="webhook-secret">(whsec_[A-Za-z0-9+/=]+)<', answer.get_data(as_text=True)).group(1)


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


@pytest.fixture
def shop(client):
    return Shop(client)


@pytest.fixture
def manager(shop, manager_of, signed_in, client):
    return english(signed_in(client, manager_of(shop.merchant)))


def test_the_form_is_drawn_from_the_adapters_schema(shop, manager):
    webhook = text(manager.get("/admin/integrations/new", query_string={"adapter": "webhook"}))
    assert '<label for="f-config.url">URL' in webhook
    assert re.search(r'name="config.url" type="url" value="" required', webhook)  # marked required
    assert not re.search(r'name="config.secret" [^>]* required', webhook)
    assert 'name="config.secret" type="password" value=""' in webhook  # writeOnly: a password input
    assert '<textarea id="f-config.headers" name="config.headers"' in webhook
    assert webhook.count('name="events"') == 13 and 'value="coupon.redeemed" checked' in webhook
    odoo = text(manager.get("/admin/integrations/new", query_string={"adapter": "odoo"}))
    assert 'name="config.api_key" type="password"' in odoo
    assert 'name="config.uid" type="number"' in odoo
    assert '<textarea id="f-config.field_mapping" name="config.field_mapping"' in odoo
    assert "x_coupon_code: coupon.code" in odoo  # the default mapping, one pair a line
    mastodon = text(manager.get("/admin/integrations/new", query_string={"adapter": "mastodon"}))
    assert re.search(r'<select id="f-config.visibility" name="config.visibility".*?<option value="public" selected>',
                     mastodon)
    chooser = text(manager.get("/admin/integrations/new"))
    assert all(f"adapter={name}" in chooser for name in ("webhook", "odoo", "wecom", "dingtalk", "mastodon"))


def test_a_refused_config_is_told_by_its_fields(app, shop, manager):
    missing = manager.post("/admin/integrations/new", {"adapter": "webhook", "merchant_id": shop.merchant["id"],
                                                       "config.secret": "whsec_typed-but-refused",
                                                       "events": ["ping"]})
    assert missing.status_code == 422
    html = text(missing)
    assert field_error(html, "config.url") == "Missing data for required field."
    assert "whsec_typed-but-refused" not in html  # a credential is never echoed back
    not_url = text(add_webhook(manager, shop, "not a url"))
    assert field_error(not_url, "config.url") == "Not a valid URL."
    private = add_webhook(manager, shop, "http://10.0.0.5/hook")
    assert private.status_code == 422
    assert "10.0.0.5" in field_error(text(private), "config.url")  # the API's SSRF guard
    odoo = text(manager.post("/admin/integrations/new", {
        "adapter": "odoo", "merchant_id": shop.merchant["id"], "config.url": "https://acme.odoo.com",
        "config.database": "acme", "config.login": "bot", "config.api_key": "k", "config.uid": "abc",
        "config.field_mapping": "x_code coupon.code", "events": ["ping"]}))
    assert field_error(odoo, "config.field_mapping").startswith("Line 1 is not")
    no_events = text(add_webhook(manager, shop, "https://erp.example.cn/hook", events=()))
    assert re.search(r'id="events-error">Choose at least one event', no_events)
    assert integration_ids(app, shop.merchant["id"]) == []
    assert audit(app, "integration.create") == []


def test_an_integration_form_without_its_token_is_refused(app, shop, manager):
    refused = manager.post("/admin/integrations/new", {"adapter": "webhook", "merchant_id": shop.merchant["id"],
                                                       "config.url": "https://erp.example.cn/hook",
                                                       "events": ["ping"]}, csrf=False)
    assert refused.status_code == 400
    assert integration_ids(app, shop.merchant["id"]) == []


@PRIVATE_TARGETS
def test_a_webhook_is_added_its_secret_shown_once_and_a_ping_reaches_it(app, shop, manager, receiver):
    created = add_webhook(manager, shop, receiver.url + "/hook")
    assert created.status_code == 201 and created.headers["Cache-Control"] == "no-store"
    secret = secret_of(created)
    [integration_id] = integration_ids(app, shop.merchant["id"])
    page = manager.get(f"/admin/integrations/{integration_id}").get_data(as_text=True)
    edit = manager.get(f"/admin/integrations/{integration_id}/edit").get_data(as_text=True)
    assert secret not in page and secret not in edit
    assert re.search(r'Signing secret</th>\s*<td><span class="muted">\(stored and hidden\)', page)
    assert re.search(r'Extra headers</th>\s*<td><span class="muted">—', page)  # none were given
    assert 'name="config.secret" type="password" value=""' in edit
    [entry] = audit(app, "integration.create")
    assert secret not in json.dumps(entry.detail) and entry.detail["config"]["url"] == receiver.url + "/hook"
    assert "secret" not in entry.detail["config"] and "headers" not in entry.detail["config"]
    tested = manager.post(f"/admin/integrations/{integration_id}/test")
    assert tested.status_code == 302 and tested.headers["Location"].endswith(f"/{integration_id}/deliveries")
    work_off(app)
    [ping] = receiver.requests
    assert Webhook(secret).verify(ping.body, ping.headers)["type"] == "ping"
    log = text(manager.get(f"/admin/integrations/{integration_id}/deliveries"))
    assert re.search(r'<tr class="delivery" id="dlv_\w+" data-status="succeeded">', log)
    assert "<code>ping</code>" in log and "HTTP 200" in log
    assert audit(app, "integration.test")[0].target_id == integration_id


@PRIVATE_TARGETS
def test_editing_keeps_credentials_left_blank(app, shop, manager, receiver):
    secret = secret_of(add_webhook(manager, shop, "https://erp.example.cn/hook",
                                   **{"config.headers": "X-Token: s3cret"}))
    [integration_id] = integration_ids(app, shop.merchant["id"])
    edit = manager.get(f"/admin/integrations/{integration_id}/edit").get_data(as_text=True)
    assert "s3cret" not in edit and "X-Token" not in edit
    assert re.search(r'<textarea id="f-config.headers" name="config.headers"[^>]*placeholder="\(stored and hidden\)"',
                     edit)
    saved = manager.post(f"/admin/integrations/{integration_id}/edit", {
        "config.url": receiver.url + "/moved", "config.secret": "", "config.headers": "",
        "events": ["ping"], "timeout": "3"})
    assert saved.status_code == 302
    manager.post(f"/admin/integrations/{integration_id}/test")
    work_off(app)
    [ping] = receiver.requests
    assert ping.path == "/moved" and ping.headers["x-token"] == "s3cret"
    assert Webhook(secret).verify(ping.body, ping.headers)["type"] == "ping"  # the secret kept
    [entry] = audit(app, "integration.update")
    assert entry.detail["credentials_changed"] == [] and "s3cret" not in json.dumps(entry.detail)
    bad_url = manager.post(f"/admin/integrations/{integration_id}/edit", {
        "config.url": "ftp://erp.example.cn", "events": ["ping"], "timeout": "3"})
    assert bad_url.status_code == 422 and field_error(text(bad_url), "config.url") == "Not a valid URL."
    slow = manager.post(f"/admin/integrations/{integration_id}/edit", {
        "config.url": receiver.url + "/moved", "events": ["ping"], "timeout": "99"})
    assert slow.status_code == 422 and field_error(text(slow), "timeout") == "Must be more than 0 and at most 60.0."


@PRIVATE_TARGETS
def test_the_deliveries_log_filters_and_a_dead_delivery_is_retried(app, client, shop, manager, receiver):
    add_webhook(manager, shop, receiver.url + "/hook")
    [integration_id] = integration_ids(app, shop.merchant["id"])
    receiver.default.status = 503
    client.ok(shop.redeem(shop.coupon()["code"]), 201)
    manager.post(f"/admin/integrations/{integration_id}/test")
    work_off(app)  # both fail once: retrying
    with app.app_context():  # the redemption's delivery has used all but its last attempt
        db.session.execute(update(Delivery).where(Delivery.integration_id == integration_id,
                                                  Delivery.attempts == 1, Delivery.event_seq == select(
                                                      db.func.min(Delivery.event_seq)).scalar_subquery())
                           .values(attempts=MAX_ATTEMPTS - 1, next_attempt_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    sweep(app)
    work_off(app)  # its last attempt fails too: dead
    dead = text(manager.get(f"/admin/integrations/{integration_id}/deliveries", query_string={"status": "dead"}))
    rows = re.findall(r'<tr class="delivery" id="(dlv_\w+)" data-status="(\w+)">', dead)
    assert [status for _, status in rows] == ["dead"]
    assert "<code>coupon.redeemed</code>" in dead and "HTTP 503" in dead
    assert re.search(r'<li class="attempt attempt-dead">', dead)  # each attempt, the last one given up
    retrying = text(manager.get(f"/admin/integrations/{integration_id}/deliveries", query_string={"status": "retrying"}))
    assert re.findall(r'data-status="(\w+)"', retrying) == ["retrying"]
    assert "<code>ping</code>" in retrying
    everything = text(manager.get(f"/admin/integrations/{integration_id}/deliveries"))
    assert len(re.findall(r'<tr class="delivery"', everything)) == 2
    bad = manager.get(f"/admin/integrations/{integration_id}/deliveries", query_string={"status": "lost"})
    assert bad.status_code == 400
    bad_cursor = manager.get(f"/admin/integrations/{integration_id}/deliveries", query_string={"after": "nope"})
    assert bad_cursor.status_code == 422
    [(dead_id, _)] = rows
    receiver.default.status = 200
    retried = manager.post(f"/admin/deliveries/{dead_id}/retry", {"status": "dead"})
    assert retried.status_code == 302 and retried.headers["Location"].endswith("status=dead")
    work_off(app)
    assert client.ok(client.get(f"deliveries/{dead_id}"))["status"] == "succeeded"
    assert audit(app, "delivery.retry")[0].target_id == dead_id
    listed = text(manager.get("/admin/integrations"))
    assert re.search(r'status=retrying">\s*<span class="badge badge-retrying">retrying</span> 1', listed)


@PRIVATE_TARGETS
def test_disabled_deliveries_are_held_and_sent_in_order_on_enable(app, client, shop, manager, receiver):
    add_webhook(manager, shop, receiver.url + "/hook", events=("coupon.redeemed",))
    [integration_id] = integration_ids(app, shop.merchant["id"])
    assert manager.post(f"/admin/integrations/{integration_id}/disable").status_code == 302
    page = text(manager.get(f"/admin/integrations/{integration_id}"))
    assert "badge-disabled" in page and "Enable" in page
    first, second = (c["code"] for c in shop.coupons(2))
    client.ok(shop.redeem(first), 201)
    client.ok(shop.redeem(second), 201)
    work_off(app)
    assert receiver.requests == []
    held = text(manager.get(f"/admin/integrations/{integration_id}/deliveries", query_string={"status": "held"}))
    assert len(re.findall(r'data-status="held"', held)) == 2
    assert "Retry now" not in held
    enabled = manager.post(f"/admin/integrations/{integration_id}/enable")
    assert enabled.status_code == 302
    assert "2 held deliveries are being sent" in text(manager.get(f"/admin/integrations/{integration_id}"))
    work_off(app)
    assert [r.json()["data"]["coupon"]["code"] for r in receiver.requests] == [first, second]
    assert [e.action for e in audit(app, "integration.disable") + audit(app, "integration.enable")] == [
        "integration.disable", "integration.enable"]
    assert audit(app, "integration.enable")[0].detail == {"released": 2}


def test_lists_are_scoped_operators_see_all_and_filter(app, client, shop, manager, operator, signed_in):
    other = Shop(client)
    body = {"adapter": "webhook", "config": {"url": "https://erp.example.cn/hook"}}
    client.ok(client.post(f"merchants/{shop.merchant['id']}/integrations", body), 201)
    client.ok(client.post(f"merchants/{other.merchant['id']}/integrations", body | {"adapter": "odoo", "config": {
        "url": "https://acme.odoo.com", "database": "acme", "login": "bot", "api_key": "k"}}), 201)
    own = text(manager.get("/admin/integrations"))
    assert "<strong>webhook</strong>" in own and "<strong>odoo</strong>" not in own
    op = english(signed_in(app.test_client(), operator))
    everything = text(op.get("/admin/integrations"))
    assert "<strong>webhook</strong>" in everything and "<strong>odoo</strong>" in everything
    assert shop.merchant["name"] in everything and other.merchant["name"] in everything
    filtered = text(op.get("/admin/integrations", query_string={"merchant_id": other.merchant["id"]}))
    assert "<strong>webhook</strong>" not in filtered and "<strong>odoo</strong>" in filtered
    by_adapter = text(op.get("/admin/integrations", query_string={"adapter": "webhook"}))
    assert "<strong>webhook</strong>" in by_adapter and "<strong>odoo</strong>" not in by_adapter
    assert manager.get("/admin/integrations", query_string={"merchant_id": other.merchant["id"]}).status_code == 404


@PRIVATE_TARGETS
def test_another_merchants_integration_is_404_whatever_the_method(app, client, shop, manager, receiver):
    other = Shop(client)
    theirs = client.ok(client.post(f"merchants/{other.merchant['id']}/integrations",
                                   {"adapter": "webhook", "config": {"url": receiver.url + "/hook"}}), 201)
    receiver.default.status = 503
    client.ok(client.post(f"integrations/{theirs['id']}/test"), 202)
    work_off(app)
    [delivery] = client.ok(client.get(f"integrations/{theirs['id']}/deliveries"))["data"]
    base = f"/admin/integrations/{theirs['id']}"
    for path in (base, f"{base}/edit", f"{base}/deliveries"):
        assert manager.get(path).status_code == 404, path
    for path in (f"{base}/edit", f"{base}/test", f"{base}/enable", f"{base}/disable",
                 f"/admin/deliveries/{delivery['id']}/retry"):
        assert manager.post(path, {"config.url": "https://evil.example/x", "events": ["ping"]}).status_code == 404, path
    assert manager.get("/admin/integrations/new", query_string={"merchant_id": other.merchant["id"],
                                                                "adapter": "webhook"}).status_code == 404
    assert manager.post("/admin/integrations/new", {"adapter": "webhook", "merchant_id": other.merchant["id"],
                                                    "config.url": "https://evil.example/x",
                                                    "events": ["ping"]}).status_code == 404
    assert integration_ids(app, other.merchant["id"]) == [theirs["id"]]
    assert client.ok(client.get(f"integrations/{theirs['id']}"))["config"]["url"] == receiver.url + "/hook"
    assert len(receiver.requests) == 1


def test_the_deliveries_log_is_paged_newest_first(app, client, shop, manager):
    theirs = client.ok(client.post(f"merchants/{shop.merchant['id']}/integrations",
                                   {"adapter": "webhook", "config": {"url": "https://erp.example.cn/hook"}}), 201)
    ids = [client.ok(client.post(f"integrations/{theirs['id']}/test"), 202)["id"] for _ in range(52)]
    first = manager.get(f"/admin/integrations/{theirs['id']}/deliveries").get_data(as_text=True)
    shown = re.findall(r'<tr class="delivery" id="(dlv_\w+)"', first)
    assert shown == ids[::-1][:50]
    after = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    second = manager.get(after).get_data(as_text=True)
    assert re.findall(r'<tr class="delivery" id="(dlv_\w+)"', second) == ids[::-1][50:]
    assert 'rel="next"' not in second


ODD = ("\x00", "a" * 5000, "\ud800", "x' OR '1'='1", "../..", "%00")


def test_odd_input_is_a_page_never_an_error(client, shop, operator, signed_in):
    """NUL, very long, a lone surrogate, quotes, dots: in ids, filters and form fields of the
    coupon, integration and merchant pages; each is answered with a page, never a 500."""
    page = signed_in(client, operator)
    theirs = client.ok(client.post(f"merchants/{shop.merchant['id']}/integrations",
                                   {"adapter": "webhook", "config": {"url": "https://erp.example.cn/hook"}}), 201)
    for odd in ODD:
        gets = [("/admin/integrations", {"merchant_id": odd}), ("/admin/integrations", {"adapter": odd}),
                ("/admin/integrations", {"status": odd}), ("/admin/integrations", {"after": odd}),
                ("/admin/integrations/new", {"merchant_id": odd, "adapter": "webhook"}),
                ("/admin/integrations/new", {"merchant_id": shop.merchant["id"], "adapter": odd}),
                (f"/admin/integrations/{theirs['id']}/deliveries", {"status": odd, "after": odd}),
                ("/admin/coupons", {"code": odd}), ("/admin/merchants", {"after": odd})]
        for path, query in gets:
            raw = {k: v.encode("utf-8", "surrogatepass") for k, v in query.items()}  # a lone surrogate as sent
            answer = page.get(path, query_string=raw)
            assert answer.status_code < 500 and answer.mimetype == "text/html", (path, query)
        key_token = page.key_form(shop.merchant["id"])["key.token"]
        forms = [("/admin/integrations/new", {"merchant_id": shop.merchant["id"], "adapter": "webhook",
                                              "config.url": odd, "config.headers": f"X-A: {odd}",
                                              "events": [odd], "timeout": odd}),
                 (f"/admin/integrations/{theirs['id']}/edit", {"config.url": odd, "events": ["ping"], "timeout": odd}),
                 ("/admin/merchants", {"name": odd, "city": odd, "timezone": odd, "reversal_window": odd}),
                 (f"/admin/merchants/{shop.merchant['id']}/stores", {"store.name": odd, "store.address": odd}),
                 (f"/admin/merchants/{shop.merchant['id']}/api-keys", {"key.role": "scanner", "key.store_id": odd,
                                                                       "key.label": odd,
                                                                       "key.token": key_token}),
                 (f"/admin/coupons/{shop.coupon()['code']}/void", {"reason": odd})]
        for path, form in forms:
            data = {k: ([x.encode("utf-8", "surrogatepass") for x in v] if isinstance(v, list)
                        else v.encode("utf-8", "surrogatepass")) for k, v in form.items()}
            answer = page.post(path, data)
            assert answer.status_code < 500 and answer.mimetype == "text/html", (path, form)
