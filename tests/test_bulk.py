"""Bulk issuance: 202 with a job, codes written in chunks, CSV export; real RQ and in-process."""

from __future__ import annotations

import csv
import io
import time

import pytest
from rq import Queue, SimpleWorker

from couponsvc import bulk, codes
from couponsvc.jobs import runner
from tests.factories import Shop


def _work_off(app):
    """Run the queued jobs with a real RQ worker (burst), inside the app context."""
    connection = runner(app).redis()
    with app.app_context():
        SimpleWorker([Queue("bulk", connection=connection)], connection=connection).work(burst=True)


def _export(client, shop, **params):
    response = client.get(f"campaigns/{shop.campaign['id']}/coupons.csv", key=shop.manager,
                          query_string=params)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_bulk_issue_through_rq(client, app, monkeypatch):
    monkeypatch.setattr(bulk, "CHUNK", 400)  # several chunks, several transactions
    shop = Shop(client, max_coupons=2000)
    job = client.ok(client.post(f"campaigns/{shop.campaign['id']}/coupons/bulk", {"count": 1500},
                                key=shop.manager), 202)
    assert job["status"] == "queued" and job["requested"] == 1500
    _work_off(app)
    done = client.ok(client.get(f"jobs/{job['id']}", key=shop.manager))
    assert done["status"] == "succeeded" and done["done"] == 1500
    rows = _export(client, shop)
    assert len(rows) == 1500
    assert len({row["code"] for row in rows}) == 1500
    assert all(codes.is_valid(row["code"]) and row["status"] == "active" for row in rows)
    issued = client.events(type="coupon.issued")
    assert sum(e["data"]["count"] for e in issued if e["data"].get("job_id") == job["id"]) == 1500
    campaign = client.ok(client.get(f"campaigns/{shop.campaign['id']}"))
    assert campaign["issued"] == 1500 and campaign["sold"] == 0


def test_bulk_reserves_inventory(client):
    shop = Shop(client, max_coupons=100)
    shop.coupons(60)
    refused = client.post(f"campaigns/{shop.campaign['id']}/coupons/bulk", {"count": 41}, key=shop.manager)
    assert refused.status_code == 409 and refused.get_json()["code"] == "sold_out"
    client.ok(client.post(f"campaigns/{shop.campaign['id']}/coupons/bulk", {"count": 40},
                          key=shop.manager), 202)
    later = client.post(f"campaigns/{shop.campaign['id']}/orders", {"customer_ref": "late"})
    assert later.get_json()["code"] == "sold_out"


def test_bulk_coupons_of_an_untipped_deal_wait_for_the_tip(client, app):
    shop = Shop(client, min_group_size=2)
    job = client.ok(client.post(f"campaigns/{shop.campaign['id']}/coupons/bulk", {"count": 5},
                                key=shop.manager), 202)
    _work_off(app)
    assert client.ok(client.get(f"jobs/{job['id']}", key=shop.manager))["status"] == "succeeded"
    assert {row["status"] for row in _export(client, shop)} == {"pending"}
    shop.coupons(2)  # tips the deal
    assert {row["status"] for row in _export(client, shop)} == {"active"}
    assert len(_export(client, shop, status="active")) == 7


@pytest.mark.config(REDIS_URL=None)
def test_bulk_runs_inside_the_process_without_redis(client, app):
    shop = Shop(client)
    job = client.ok(client.post(f"campaigns/{shop.campaign['id']}/coupons/bulk", {"count": 50},
                                key=shop.manager), 202)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = client.ok(client.get(f"jobs/{job['id']}", key=shop.manager))
        if state["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.05)
    assert state["status"] == "succeeded" and state["done"] == 50


def test_a_scanner_cannot_bulk_issue(client):
    shop = Shop(client)
    refused = client.post(f"campaigns/{shop.campaign['id']}/coupons/bulk", {"count": 5}, key=shop.scanner)
    assert refused.status_code == 403 and refused.get_json()["code"] == "forbidden"
