"""Scans made offline, uploaded with POST /redemptions/batch: each item accepted, duplicate,
conflict or rejected, in the order sent; the record of conflicts and refusals; the limits."""

from __future__ import annotations

import itertools
import threading
from datetime import datetime, timedelta

import psycopg
import pytest
from sqlalchemy import select, update

from couponsvc.extensions import db
from couponsvc.models import Coupon, OfflineScan, Redemption
from tests.factories import Client, Shop, iso, now, problem
from tests.racing import plain_postgres_url, wait_until

_nonces = itertools.count(1)


@pytest.fixture
def shop(client):
    return Shop(client)


def item(coupon: dict, *, typed: bool = False, ago: timedelta = timedelta(minutes=20),
         device: str = "till-1", nonce: str | None = None, **fields) -> dict:
    """A queued scan of `coupon`, made `ago` before now (its QR, or its code `typed`)."""
    body = {"code": coupon["code"]} if typed else {"qr": coupon["qr_payload"]}
    return {**body, "scanned_at": iso(now() - ago), "device_id": device,
            "nonce": nonce or f"n-{next(_nonces)}", **fields}


def upload(client: Client, key: str, *items: dict, status: int = 200, **kw) -> list[dict]:
    answer = client.post("redemptions/batch", {"items": list(items)}, key=key, **kw)
    if status != 200:
        assert answer.status_code == status, answer.get_data(as_text=True)
        return answer.get_json()
    return client.ok(answer)["items"]


def outcomes(answers: list[dict]) -> list[tuple]:
    return [(a["status"], a["reason"]) for a in answers]


def attempts(client: Client, shop: Shop, **query) -> list[dict]:
    return client.ok(client.get("redemption-attempts", key=shop.manager, query_string=query))["data"]


def void_long_ago(client: Client, shop: Shop, app, code: str) -> None:
    """Void the coupon, as if an hour ago: before any scan of these tests."""
    client.ok(client.post(f"coupons/{code}/void", key=shop.manager))
    with app.app_context():
        db.session.execute(update(Coupon).where(Coupon.code == code).values(voided_at=now() - timedelta(hours=1)))
        db.session.commit()


def forged(qr: str) -> str:
    body, signature = qr.rsplit(".", 1)
    return f"{body}.{('A' if signature[0] != 'A' else 'B')}{signature[1:]}"


# -- accepted ------------------------------------------------------------------------------


def test_scans_are_redeemed_with_their_scan_and_upload_times(client, shop, app):
    first, second = shop.coupons(2)
    scanned = now() - timedelta(minutes=50)  # the deal's validity began an hour ago
    answers = upload(client, shop.scanner, item(first, nonce="a", ago=timedelta(minutes=50)),
                     item(second, typed=True, nonce="b", uses=1))
    assert [(a["nonce"], a["status"], a["reason"], a["code"]) for a in answers] == [
        ("a", "accepted", None, first["code"]), ("b", "accepted", None, second["code"])]
    red = client.ok(client.get(f"redemptions/{answers[0]['redemption_id']}", key=shop.manager))
    assert red["coupon_code"] == first["code"] and red["store_id"] == shop.store["id"]
    assert abs(datetime.fromisoformat(red["scanned_at"]) - scanned) < timedelta(seconds=1)
    uploaded = datetime.fromisoformat(red["uploaded_at"])
    assert uploaded == datetime.fromisoformat(red["redeemed_at"])
    assert abs(uploaded - now()) < timedelta(minutes=1)
    for coupon in (first, second):
        assert client.ok(client.get(f"coupons/{coupon['code']}"))["status"] == "redeemed"
    events = [e for e in client.events(shop.manager) if e["type"] == "coupon.redeemed"]
    assert len(events) == 2
    mine = next(e for e in events if e["data"]["redemption"]["id"] == answers[0]["redemption_id"])
    assert mine["data"]["redemption"] == {
        "id": red["id"], "store_id": shop.store["id"], "uses": 1, "device_id": "till-1",
        "redeemed_at": red["redeemed_at"], "scanned_at": red["scanned_at"], "uploaded_at": red["uploaded_at"]}
    assert mine["data"]["coupon"]["uses_left"] == 0
    assert mine["data"]["campaign"]["id"] == shop.campaign["id"]
    with app.app_context():
        rows = db.session.execute(select(Redemption.device_id, Redemption.uploaded_at)).all()
        assert len(rows) == 2 and all(row.uploaded_at is not None for row in rows)


