"""`Idempotency-Key`: a retried POST returns the first answer and changes nothing.

A replay is authorised like a first request, belongs to the API key that made it, and
keeps no secret readable in the table.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select, text, update

from couponsvc import codes
from couponsvc.extensions import db
from couponsvc.models import Coupon, IdempotencyRecord, Order, Redemption
from couponsvc.qr_keys import data_keys
from couponsvc.timeutil import utcnow
from tests.factories import Shop, in_db, problem
from tests.racing import Request, tally, wait_until
from tests.test_races import _cluster_holder, cluster  # noqa: F401 (fixtures)


def _key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}


def _count(client, model) -> int:
    with client.app.app_context():
        n = db.session.execute(select(func.count()).select_from(model)).scalar_one()
        db.session.remove()
    return n


def test_a_repeated_order_returns_the_first_answer_and_sells_once(client):
    shop = Shop(client)
    path = f"campaigns/{shop.campaign['id']}/orders"
    body = {"customer_ref": "alice", "quantity": 3, "payment_ref": "pay-1"}
    first = client.post(path, body, headers=_key("order-alice-1"))
    assert first.status_code == 201
    for _ in range(2):
        again = client.post(path, body, headers=_key("order-alice-1"))
        assert again.status_code == 201
        assert again.get_data() == first.get_data()
        assert again.mimetype == first.mimetype == "application/json"
    campaign = client.ok(client.get(f"campaigns/{shop.campaign['id']}"))
    assert (campaign["sold"], campaign["issued"]) == (3, 3)
    assert _count(client, Order) == 1
    assert _count(client, Coupon) == 3
    assert len(client.events(type="coupon.issued")) == 1


def test_the_same_key_with_another_body_is_refused_and_changes_nothing(client):
    shop = Shop(client)
    path = f"campaigns/{shop.campaign['id']}/orders"
    client.ok(client.post(path, {"customer_ref": "alice"}, headers=_key("k-1")), 201)
    problem(client.post(path, {"customer_ref": "alice", "quantity": 2}, headers=_key("k-1")),
            409, "idempotency_key_reused")
    problem(client.post(path, {"customer_ref": "bob"}, headers=_key("k-1")),
            409, "idempotency_key_reused")
    assert client.ok(client.get(f"campaigns/{shop.campaign['id']}"))["sold"] == 1
    assert _count(client, Order) == 1


def test_the_same_key_on_another_path_is_refused(client):
    shop = Shop(client)
    other = client.campaign(shop.merchant["id"])
    body = {"customer_ref": "alice"}
    client.ok(client.post(f"campaigns/{shop.campaign['id']}/orders", body, headers=_key("k-2")), 201)
    problem(client.post(f"campaigns/{other['id']}/orders", body, headers=_key("k-2")),
            409, "idempotency_key_reused")
    assert client.ok(client.get(f"campaigns/{other['id']}"))["sold"] == 0


def test_a_refused_redeem_replays_the_same_refusal(client):
    shop = Shop(client)
    code = shop.coupon()["code"]
    client.ok(client.post(f"coupons/{code}/void"))
    body = {"code": code}
    first = client.post("redemptions", body, key=shop.scanner, headers=_key("scan-1"))
    problem(first, 422, "coupon_voided")
    again = client.post("redemptions", body, key=shop.scanner, headers=_key("scan-1"))
    problem(again, 422, "coupon_voided")
    assert again.get_data() == first.get_data()


def test_a_refusal_is_replayed_even_when_the_coupon_has_changed_since(client):
    shop = Shop(client, min_group_size=2)
    code = shop.coupon()["code"]
    first = client.post("redemptions", {"code": code}, key=shop.scanner, headers=_key("scan-2"))
    problem(first, 422, "coupon_pending")
    shop.coupon()  # tips the deal: the coupon is active now
    again = client.post("redemptions", {"code": code}, key=shop.scanner, headers=_key("scan-2"))
    assert (again.status_code, again.get_data()) == (first.status_code, first.get_data())
    assert client.ok(client.get(f"coupons/{code}"))["uses_left"] == 1
    client.ok(client.post("redemptions", {"code": code}, key=shop.scanner,
                          headers=_key("scan-3")), 201)


def test_a_retried_redeem_after_success_replays_the_201(client):
    shop = Shop(client)
    code = shop.coupon()["code"]
    body = {"code": code, "device_id": "till-7"}
    first = client.post("redemptions", body, key=shop.scanner, headers=_key("scan-ok"))
    assert first.status_code == 201
    retried = client.post("redemptions", body, key=shop.scanner, headers=_key("scan-ok"))
    assert retried.status_code == 201
    assert retried.get_data() == first.get_data()
    coupon = client.ok(client.get(f"coupons/{code}"))
    assert len(coupon["redemptions"]) == 1
    assert coupon["redemptions"][0]["id"] == first.get_json()["id"]
    assert _count(client, Redemption) == 1
    assert len(client.events(type="coupon.redeemed")) == 1
    # Without the key the same scan is a second redeem, and refused.
    problem(client.post("redemptions", body, key=shop.scanner), 409, "coupon_already_redeemed")


def test_a_retried_redeem_of_a_multi_use_coupon_takes_one_use(client):
    shop = Shop(client, uses_per_coupon=3)
    code = shop.coupon()["code"]
    for _ in range(3):
        client.ok(client.post("redemptions", {"code": code}, key=shop.scanner,
                              headers=_key("scan-multi")), 201)
    assert client.ok(client.get(f"coupons/{code}"))["uses_left"] == 2


def test_a_retried_reversal_replays_the_first_answer(client):
    shop = Shop(client)
    code = shop.coupon()["code"]
    redemption = client.ok(shop.redeem(code), 201)
    path = f"redemptions/{redemption['id']}/reverse"
    first = client.post(path, {"reason": "mistake"}, key=shop.scanner, headers=_key("undo-1"))
    assert first.status_code == 200
    again = client.post(path, {"reason": "mistake"}, key=shop.scanner, headers=_key("undo-1"))
    assert (again.status_code, again.get_data()) == (200, first.get_data())
    assert client.ok(client.get(f"coupons/{code}"))["uses_left"] == 1
    assert len(client.events(type="coupon.redemption_reversed")) == 1
    problem(client.post(path, {"reason": "mistake"}, key=shop.scanner),
            409, "redemption_already_reversed")


def test_keys_are_scoped_per_merchant(client):
    first, second = Shop(client), Shop(client)
    answers = []
    for shop in (first, second):
        code = shop.coupon()["code"]
        response = client.post("redemptions", {"code": code}, key=shop.scanner,
                               headers=_key("till-0001"))
        answers.append(client.ok(response, 201))
        assert client.ok(client.get(f"coupons/{code}"))["status"] == "redeemed"
    assert answers[0]["id"] != answers[1]["id"]
    assert answers[0]["store_id"] == first.store["id"]
    assert answers[1]["store_id"] == second.store["id"]
    assert _count(client, Redemption) == 2


def test_the_same_key_for_a_merchant_and_the_platform_does_not_collide(client):
    shop = Shop(client)
    store = client.ok(client.post(f"merchants/{shop.merchant['id']}/stores", {"name": "A"},
                                  key=shop.manager, headers=_key("same")), 201)
    order = client.ok(client.post(f"campaigns/{shop.campaign['id']}/orders",
                                  {"customer_ref": "x"}, headers=_key("same")), 201)
    assert store["id"] != order["id"]


def test_a_key_older_than_a_day_is_treated_as_new(client):
    shop = Shop(client)
    path = f"campaigns/{shop.campaign['id']}/orders"
    first = client.ok(client.post(path, {"customer_ref": "alice"}, headers=_key("old")), 201)
    in_db(client.app, update(IdempotencyRecord).where(IdempotencyRecord.key == "old")
          .values(created_at=utcnow() - timedelta(hours=25)))
    second = client.ok(client.post(path, {"customer_ref": "alice"}, headers=_key("old")), 201)
    assert second["id"] != first["id"]
    assert client.ok(client.get(f"campaigns/{shop.campaign['id']}"))["sold"] == 2
    # The new answer is the one remembered now.
    third = client.post(path, {"customer_ref": "alice"}, headers=_key("old"))
    assert third.get_json()["id"] == second["id"]


def test_an_expired_key_may_come_back_with_another_body(client):
    shop = Shop(client)
    path = f"campaigns/{shop.campaign['id']}/orders"
    client.ok(client.post(path, {"customer_ref": "alice"}, headers=_key("old-2")), 201)
    in_db(client.app, update(IdempotencyRecord).where(IdempotencyRecord.key == "old-2")
          .values(created_at=utcnow() - timedelta(hours=24, minutes=1)))
    client.ok(client.post(path, {"customer_ref": "bob"}, headers=_key("old-2")), 201)


def test_a_key_just_under_a_day_old_still_replays(client):
    shop = Shop(client)
    path = f"campaigns/{shop.campaign['id']}/orders"
    first = client.ok(client.post(path, {"customer_ref": "alice"}, headers=_key("young")), 201)
    in_db(client.app, update(IdempotencyRecord).where(IdempotencyRecord.key == "young")
          .values(created_at=utcnow() - timedelta(hours=23, minutes=50)))
    again = client.ok(client.post(path, {"customer_ref": "alice"}, headers=_key("young")), 201)
    assert again["id"] == first["id"]


def test_a_validation_error_is_not_remembered(client):
    shop = Shop(client)
    path = f"campaigns/{shop.campaign['id']}/orders"
    problem(client.post(path, {"customer_ref": "alice", "quantity": 0}, headers=_key("fix-me")),
            422, "validation_error")
    client.ok(client.post(path, {"customer_ref": "alice", "quantity": 1}, headers=_key("fix-me")),
              201)


def test_an_oversized_key_is_refused(client):
    shop = Shop(client)
    response = client.post(f"campaigns/{shop.campaign['id']}/orders", {"customer_ref": "a"},
                           headers=_key("k" * 300))
    problem(response, 400, "bad_request")
    assert client.ok(client.get(f"campaigns/{shop.campaign['id']}"))["sold"] == 0


# ------------------------------------------------------ authorised like a first request --
def _new_key(client, shop, role: str, key: str | None = None, **body) -> dict:
    """A key of the shop's merchant, made by its manager; `{id, key, ...}`."""
    return client.ok(client.post(f"merchants/{shop.merchant['id']}/api-keys",
                                 {"role": role, "label": f"{role} key", **body}, key=key or shop.manager), 201)


