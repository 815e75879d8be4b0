"""Keys: hashed, shown once, revoked at once, even for the redeem that skips a key read."""

from __future__ import annotations

from sqlalchemy import select

from couponsvc.extensions import db
from couponsvc.models import ApiKey, Redemption
from tests.factories import Shop


def test_keys_are_stored_only_as_hashes(client, app):
    shop = Shop(client)
    with app.app_context():
        stored = db.session.execute(select(ApiKey.key_hash, ApiKey.prefix)).all()
    assert all(shop.scanner not in (key_hash, prefix) for key_hash, prefix in stored)
    assert any(shop.scanner.startswith(prefix) for _, prefix in stored)


def test_a_revoked_key_cannot_redeem_even_after_it_was_remembered(client, app):
    shop = Shop(client)
    first, second = (c["code"] for c in shop.coupons(2))
    client.ok(shop.redeem(first), 201)  # the key's identity is now remembered by the process
    key_id = next(k["id"] for k in client.ok(client.get(f"merchants/{shop.merchant['id']}/api-keys"))["data"]
                  if k["store_id"] == shop.store["id"])
    client.ok(client.delete(f"api-keys/{key_id}", key=shop.manager))
    refused = shop.redeem(second)
    assert refused.status_code == 401 and refused.get_json()["code"] == "unauthenticated"
    assert client.ok(client.get(f"coupons/{second}"))["status"] == "active"
    with app.app_context():
        assert db.session.execute(select(Redemption).where(Redemption.coupon_code == second)).first() is None
    assert client.post("redemptions/validate", {"code": second}, key=shop.scanner).status_code == 401