def test_validity_is_judged_at_the_scan_time(client, shop, app):
    expired, early = shop.coupons(2)
    with app.app_context():  # the first expired ten minutes ago
        db.session.execute(update(Coupon).where(Coupon.code == expired["code"])
                           .values(valid_until=now() - timedelta(minutes=10)))
        db.session.commit()
    answers = upload(client, shop.scanner, item(expired, ago=timedelta(minutes=30)),
                     item(early, ago=timedelta(hours=3)))  # before the deal's validity began
    assert outcomes(answers) == [("accepted", None), ("rejected", "coupon_not_yet_valid")]
    late = upload(client, shop.scanner, item(expired, ago=timedelta(minutes=5)))
    assert outcomes(late) == [("conflict", "coupon_already_redeemed")]


def test_a_manager_key_uploads_with_a_store_and_a_platform_key_may_not(client, shop):
    coupon = shop.coupon()
    answers = upload(client, shop.manager, item(coupon, store_id=shop.other_store["id"]))
    assert outcomes(answers) == [("accepted", None)]
    refused = upload(client, client.platform, item(shop.coupon(), store_id=shop.store["id"]), status=403)
    assert refused["code"] == "forbidden"


def test_a_multi_use_coupon_scanned_three_times_gives_two_uses_to_the_earlier_scans(client):
    shop = Shop(client, uses_per_coupon=2)
    coupon = shop.coupon()
    answers = upload(client, shop.scanner, item(coupon, nonce="late", ago=timedelta(minutes=1)),
                     item(coupon, nonce="first", ago=timedelta(minutes=30)),
                     item(coupon, nonce="second", ago=timedelta(minutes=20)))
    assert [(a["nonce"], a["status"], a["reason"]) for a in answers] == [
        ("late", "conflict", "coupon_already_redeemed"), ("first", "accepted", None),
        ("second", "accepted", None)]
    seen = client.ok(client.get(f"coupons/{coupon['code']}"))
    assert (seen["status"], seen["uses_left"]) == ("redeemed", 0)
    many = upload(client, shop.scanner, item(shop.coupon(), uses=3))
    assert outcomes(many) == [("rejected", "insufficient_uses")]  # it never had 3 uses


def test_a_batch_of_500_distinct_coupons_is_accepted(client, shop, app):
    coupons = shop.coupons(500)
    scans = [item(coupon, typed=n % 2 == 1) for n, coupon in enumerate(coupons)]
    answers = upload(client, shop.scanner, *scans)
    assert [a["nonce"] for a in answers] == [scan["nonce"] for scan in scans]
    assert {a["status"] for a in answers} == {"accepted"} and len(answers) == 500
    assert [a["code"] for a in answers] == [coupon["code"] for coupon in coupons]
    with app.app_context():
        assert db.session.execute(select(Redemption.id)).all().__len__() == 500
        left = db.session.execute(select(Coupon.uses_left).where(Coupon.uses_left != 0)).all()
        assert left == []
    assert len([e for e in client.events(shop.manager) if e["type"] == "coupon.redeemed"]) == 500


# -- duplicate -----------------------------------------------------------------------------