def test_a_scanner_sending_a_managers_key_and_body_is_refused_for_its_role(client):
    shop = Shop(client)
    path = f"merchants/{shop.merchant['id']}/api-keys"
    body = {"role": "manager", "label": "new manager"}
    made = client.ok(client.post(path, body, key=shop.manager, headers=_key("new-key-1")), 201)
    assert made["key"].startswith("cpn_manager_")
    refused = client.post(path, body, key=shop.scanner, headers=_key("new-key-1"))
    problem(refused, 403, "forbidden")
    assert made["key"] not in refused.get_data(as_text=True)
    keys = client.ok(client.get(f"merchants/{shop.merchant['id']}/api-keys", key=shop.manager))["data"]
    assert [k["label"] for k in keys].count("new manager") == 1


def test_a_revoked_key_gets_401_for_what_it_sent_before(client):
    shop = Shop(client)
    scanner = _new_key(client, shop, "scanner")
    manager = _new_key(client, shop, "manager")
    code = shop.coupon()["code"]
    scan = {"code": code, "store_id": shop.store["id"]}
    client.ok(client.post("redemptions", scan, key=scanner["key"], headers=_key("scan-r")), 201)
    store_path = f"merchants/{shop.merchant['id']}/stores"
    client.ok(client.post(store_path, {"name": "B"}, key=manager["key"], headers=_key("store-r")), 201)
    for made in (scanner, manager):
        client.ok(client.delete(f"api-keys/{made['id']}", key=shop.manager))
    problem(client.post("redemptions", scan, key=scanner["key"], headers=_key("scan-r")),
            401, "unauthenticated")
    problem(client.post(store_path, {"name": "B"}, key=manager["key"], headers=_key("store-r")),
            401, "unauthenticated")
    # Whatever it sends: a new key, another body.
    problem(client.post("redemptions", {"code": code}, key=scanner["key"], headers=_key("scan-new")),
            401, "unauthenticated")


