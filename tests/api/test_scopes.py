"""Who may see and do what: roles, merchants, stores, revoked keys."""

from __future__ import annotations

import pytest

from tests.factories import Shop, problem


@pytest.fixture
def shops(client):
    return Shop(client), Shop(client)


def test_a_scanner_cannot_reach_another_merchants_coupon(client, shops):
    mine, theirs = shops
    code = theirs.coupon()["code"]
    problem(client.post("redemptions/validate", {"code": code}, key=mine.scanner),
            404, "coupon_not_found")
    problem(mine.redeem(code), 404, "coupon_not_found")
    problem(mine.redeem(qr=theirs.coupon()["qr_payload"]), 404, "coupon_not_found")
    problem(client.get(f"coupons/{code}", key=mine.scanner), 404, "coupon_not_found")
    # It is untouched, and still redeems at its own merchant.
    assert client.ok(client.get(f"coupons/{code}"))["status"] == "active"
    client.ok(theirs.redeem(code), 201)


def test_a_manager_cannot_read_another_merchants_objects(client, shops):
    mine, theirs = shops
    theirs.coupon()
    for path in (f"campaigns/{theirs.campaign['id']}", f"campaigns/{theirs.campaign['id']}/stats",
                 f"merchants/{theirs.merchant['id']}", f"merchants/{theirs.merchant['id']}/stores",
                 f"merchants/{theirs.merchant['id']}/api-keys"):
        problem(client.get(path, key=mine.manager), 404, "not_found")
    listed = client.ok(client.get("campaigns", key=mine.manager))["data"]
    assert [c["id"] for c in listed] == [mine.campaign["id"]]
    filtered = client.ok(client.get(f"campaigns?merchant_id={theirs.merchant['id']}",
                                    key=mine.manager))
    assert filtered["data"] == []


def test_a_manager_cannot_change_another_merchants_objects(client, shops):
    mine, theirs = shops
    campaign_id = theirs.campaign["id"]
    problem(client.patch(f"campaigns/{campaign_id}", {"title": "mine now"}, key=mine.manager),
            404, "not_found")
    problem(client.post(f"campaigns/{campaign_id}/pause", key=mine.manager), 404, "not_found")
    problem(client.post(f"merchants/{theirs.merchant['id']}/stores", {"name": "x"},
                        key=mine.manager), 404, "not_found")
    code = theirs.coupon()["code"]
    problem(client.post(f"coupons/{code}/void", key=mine.manager), 404, "coupon_not_found")
    campaign = client.ok(client.get(f"campaigns/{campaign_id}"))
    assert (campaign["title"], campaign["status"]) == (theirs.campaign["title"], "active")
    assert client.ok(client.get(f"coupons/{code}"))["status"] == "active"


def test_events_of_a_manager_are_its_merchants_only(client, shops):
    mine, theirs = shops
    mine.coupon()
    theirs.coupon()
    everything = client.events()
    assert {e["merchant_id"] for e in everything} >= {mine.merchant["id"], theirs.merchant["id"]}
    own = client.events(key=mine.manager)
    assert own, "a manager sees its own merchant's events"
    assert {e["merchant_id"] for e in own} == {mine.merchant["id"]}
    assert len(own) == sum(1 for e in everything if e["merchant_id"] == mine.merchant["id"])


def test_scanner_may_not_sell_void_or_read_stats(client, shops):
    mine, _ = shops
    code = mine.coupon()["code"]
    campaign_id = mine.campaign["id"]
    for scanner in (mine.scanner, mine.roaming_scanner):
        problem(client.post(f"campaigns/{campaign_id}/orders", {"customer_ref": "a"}, key=scanner),
                403, "forbidden")
        problem(client.post(f"coupons/{code}/void", key=scanner), 403, "forbidden")
        problem(client.get(f"campaigns/{campaign_id}/stats", key=scanner), 403, "forbidden")
        problem(client.get("events", key=scanner), 403, "forbidden")
    assert client.ok(client.get(f"coupons/{code}"))["status"] == "active"
    assert client.ok(client.get(f"campaigns/{campaign_id}"))["sold"] == 1


def test_manager_may_not_sell_either(client, shops):
    mine, _ = shops
    problem(client.post(f"campaigns/{mine.campaign['id']}/orders", {"customer_ref": "a"},
                        key=mine.manager), 403, "forbidden")