def test_the_same_scans_uploaded_again_answer_duplicate_with_the_first_outcome(client, shop, app):
    good, voided = shop.coupons(2)
    void_long_ago(client, shop, app, voided["code"])
    batch = [item(good), item(voided), item(good, nonce="forged", qr=forged(good["qr_payload"]))]
    first = upload(client, shop.scanner, *batch)
    assert outcomes(first) == [("accepted", None), ("rejected", "coupon_voided"), ("rejected", "invalid_qr")]
    again = upload(client, shop.scanner, *batch)
    assert [(a["status"], a["first_status"], a["reason"], a["redemption_id"]) for a in again] == [
        ("duplicate", f["status"], f["reason"], f["redemption_id"]) for f in first]
    # another key of the merchant replays the device's queue (the till signed in again)
    other = upload(client, shop.manager, *({**b, "store_id": shop.store["id"]} for b in batch))
    assert [a["status"] for a in other] == ["duplicate"] * 3
    with app.app_context():
        assert len(db.session.execute(select(Redemption.id)).all()) == 1
        assert len(db.session.execute(select(OfflineScan.nonce)).all()) == 3
    assert len(attempts(client, shop, reason="invalid_qr")) == 1  # recorded once


def test_a_nonce_repeated_within_one_batch_is_a_duplicate(client, shop):
    coupon = shop.coupon()
    scan = item(coupon, nonce="twice")
    answers = upload(client, shop.scanner, scan, scan)
    assert [(a["status"], a["first_status"]) for a in answers] == [("accepted", None), ("duplicate", "accepted")]
    assert answers[0]["redemption_id"] == answers[1]["redemption_id"]


def test_another_scan_under_a_used_nonce_is_rejected(client, shop):
    first, second = shop.coupons(2)
    upload(client, shop.scanner, item(first, nonce="same"))
    answers = upload(client, shop.scanner, item(second, nonce="same"), item(second, nonce="same", uses=2))
    assert outcomes(answers) == [("rejected", "idempotency_key_reused"), ("rejected", "idempotency_key_reused")]
    assert client.ok(client.get(f"coupons/{second['code']}"))["status"] == "active"
    # the same nonce from another device, or of another merchant, is another scan
    assert outcomes(upload(client, shop.scanner, item(second, nonce="same", device="till-2"))) == [
        ("accepted", None)]


def test_a_batch_with_an_idempotency_key_replays_the_whole_answer(client, shop):
    batch = [item(shop.coupon())]
    headers = {"Idempotency-Key": "queue-1"}
    first = client.post("redemptions/batch", {"items": batch}, key=shop.scanner, headers=headers)
    again = client.post("redemptions/batch", {"items": batch}, key=shop.scanner, headers=headers)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.get_json() == first.get_json()
    assert first.get_json()["items"][0]["status"] == "accepted"


# -- conflict ------------------------------------------------------------------------------


def test_a_coupon_used_at_another_store_first_is_a_conflict_on_record(client, shop):
    coupon = shop.coupon()
    elsewhere = client.key(shop.merchant["id"], "scanner", store_id=shop.other_store["id"])
    client.ok(shop.redeem(coupon["code"], key=elsewhere), 201)
    answers = upload(client, shop.scanner, item(coupon, device="till-9", ago=timedelta(minutes=45)))
    assert outcomes(answers) == [("conflict", "coupon_already_redeemed")]
    assert answers[0]["redemption_id"] is None
    assert shop.other_store["name"] in answers[0]["detail"]  # where it was used, in words
    found = attempts(client, shop, reason="offline_conflict")
    assert len(found) == 1
    record = found[0]
    assert (record["coupon_code"], record["store_id"], record["device_id"], record["action"]) == (
        coupon["code"], shop.store["id"], "till-9", "batch")
    assert abs(datetime.fromisoformat(record["scanned_at"]) - (now() - timedelta(minutes=45))) < timedelta(minutes=1)
    seen = client.ok(client.get(f"coupons/{coupon['code']}"))
    assert (seen["status"], seen["uses_left"]) == ("redeemed", 0)


def test_two_stores_upload_the_same_coupon_and_the_first_upload_wins(client, shop):
    coupon = shop.coupon()
    other = client.key(shop.merchant["id"], "scanner", store_id=shop.other_store["id"])
    won = upload(client, other, item(coupon, device="b", ago=timedelta(minutes=5)))
    lost = upload(client, shop.scanner, item(coupon, device="a", ago=timedelta(minutes=50)))
    assert outcomes(won) + outcomes(lost) == [("accepted", None), ("conflict", "coupon_already_redeemed")]


