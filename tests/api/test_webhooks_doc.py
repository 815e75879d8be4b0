"""The `webhooks` section of the OpenAPI document types every event, and real events match it.

Every event type is produced for real (through the API, and the closing of due deals
through its domain function, as the periodic job calls it); its row in `GET /events` and
the body a local webhook receiver gets are validated (jsonschema) against the schema the
served document gives for that type.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from jsonschema import Draft202012Validator
from rq import Queue, SimpleWorker
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from couponsvc.campaigns.close import close_campaign
from couponsvc.extensions import api, db
from couponsvc.jobs import runner
from couponsvc.models import Event
from couponsvc.tasks import QUEUES
from couponsvc.timeutil import utcnow
from tests.deliveries.test_pipeline import webhook
from tests.factories import Shop
from tests.integrations.receiver import Receiver

pytestmark = pytest.mark.config(ALLOW_PRIVATE_WEBHOOK_TARGETS=True)


def document(client) -> dict:
    """The document `/api/v1/openapi.json` serves."""
    with client.app.app_context():
        return api.spec.to_dict()


def validator(doc: dict, pointer: str) -> Draft202012Validator:
    """A validator for the document's schema at `pointer` (its `$ref`s resolve in the document)."""
    return Draft202012Validator({"components": doc["components"], "$ref": pointer})


def webhook_schema(doc: dict, event_type: str) -> Draft202012Validator:
    body = doc["webhooks"][event_type]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return validator(doc, body["$ref"])


def test_every_event_type_has_a_webhooks_entry_with_the_standard_webhooks_headers(client):
    doc = document(client)
    assert doc["openapi"].startswith("3.1")
    assert set(doc["webhooks"]) == set(Event.TYPES)
    for event_type, entry in doc["webhooks"].items():
        headers = {p["name"] for p in entry["post"]["parameters"] if p["in"] == "header"}
        assert {"webhook-id", "webhook-timestamp", "webhook-signature"} <= headers, event_type
        schema = webhook_schema(doc, event_type).schema
        assert schema["$ref"].startswith("#/components/schemas/")


def test_a_body_of_another_type_or_with_an_unknown_member_is_not_valid(client):
    doc = document(client)
    ping = {"type": "ping", "timestamp": "2030-01-05T04:30:00Z",
            "data": {"integration": {"id": "int_1", "adapter": "webhook"}, "message": "hi"}}
    assert webhook_schema(doc, "ping").is_valid(ping)
    assert not webhook_schema(doc, "coupon.redeemed").is_valid(ping)
    assert not webhook_schema(doc, "ping").is_valid({**ping, "data": {**ping["data"], "extra": 1}})


def work_off(app):
    """One burst worker on every queue `couponsvc worker` serves (a bulk job, then its drains)."""
    connection = runner(app).redis()
    with app.app_context():
        SimpleWorker([Queue(name, connection=connection) for name in QUEUES],
                     connection=connection).work(burst=True)


def produce_every_event(client, app, receiver) -> tuple[Shop, dict]:
    """One event of each type, and of each shape of `coupon.issued` and `campaign.cancelled`."""
    shop = Shop(client)  # campaign.published
    integration = webhook(client, shop, receiver)  # every event type
    doomed = webhook(client, shop, receiver)
    code = shop.coupon()["code"]  # coupon.issued (to an order), order.confirmed
    redemption = client.ok(shop.redeem(code), 201)  # coupon.redeemed
    client.ok(client.post(f"redemptions/{redemption['id']}/reverse", {"reason": "wrong dish"},
                          key=shop.manager))  # coupon.redemption_reversed
    client.ok(client.post(f"coupons/{shop.coupon()['code']}/void", {"reason": "lost"},
                          key=shop.manager))  # coupon.voided
    client.ok(client.post(f"campaigns/{shop.campaign['id']}/coupons/bulk", {"count": 3},
                          key=shop.manager), 202)  # coupon.issued (bulk), once the job runs
    merchant = shop.merchant["id"]
    tipping = client.campaign(merchant, min_group_size=2)
    client.order(tipping["id"])
    client.order(tipping["id"])  # campaign.tipped
    failing = client.campaign(merchant, min_group_size=5)
    client.order(failing["id"])
    cancelled = client.campaign(merchant, min_group_size=5)
    client.order(cancelled["id"])
    client.ok(client.post(f"campaigns/{cancelled['id']}/cancel", {"reason": "closed for works"}))
    draft = client.campaign(merchant, publish=False)
    client.ok(client.post(f"campaigns/{draft['id']}/cancel", {}))  # campaign.cancelled, a draft
    with app.app_context():
        later = utcnow() + timedelta(days=8)
        assert close_campaign(db.session, tipping["id"], later) == "ended"
        assert close_campaign(db.session, failing["id"], later) == "failed"  # + order.refund_pending
        db.session.commit()
    client.ok(client.post(f"integrations/{integration['id']}/test", key=shop.manager), 202)  # ping
    client.ok(client.patch(f"integrations/{doomed['id']}", {"status": "disabled"},
                           key=shop.manager))  # integration.disabled
    work_off(app)
    return shop, integration


def test_every_event_and_every_webhook_body_matches_the_document(client, app):
    doc = document(client)
    with Receiver() as receiver:
        shop, integration = produce_every_event(client, app, receiver)
    rows = client.events()
    assert {row["type"] for row in rows} == set(Event.TYPES)
    feed = validator(doc, "#/components/schemas/EventPage")
    assert not sorted(feed.iter_errors({"data": rows, "next": None}), key=str)
    for row in rows:  # each row's data also against its own type's schema, by name
        name = doc["components"]["schemas"]["EventOut"]["discriminator"]["mapping"][row["type"]]
        errors = list(validator(doc, name).iter_errors(row))
        assert not errors, (row["type"], [e.message for e in errors])

    verifier = Webhook(integration["secret"])  # the other integration's bodies do not verify
    bodies = [body for body in (_verified(verifier, sent) for sent in receiver.requests) if body]
    assert {body["type"] for body in bodies} == set(Event.TYPES)
    sent_headers = {name.lower() for sent in receiver.requests for name in sent.headers
                    if name.lower().startswith("webhook-")}
    for event_type, entry in doc["webhooks"].items():  # every header sent is documented
        assert sent_headers <= {p["name"] for p in entry["post"]["parameters"]}, event_type
    for body in bodies:
        errors = list(webhook_schema(doc, body["type"]).iter_errors(body))
        assert not errors, (body["type"], [e.message for e in errors])
    assert [r["type"] for r in rows if "job_id" in r["data"]] == ["coupon.issued"]
    assert [b["type"] for b in bodies if "job_id" in b["data"]] == ["coupon.issued"]


def _verified(verifier: Webhook, sent) -> dict | None:
    try:
        return verifier.verify(sent.body, sent.headers)
    except WebhookVerificationError:
        return None
