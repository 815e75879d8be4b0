"""No admin address reaches another merchant's objects: every route that takes an id, with
the id of another merchant's campaign, coupon, integration, delivery, store, key, person,
session or merchant, is a 404 (or 403) page for a manager, on GET and POST, and changes
nothing. The routes are read from the app, so a new one is covered (or fails here, naming
the id it takes, until this test knows it)."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from couponsvc.extensions import db
from couponsvc.models import (
    AdminSession,
    AdminUser,
    ApiKey,
    Campaign,
    Coupon,
    Delivery,
    Integration,
    Merchant,
    Store,
)
from tests.factories import Shop

TITLE = "乙家的团购"


@pytest.mark.config(ALLOW_PRIVATE_WEBHOOK_TARGETS=True)
def test_a_manager_reaches_no_object_of_another_merchant(app, client, manager_of, signed_in):
    mine, theirs = Shop(client), Shop(client, title=TITLE)
    coupon = theirs.coupon()["code"]
    integration = client.ok(client.post(f"merchants/{theirs.merchant['id']}/integrations", {
        "adapter": "webhook", "config": {"url": "http://127.0.0.1:9/hook"}}), 201)["id"]
    their_manager = manager_of(theirs.merchant)
    signed_in(app.test_client(), their_manager).post(f"/admin/integrations/{integration}/test")
    with app.app_context():
        delivery = db.session.scalar(select(Delivery.public_id).where(Delivery.integration_id == integration))
        key = db.session.scalar(select(ApiKey.id).where(ApiKey.merchant_id == theirs.merchant["id"]))
        session_id = db.session.scalar(select(AdminSession.id).where(AdminSession.user_id == their_manager.id))
    ids = {"campaign_id": theirs.campaign["id"], "code": coupon, "integration_id": integration,
           "delivery_id": delivery, "store_id": theirs.store["id"], "key_id": key,
           "user_id": their_manager.id, "session_id": session_id, "merchant_id": theirs.merchant["id"]}
    page = signed_in(app.test_client(), manager_of(mine.merchant))
    form = {"confirm": "yes", "reason": "x", "title": "changed", "name": "changed", "stores_shown": "1",
            "merchant.name": "changed", "merchant.city": "x", "merchant.timezone": "Asia/Shanghai",
            "store.name": "changed", "key.role": "manager", "key.label": "changed", "events": "ping",
            "config.url": "http://127.0.0.1:8/x"}
    reached, asked = [], 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin/") or not rule.arguments or rule.endpoint == "admin._unknown":
            continue
        unknown = rule.arguments - set(ids) - {"action"}
        assert not unknown, f"{rule.rule}: which object's id is {unknown}? add it to this test"
        for action in (["publish", "pause", "resume", "cancel"] if "action" in rule.arguments else [None]):
            values = {**ids, "action": action}
            path = re.sub(r"<(?:[^:<>]+:)?(\w+)>", lambda m, values=values: values[m.group(1)], rule.rule)
            for method in sorted(rule.methods & {"GET", "POST"}):
                answer = page.get(path) if method == "GET" else page.post(path, form)
                asked += 1
                body = answer.get_data(as_text=True)
                if answer.status_code not in (403, 404) or TITLE in body or their_manager.email in body:
                    reached.append((method, path, answer.status_code))
    assert not reached, reached
    assert asked >= 35  # every id route, both methods where it has them
    with app.app_context():
        assert db.session.get(Campaign, theirs.campaign["id"]).status == "active"
        assert db.session.get(Coupon, coupon).status == "active"
        assert db.session.get(Integration, integration).status == "active"
        assert db.session.get(ApiKey, key).revoked_at is None
        assert db.session.get(AdminUser, their_manager.id).disabled_at is None
        assert db.session.get(AdminSession, session_id).ended_at is None
        assert db.session.get(Merchant, theirs.merchant["id"]).name != "changed"
        assert db.session.get(Store, theirs.store["id"]).name != "changed"
        assert db.session.scalar(select(ApiKey).where(ApiKey.label == "changed")) is None
        assert db.session.scalar(select(Store).where(Store.name == "changed")) is None