def test_another_key_sending_the_same_header_makes_a_new_request(client):
    shop = Shop(client, uses_per_coupon=2)
    code = shop.coupon()["code"]
    scan = {"code": code, "store_id": shop.store["id"]}
    first = client.ok(client.post("redemptions", scan, key=shop.roaming_scanner,
                                  headers=_key("till-1")), 201)
    other = client.post("redemptions", scan, key=shop.scanner, headers=_key("till-1"))
    assert other.headers.get("Idempotent-Replayed") is None
    second = client.ok(other, 201)
    assert second["id"] != first["id"]
    assert (first["coupon"]["uses_left"], second["coupon"]["uses_left"]) == (1, 0)
    assert _count(client, Redemption) == 2


# ------------------------------------------------------------- no secret at rest --
def test_stored_answers_keep_no_secret_in_the_clear_and_replay_it_once_decrypted(client, app):
    shop = Shop(client)
    made = client.post(f"merchants/{shop.merchant['id']}/api-keys", {"role": "scanner", "label": "t"},
                       key=shop.manager, headers=_key("key-once"))
    hook = client.post(f"merchants/{shop.merchant['id']}/integrations",
                       {"adapter": "webhook", "config": {"url": "https://erp.example.com/hook"},
                        "events": ["coupon.redeemed"]}, key=shop.manager, headers=_key("hook-once"))
    secrets = [client.ok(made, 201)["key"], client.ok(hook, 201)["secret"]]
    assert secrets[0].startswith("cpn_") and secrets[1].startswith("whsec_")
    with app.app_context():
        rows = db.session.execute(select(IdempotencyRecord.__table__)).all()
        db.session.remove()
    assert len(rows) == 2
    stored = " ".join(str(value) for row in rows for value in row)
    assert "cpn_" not in stored and "whsec_" not in stored
    for secret in secrets:
        assert secret not in stored
    for first, path, body, key in (
            (made, f"merchants/{shop.merchant['id']}/api-keys", {"role": "scanner", "label": "t"}, "key-once"),
            (hook, f"merchants/{shop.merchant['id']}/integrations",
             {"adapter": "webhook", "config": {"url": "https://erp.example.com/hook"},
              "events": ["coupon.redeemed"]}, "hook-once")):
        again = client.post(path, body, key=shop.manager, headers=_key(key))
        assert (again.status_code, again.get_data()) == (201, first.get_data())
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.headers.get("Location") == first.headers.get("Location")