def test_a_coupon_voided_after_the_scan_is_a_conflict_and_stays_voided(client, shop, app):
    coupon = shop.coupon()
    scan = item(coupon, ago=timedelta(minutes=30))
    client.ok(client.post(f"coupons/{coupon['code']}/void", {"reason": "refunded"}, key=shop.manager))
    answers = upload(client, shop.scanner, scan)
    assert outcomes(answers) == [("conflict", "coupon_voided")]
    assert [a["coupon_code"] for a in attempts(client, shop, reason="offline_conflict")] == [coupon["code"]]
    seen = client.ok(client.get(f"coupons/{coupon['code']}"))
    assert (seen["status"], seen["uses_left"]) == ("voided", 1)
    with app.app_context():
        assert db.session.execute(select(Redemption.id)).first() is None


# -- rejected ------------------------------------------------------------------------------


def test_what_could_never_be_honoured_is_rejected_with_its_reason(client, shop, app):
    good, revoked, later = shop.coupons(3)
    void_long_ago(client, shop, app, revoked["code"])
    foreign = Shop(client).coupon()
    answers = upload(
        client, shop.scanner,
        item(good, qr=forged(good["qr_payload"])),
        item(revoked),  # scanned after the void: the device's revocation list was behind
        item(foreign),
        item(later, ago=-timedelta(minutes=30)),
        item(later, store_id=shop.other_store["id"]),
        item(later, typed=True, code=later["code"][:-1] + ("A" if later["code"][-1] != "A" else "B")),
        item(later, qr="not a QR"),
    )
    assert outcomes(answers) == [
        ("rejected", "invalid_qr"), ("rejected", "coupon_voided"), ("rejected", "coupon_not_found"),
        ("rejected", "scanned_in_future"), ("rejected", "store_not_allowed"), ("rejected", "invalid_code"),
        ("rejected", "invalid_qr")]
    assert all(a["redemption_id"] is None and a["detail"] for a in answers)
    for coupon in (good, later):
        assert client.ok(client.get(f"coupons/{coupon['code']}"))["status"] == "active"
    reasons = sorted(a["reason"] for a in attempts(client, shop) if a["action"] == "batch")
    assert reasons == sorted(a["reason"] for a in answers)


def test_a_small_clock_skew_is_allowed(client, shop):
    answers = upload(client, shop.scanner, item(shop.coupon(), ago=-timedelta(minutes=2)))
    assert outcomes(answers) == [("accepted", None)]


def test_a_store_of_a_campaign_that_excludes_it_is_rejected(client):
    shop = Shop(client)
    limited = client.campaign(shop.merchant["id"], store_ids=[shop.other_store["id"]])
    coupon = client.order(limited["id"])["coupons"][0]
    answers = upload(client, shop.scanner, item(coupon))
    assert outcomes(answers) == [("rejected", "store_not_allowed")]


def test_the_reasons_are_told_in_chinese_on_request(client, shop):
    scan = item(shop.coupon(), ago=-timedelta(hours=1))
    en = upload(client, shop.scanner, scan)[0]["detail"]
    zh = upload(client, shop.scanner, {**scan, "nonce": "zh"}, headers={"Accept-Language": "zh-CN"})[0]["detail"]
    assert en.startswith("scanned at") and zh.startswith("扫码时间为")


# -- the limits and bad input ----------------------------------------------------------------


def test_more_than_500_items_is_a_validation_problem(client, shop):
    coupon = shop.coupon()
    body = {"items": [item(coupon) for _ in range(501)]}
    answer = client.post("redemptions/batch", body, key=shop.scanner)
    assert "items" in problem(answer, 422, "validation_error")["errors"]