def test_a_scanner_may_read_validate_and_redeem_its_merchants_coupon(client, shops):
    mine, _ = shops
    code = mine.coupon()["code"]
    assert client.ok(client.get(f"coupons/{code}", key=mine.scanner))["code"] == code
    assert client.ok(client.post("redemptions/validate", {"code": code}, key=mine.scanner))["ok"]
    client.ok(mine.redeem(code), 201)


def test_a_store_pinned_scanner_cannot_claim_another_store(client, shops):
    mine, _ = shops
    code = mine.coupon()["code"]
    problem(mine.redeem(code, store_id=mine.other_store["id"]), 422, "store_not_allowed")
    assert client.ok(client.get(f"coupons/{code}"))["uses_left"] == 1
    redemption = client.ok(mine.redeem(code, store_id=mine.store["id"]), 201)
    assert redemption["store_id"] == mine.store["id"]


def test_a_pinned_scanner_redeems_at_its_own_store_without_naming_it(client, shops):
    mine, _ = shops
    redemption = client.ok(mine.redeem(mine.coupon()["code"]), 201)
    assert redemption["store_id"] == mine.store["id"]


def test_a_scanner_cannot_redeem_at_another_merchants_store(client, shops):
    mine, theirs = shops
    code = mine.coupon()["code"]
    refused = problem(mine.redeem(code, key=mine.roaming_scanner, store_id=theirs.store["id"]),
                      422, "store_not_allowed")
    # The same answer as for a store that does not exist: nothing says theirs does.
    made_up = problem(mine.redeem(code, key=mine.roaming_scanner, store_id="sto_made_up"),
                      422, "store_not_allowed")
    assert refused["detail"] == made_up["detail"]
    assert client.ok(client.get(f"coupons/{code}"))["uses_left"] == 1


def test_a_roaming_scanner_cannot_redeem_another_merchants_coupon_at_its_store(client, shops):
    """Both the coupon and the store are theirs: only the coupon's merchant stops it."""
    mine, theirs = shops
    coupon = theirs.coupon()
    for scan in ({"code": coupon["code"]}, {"qr": coupon["qr_payload"]}):
        problem(mine.redeem(key=mine.roaming_scanner, store_id=theirs.store["id"], **scan),
                404, "coupon_not_found")
    problem(mine.redeem(coupon["code"], key=mine.roaming_scanner,
                        store_id=theirs.other_store["id"], uses=1), 404, "coupon_not_found")
    problem(client.post("redemptions", {"code": coupon["code"], "store_id": theirs.store["id"]},
                        key=mine.roaming_scanner, headers={"Idempotency-Key": "till-1-scan-1"}),
            404, "coupon_not_found")  # the idempotent redeem is a statement of its own
    untouched = client.ok(client.get(f"coupons/{coupon['code']}"))
    assert (untouched["status"], untouched["uses_left"], untouched["redemptions"]) == (
        "active", 1, [])
    assert client.ok(client.get("redemptions", key=theirs.manager))["data"] == []
    assert client.events(type="coupon.redeemed") == []
    client.ok(theirs.redeem(coupon["code"]), 201)


def test_a_roaming_scanner_cannot_validate_another_merchants_coupon_at_its_store(client, shops):
    mine, theirs = shops
    coupon = theirs.coupon()
    for scan in ({"code": coupon["code"]}, {"qr": coupon["qr_payload"]}):
        problem(client.post("redemptions/validate", {"store_id": theirs.store["id"], **scan},
                            key=mine.roaming_scanner), 404, "coupon_not_found")
    assert client.ok(client.get(f"coupons/{coupon['code']}"))["uses_left"] == 1


def _create_key(client, merchant_id: str, role: str = "scanner", key: str = "platform") -> dict:
    return client.ok(client.post(f"merchants/{merchant_id}/api-keys",
                                 {"role": role, "label": "t"}, key=key), 201)


def test_revoking_a_key_takes_effect_at_once(client, shops):
    mine, _ = shops
    code = mine.coupon()["code"]
    created = _create_key(client, mine.merchant["id"], key=mine.manager)
    assert created["key"].startswith("cpn_scanner_")
    client.ok(client.get(f"coupons/{code}", key=created["key"]))
    revoked = client.ok(client.delete(f"api-keys/{created['id']}", key=mine.manager))
    assert revoked["revoked_at"] is not None
    problem(client.get(f"coupons/{code}", key=created["key"]), 401, "unauthenticated")
    problem(mine.redeem(code, key=created["key"], store_id=mine.store["id"]), 401, "unauthenticated")