# ------------------------------------------------------------ the idempotent redeem --
def test_an_idempotent_redeem_replays_its_answer_though_the_coupon_changed_since(client, app):
    shop = Shop(client, uses_per_coupon=3)
    code = shop.coupon()["code"]
    body = {"code": code, "uses": 1, "device_id": "till-9"}
    first = client.post("redemptions", body, key=shop.scanner, headers=_key("scan-same"))
    assert client.ok(first, 201)["coupon"]["uses_left"] == 2
    client.ok(shop.redeem(code), 201)  # another scan: the coupon has 1 use left now
    again = client.post("redemptions", body, key=shop.scanner, headers=_key("scan-same"))
    assert (again.status_code, again.get_data()) == (201, first.get_data())
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert client.ok(client.get(f"coupons/{code}"))["uses_left"] == 1
    assert _count(client, Redemption) == 2
    with app.app_context():
        record = db.session.execute(select(IdempotencyRecord)).scalar_one()
        dialect = db.engine.dialect.name
        db.session.remove()
    # PostgreSQL stores the outcome with the redemption, in its one statement.
    assert record.renderer == ("redemption" if dialect == "postgresql" else None)
    problem(client.post("redemptions", {**body, "uses": 2}, key=shop.scanner, headers=_key("scan-same")),
            409, "idempotency_key_reused")


@pytest.mark.postgresql
def test_concurrent_idempotent_redeems_of_a_multi_use_coupon_redeem_once(app, client, cluster):  # noqa: F811
    """The tills all pass the statement's "no record yet" check; the record's primary key
    lets one of them write, and the others' statements fail whole and replay its answer."""
    shop = Shop(client, uses_per_coupon=5)
    coupon = shop.coupon()
    request = Request("POST", "redemptions", shop.scanner, {"code": coupon["code"], "device_id": "till-1"},
                      {"Idempotency-Key": "race-multi-1"})

    replies = cluster.race([request] * 20)

    redemptions = cluster.pages("redemptions", shop.manager, code=coupon["code"])
    assert len(redemptions) == 1, redemptions
    assert cluster.ok(cluster.get(f"coupons/{coupon['code']}", shop.manager))["uses_left"] == 4
    assert tally(replies) == {(201, None): 20}, [r for r in replies if r.status != 201][:3]
    assert len({r.text for r in replies}) == 1
    assert replies[0].json["id"] == redemptions[0]["id"]
    assert cluster.pages("redemption-attempts", shop.manager, code=coupon["code"]) == []