@pytest.mark.parametrize("broken", [
    {"nonce": None}, {"device_id": ""}, {"scanned_at": "2026-05-01T12:00:00"}, {"scanned_at": "yesterday"},
    {"scanned_at": "0001-01-01T00:00:00+14:00"}, {"uses": 0}, {"uses": "1"}, {"code": "K7QM3XPA9RTM"},
    {"nonce": "x" * 101}, {"store_id": "s" * 41},
], ids=["no-nonce", "empty-device", "naive-time", "not-a-time", "year-1", "no-uses", "uses-text",
        "code-and-qr", "long-nonce", "long-store"])
def test_an_item_that_is_not_well_formed_makes_the_whole_body_invalid(client, shop, broken):
    coupon = shop.coupon()
    bad = {**item(coupon), **broken}
    bad = {name: value for name, value in bad.items() if value is not None}
    answer = client.post("redemptions/batch", {"items": [item(shop.coupon()), bad]}, key=shop.scanner)
    assert "1" in problem(answer, 422, "validation_error")["errors"]["items"]
    assert client.ok(client.get(f"coupons/{coupon['code']}"))["status"] == "active"


@pytest.mark.parametrize("body", [{}, {"items": []}, {"items": "all"}, {"items": [1]}, []])
def test_a_body_without_items_is_a_validation_problem(client, shop, body):
    problem(client.post("redemptions/batch", body, key=shop.scanner), 422, "validation_error")


def test_a_key_not_pinned_to_a_store_names_the_store_of_each_item(client, shop):
    answer = client.post("redemptions/batch", {"items": [item(shop.coupon())]}, key=shop.roaming_scanner)
    assert problem(answer, 422, "validation_error")["errors"] == {"items": {"0": {"store_id": ["Required for a key not pinned to a store."]}}}


@pytest.mark.config(LOOKUP_LIMIT_PER_KEY="3/minute")
def test_typed_codes_that_find_nothing_count_against_the_look_up_budget(client, shop):
    guesses = [item(shop.coupon(), typed=True) for _ in range(4)]
    for guess in guesses:
        guess["code"] = guess["code"][:6] + guess["code"][6:][::-1]  # mistyped or unknown
    refused = upload(client, shop.scanner, *guesses, status=429)
    assert refused["code"] == "rate_limited"
    # over budget now: even a real scan waits for the window
    assert upload(client, shop.scanner, item(shop.coupon()), status=429)["code"] == "rate_limited"


@pytest.mark.config(LOOKUP_LIMIT_PER_KEY="3/minute")
def test_qr_items_never_count_against_the_look_up_budget(client, shop):
    coupons = shop.coupons(5)
    answers = upload(client, shop.scanner, *(item(c, qr=forged(c["qr_payload"])) for c in coupons))
    assert {a["reason"] for a in answers} == {"invalid_qr"}
    assert outcomes(upload(client, shop.scanner, item(shop.coupon()))) == [("accepted", None)]


# -- a deadlock with another writer ------------------------------------------------------------


@pytest.mark.postgresql
def test_a_batch_that_postgresql_aborts_to_break_a_deadlock_runs_again(client, shop, app):
    first, second = sorted(shop.coupons(2), key=lambda coupon: coupon["code"])
    url = plain_postgres_url(app.config["SQLALCHEMY_DATABASE_URI"])
    answer = {}
    with psycopg.connect(url) as other, psycopg.connect(url, autocommit=True) as watcher:
        other.execute("SET deadlock_timeout = '20s'")  # the batch's backend finds the deadlock first
        other.execute("SELECT 1 FROM coupons WHERE code = %s FOR UPDATE", (second["code"],))
        upload_ = threading.Thread(target=lambda: answer.update(items=upload(
            client, shop.scanner, item(first), item(second))))
        upload_.start()
        wait_until(lambda: watcher.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()[0],
                   "the batch to wait for the second coupon")
        # the batch holds the first coupon and waits for the second: take the first too
        other.execute("SELECT 1 FROM coupons WHERE code = %s FOR UPDATE", (first["code"],))
        other.commit()
        upload_.join(timeout=60)
    assert outcomes(answer["items"]) == [("accepted", None), ("accepted", None)]
    with app.app_context():
        assert len(db.session.execute(select(OfflineScan.nonce)).all()) == 2
