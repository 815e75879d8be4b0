"""Small factories that build objects through the public API, as a client would."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask

from couponsvc.extensions import db
from couponsvc.outbox.positions import assign_positions, unpositioned_count
from couponsvc.principal import create_key

_counter = itertools.count(1)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def now() -> datetime:
    return datetime.now(UTC)


class Client:
    """The Flask test client with API keys and one-line helpers for the common objects."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.http = app.test_client()
        with app.app_context():
            self.platform = create_key(db.session, role="platform", label="tests").secret
            db.session.commit()

    # plain HTTP -------------------------------------------------------------------------
    def request(self, method: str, path: str, key: str | None = "platform", **kwargs):
        headers = dict(kwargs.pop("headers", {}) or {})
        if key == "platform":
            key = self.platform
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return self.http.open(path if path.startswith("/") else f"/api/v1/{path}", method=method,
                              headers=headers, **kwargs)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, json=None, **kw):
        return self.request("POST", path, json=json, **kw)

    def patch(self, path, json=None, **kw):
        return self.request("PATCH", path, json=json, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def events(self, key: str | None = "platform", **query) -> list[dict]:
        """Every event the key may see, all pages, once the outbox has numbered them.

        On PostgreSQL an event gets its position only when every older writing
        transaction of the cluster has ended; another process's writer can delay
        that briefly, so wait (boundedly) until nothing is left unnumbered.
        """
        with self.app.app_context():
            deadline = time.monotonic() + 20
            while unpositioned_count(db.session) and time.monotonic() < deadline:
                assign_positions(db.session)
                db.session.commit()
                time.sleep(0.05)
            db.session.remove()
        seen, after = [], None
        while True:
            params = {**query, "limit": 500, **({"after": after} if after else {})}
            page = self.ok(self.get("events", key=key, query_string=params))
            seen.extend(page["data"])
            if page["next"] is None:
                return seen
            after = page["next"]

    def ok(self, response, status: int = 200) -> dict[str, Any]:
        assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
        return response.get_json()

    # objects ------------------------------------------------------------------------------
    def merchant(self, **fields) -> dict:
        body = {"name": f"商户 {next(_counter)}", "city": "赣州", **fields}
        return self.ok(self.post("merchants", body), 201)

    def store(self, merchant_id: str, **fields) -> dict:
        body = {"name": f"门店 {next(_counter)}", "address": "文清路 1 号", **fields}
        return self.ok(self.post(f"merchants/{merchant_id}/stores", body), 201)

    def key(self, merchant_id: str, role: str, store_id: str | None = None) -> str:
        body = {"role": role, "label": f"{role} {next(_counter)}"}
        if store_id:
            body["store_id"] = store_id
        return self.ok(self.post(f"merchants/{merchant_id}/api-keys", body), 201)["key"]

    def campaign(self, merchant_id: str, publish: bool = True, **fields) -> dict:
        start = now()
        body = {
            "merchant_id": merchant_id, "title": "双人牛肉面套餐", "price": 3990, "list_price": 6800,
            "sales_start": iso(start - timedelta(hours=1)), "sales_end": iso(start + timedelta(days=7)),
            "valid_from": iso(start - timedelta(hours=1)), "valid_until": iso(start + timedelta(days=30)),
            **fields,
        }
        campaign = self.ok(self.post("campaigns", body), 201)
        if publish:
            campaign = self.ok(self.post(f"campaigns/{campaign['id']}/publish"))
        return campaign

    def order(self, campaign_id: str, quantity: int = 1, customer_ref: str | None = None, **kw) -> dict:
        body = {"customer_ref": customer_ref or f"buyer-{next(_counter)}", "quantity": quantity,
                "payment_ref": f"pay-{next(_counter)}"}
        return self.ok(self.post(f"campaigns/{campaign_id}/orders", body, **kw), 201)


class Shop:
    """A merchant with a store, its keys and a live deal: the usual scene at a till."""

    def __init__(self, client: Client, **campaign_fields) -> None:
        self.client = client
        self.merchant = client.merchant()
        self.store = client.store(self.merchant["id"])
        self.other_store = client.store(self.merchant["id"])
        self.manager = client.key(self.merchant["id"], "manager")
        self.scanner = client.key(self.merchant["id"], "scanner", store_id=self.store["id"])
        self.roaming_scanner = client.key(self.merchant["id"], "scanner")
        self.campaign = client.campaign(self.merchant["id"], **campaign_fields)

    def coupons(self, quantity: int = 1, **kw) -> list[dict]:
        return self.client.order(self.campaign["id"], quantity, **kw)["coupons"]

    def coupon(self, **kw) -> dict:
        return self.coupons(1, **kw)[0]

    def redeem(self, code: str | None = None, key: str | None = None, **body):
        if code is not None:
            body["code"] = code
        return self.client.post("redemptions", body, key=key or self.scanner)


PROBLEM_MEMBERS = ("type", "title", "status", "detail", "code")


def problem(response, status: int, code: str) -> dict[str, Any]:
    """Assert an RFC 9457 problem+json answer with `status` and machine `code`; return its body."""
    text = response.get_data(as_text=True)
    assert response.status_code == status, (response.status_code, text)
    assert response.mimetype == "application/problem+json", (response.content_type, text)
    body = response.get_json(force=True)
    missing = [member for member in PROBLEM_MEMBERS if member not in body]
    assert not missing, (missing, body)
    assert body["status"] == status, body
    assert body["code"] == code, body
    assert all(isinstance(body[member], str) and body[member]
               for member in ("type", "title", "detail", "code")), body
    return body


def in_db(app: Flask, *statements) -> None:
    """Run SQL statements in the app's database and commit (time travel for tests)."""
    with app.app_context():
        for statement in statements:
            db.session.execute(statement)
        db.session.commit()