@pytest.mark.postgresql
def test_a_redeem_that_meets_its_key_claimed_meanwhile_writes_nothing(client, app):
    """The statement found no record, redeemed, then met the key's record committed by
    another request: the whole statement fails (no redemption, no event) and the request
    answers as a replay would, here 409 for another body. Deterministic: the other
    request is a transaction this test holds open until the redeem waits on its row."""
    shop = Shop(client, uses_per_coupon=2)
    code = shop.coupon()["code"]
    scanner = _new_key(client, shop, "scanner", store_id=shop.store["id"])
    with app.app_context():
        holder = db.engine.connect()
        held = holder.begin()
        holder.execute(insert(IdempotencyRecord.__table__).values(
            api_key_id=scanner["id"], key="held-1", request_hash="another body", status_code=201,
            headers="{}", body=data_keys().encrypt("{}"), renderer=None, created_at=utcnow()))
        answer = {}
        scanning = threading.Thread(target=lambda: answer.setdefault("response", client.post(
            "redemptions", {"code": code}, key=scanner["key"], headers=_key("held-1"))))
        scanning.start()

        def redeem_waits_on_the_record() -> bool:
            with db.engine.connect() as probe:
                return probe.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND query LIKE '%idempotency_keys%'")).scalar_one() > 0

        try:
            wait_until(redeem_waits_on_the_record, "the redeem to wait on the held record")
        finally:
            held.commit()
            holder.close()
        scanning.join(timeout=120)
        db.session.remove()
    problem(answer["response"], 409, "idempotency_key_reused")
    assert client.ok(client.get(f"coupons/{code}"))["uses_left"] == 2
    assert _count(client, Redemption) == 0
    assert client.events(type="coupon.redeemed") == []


@pytest.mark.config(LOOKUP_LIMIT_PER_KEY="3/hour")
def test_an_idempotent_miss_counts_once_against_the_guessing_budget(client):
    """A refused idempotent redeem is looked up once: the statement's refusal is what is
    stored, the lookup is not run again to store it (that would halve the budget)."""
    shop = Shop(client)
    for n in range(3):
        problem(client.post("redemptions", {"code": codes.generate()}, key=shop.scanner,
                            headers=_key(f"guess-{n}")), 404, "coupon_not_found")
    problem(client.post("redemptions", {"code": codes.generate()}, key=shop.scanner,
                        headers=_key("guess-3")), 429, "rate_limited")


def test_a_retry_with_the_same_body_spelled_otherwise_is_a_replay(client):
    """The same JSON with its members in another order and other spacing is the same
    request: a client library may serialise a retry differently."""
    shop = Shop(client)
    code = shop.coupon()["code"]
    first = client.post("redemptions", data=f'{{"code": "{code}", "device_id": "till-1"}}',
                        content_type="application/json", key=shop.scanner, headers=_key("spelled-1"))
    again = client.post("redemptions", data=f'{{ "device_id":"till-1",\n "code":"{code}" }}',
                        content_type="application/json", key=shop.scanner, headers=_key("spelled-1"))
    assert (again.status_code, again.get_data()) == (201, first.get_data())
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _count(client, Redemption) == 1


def test_an_expired_key_redeems_again(client):
    """On PostgreSQL the one statement meets the expired record and changes nothing; the
    request is run again rather than answering (and storing) a refusal it did not earn."""
    shop = Shop(client, uses_per_coupon=3)
    body = {"code": shop.coupon()["code"]}
    first = client.ok(client.post("redemptions", body, key=shop.scanner, headers=_key("old-r")), 201)
    in_db(client.app, update(IdempotencyRecord).where(IdempotencyRecord.key == "old-r")
          .values(created_at=utcnow() - timedelta(hours=25)))
    second = client.ok(client.post("redemptions", body, key=shop.scanner, headers=_key("old-r")), 201)
    assert second["id"] != first["id"]
    assert second["coupon"]["uses_left"] == 1
    again = client.post("redemptions", body, key=shop.scanner, headers=_key("old-r"))
    assert (again.get_json()["id"], again.headers["Idempotent-Replayed"]) == (second["id"], "true")
    assert _count(client, Redemption) == 2