def test_the_listing_of_keys_never_shows_secrets(client, shops):
    mine, _ = shops
    created = _create_key(client, mine.merchant["id"])
    listed = client.ok(client.get(f"merchants/{mine.merchant['id']}/api-keys", key=mine.manager))
    rows = {row["id"]: row for row in listed["data"]}
    assert created["id"] in rows
    assert all("key" not in row and "key_hash" not in row for row in rows.values())
    assert created["key"] not in str(listed)


def test_a_manager_cannot_revoke_another_merchants_key(client, shops):
    mine, theirs = shops
    victim = _create_key(client, theirs.merchant["id"])
    problem(client.delete(f"api-keys/{victim['id']}", key=mine.manager), 404, "not_found")
    client.ok(theirs.redeem(theirs.coupon()["code"], key=victim["key"],
                            store_id=theirs.store["id"]), 201)


def test_a_scanner_cannot_revoke_keys(client, shops):
    mine, _ = shops
    victim = _create_key(client, mine.merchant["id"])
    problem(client.delete(f"api-keys/{victim['id']}", key=mine.scanner), 403, "forbidden")
    client.ok(client.get(f"coupons/{mine.coupon()['code']}", key=victim["key"]))


def test_a_manager_cannot_mint_keys_for_another_merchant(client, shops):
    mine, theirs = shops
    response = client.post(f"merchants/{theirs.merchant['id']}/api-keys",
                           {"role": "manager", "label": "x"}, key=mine.manager)
    problem(response, 404, "not_found")


def test_platform_sees_everything(client, shops):
    mine, theirs = shops
    codes = {shop.merchant["id"]: shop.coupon()["code"] for shop in shops}
    for shop in shops:
        assert client.ok(client.get(f"campaigns/{shop.campaign['id']}"))["id"] == shop.campaign["id"]
        assert client.ok(client.get(f"merchants/{shop.merchant['id']}"))["id"] == shop.merchant["id"]
        client.ok(client.get(f"campaigns/{shop.campaign['id']}/stats"))
        assert client.ok(client.get(f"coupons/{codes[shop.merchant['id']]}"))["status"] == "active"
    merchants = {m["id"] for m in client.ok(client.get("merchants"))["data"]}
    assert merchants >= {mine.merchant["id"], theirs.merchant["id"]}
    campaigns = {c["id"] for c in client.ok(client.get("campaigns"))["data"]}
    assert campaigns >= {mine.campaign["id"], theirs.campaign["id"]}
    merchants_with_events = {e["merchant_id"] for e in client.events()}
    assert merchants_with_events >= {mine.merchant["id"], theirs.merchant["id"]}


def test_platform_redeems_any_merchants_coupon_at_its_store(client, shops):
    _, theirs = shops
    code = theirs.coupon()["code"]
    redemption = client.ok(client.post("redemptions", {"code": code, "store_id": theirs.store["id"]}),
                           201)
    assert redemption["store_id"] == theirs.store["id"]


def test_redemption_lists_are_scoped(client, shops):
    mine, theirs = shops
    client.ok(mine.redeem(mine.coupon()["code"]), 201)
    client.ok(theirs.redeem(theirs.coupon()["code"]), 201)
    problem(mine.redeem("2222-2222-2223"), 400, "invalid_code")
    problem(theirs.redeem("2222-2222-2223"), 400, "invalid_code")
    for shop in shops:
        rows = client.ok(client.get("redemptions", key=shop.manager))["data"]
        assert [r["store_id"] for r in rows] == [shop.store["id"]]
        attempts = client.ok(client.get("redemption-attempts", key=shop.manager))["data"]
        assert [a["store_id"] for a in attempts] == [shop.store["id"]]
    assert len(client.ok(client.get("redemptions"))["data"]) == 2


def test_revocations_are_scoped(client, shops):
    voided = {}
    for shop in shops:
        code = shop.coupon()["code"]
        client.ok(client.post(f"coupons/{code}/void"))
        voided[shop.merchant["id"]] = code
    for shop in shops:
        rows = client.ok(client.get("revocations", key=shop.scanner))["data"]
        assert [row["code"] for row in rows] == [voided[shop.merchant["id"]]]
    everything = client.ok(client.get("revocations"))["data"]
    assert sorted(row["code"] for row in everything) == sorted(voided.values())
