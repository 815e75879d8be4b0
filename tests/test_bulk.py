"""Bulk issuance: 202 with a job, codes written in chunks, CSV export; real RQ and in-process."""

from __future__ import annotations

import csv
import io
import threading
import time

import pytest
from rq import Queue, SimpleWorker
from sqlalchemy import func, select

from couponsvc import bulk, codes
from couponsvc.extensions import db
from couponsvc.jobs import runner
from couponsvc.models import Coupon, Job
from tests.factories import Shop
from workers import bulk as bulk_jobs


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
    assert refused.status_code == 409 and refused.get_json()["code"] == "insufficient_stock"
    assert refused.get_json()["remaining"] == 40
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


def _coupons(app) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(Coupon)).scalar()


def test_a_bulk_job_whose_enqueue_was_lost_is_run_by_the_sweep(client, app, monkeypatch):
    """Redis restarted empty after the 202: the bulk sweep (a periodic job of every
    worker) finds the queued job and queues it again; it runs once, however often swept."""
    monkeypatch.setattr(bulk, "CHUNK", 300)
    shop = Shop(client, max_coupons=2000)
    job = client.ok(client.post(f"campaigns/{shop.campaign['id']}/coupons/bulk", {"count": 1000},
                                key=shop.manager), 202)
    runner(app).redis().flushall()  # the enqueue is lost
    _work_off(app)
    assert _coupons(app) == 0
    assert client.ok(client.get(f"jobs/{job['id']}", key=shop.manager))["status"] == "queued"

    with app.app_context():
        assert bulk_jobs.sweep() == 1
        assert bulk_jobs.sweep() == 0  # already queued under the same run id: not twice
    _work_off(app)
    done = client.ok(client.get(f"jobs/{job['id']}", key=shop.manager))
    assert done["status"] == "succeeded" and done["done"] == 1000
    with app.app_context():
        assert bulk_jobs.sweep() == 0  # a finished job is not lost
    _work_off(app)
    assert len(_export(client, shop)) == _coupons(app) == 1000
    assert sum(e["data"]["count"] for e in client.events(type="coupon.issued")
               if e["data"].get("job_id") == job["id"]) == 1000


def test_a_bulk_job_whose_worker_died_is_taken_over_after_its_lease(client, app, monkeypatch):
    monkeypatch.setattr(bulk, "CHUNK", 300)
    shop = Shop(client, max_coupons=2000)
    job = client.ok(client.post(f"campaigns/{shop.campaign['id']}/coupons/bulk", {"count": 1000},
                                key=shop.manager), 202)
    runner(app).redis().flushall()
    with app.app_context():  # a run claimed it, wrote nothing, and died: its lease ran out
        db.session.get(Job, job["id"]).status = "running"
        db.session.get(Job, job["id"]).claims = 1
        db.session.get(Job, job["id"]).lease_until = bulk.utcnow() - bulk.LEASE
        db.session.commit()
        assert bulk.lost_jobs(db.session) == [(job["id"], 1)]
        assert bulk_jobs.sweep() == 1
    _work_off(app)
    done = client.ok(client.get(f"jobs/{job['id']}", key=shop.manager))
    assert done["status"] == "succeeded" and done["done"] == 1000
    assert len(_export(client, shop)) == 1000


def test_a_second_run_while_the_first_holds_the_job_issues_nothing(client, app, monkeypatch):
    """Two runs of one job at once (the sweep's and the original, say): the first claims
    it; the second, started while the first is between claim and first chunk, does nothing."""
    monkeypatch.setattr(bulk, "CHUNK", 300)
    shop = Shop(client, max_coupons=2000)
    job = client.ok(client.post(f"campaigns/{shop.campaign['id']}/coupons/bulk", {"count": 1000},
                                key=shop.manager), 202)
    first_started, second_done = threading.Event(), threading.Event()
    write_chunk = bulk._write_chunk

    def paused(session, template, size):
        if threading.current_thread().name == "first-run" and not first_started.is_set():
            first_started.set()
            assert second_done.wait(60)
        return write_chunk(session, template, size)

    monkeypatch.setattr(bulk, "_write_chunk", paused)

    def first_run():
        with app.app_context():
            bulk.issue_bulk(db.session, job["id"])
            db.session.remove()

    first = threading.Thread(target=first_run, name="first-run")
    first.start()
    try:
        assert first_started.wait(60)
        with app.app_context():
            bulk.issue_bulk(db.session, job["id"])
            db.session.remove()
    finally:
        second_done.set()
        first.join(60)
    done = client.ok(client.get(f"jobs/{job['id']}", key=shop.manager))
    assert done["status"] == "succeeded" and done["done"] == 1000
    assert len(_export(client, shop)) == _coupons(app) == 1000
    campaign = client.ok(client.get(f"campaigns/{shop.campaign['id']}"))
    assert campaign["issued"] == 1000


@pytest.mark.config(BULK_MAX=100)
def test_bulk_count_above_the_bulk_max_setting_is_refused(client):
    shop = Shop(client)
    refused = client.post(f"campaigns/{shop.campaign['id']}/coupons/bulk", {"count": 101}, key=shop.manager)
    assert refused.status_code == 422
    problem = refused.get_json()
    assert problem["code"] == "validation_error" and "100" in problem["detail"]
    assert problem["errors"] == {"count": ["Must be at most 100."]}
    client.ok(client.post(f"campaigns/{shop.campaign['id']}/coupons/bulk", {"count": 100},
                          key=shop.manager), 202)
    assert client.ok(client.get(f"campaigns/{shop.campaign['id']}"))["issued"] == 100
