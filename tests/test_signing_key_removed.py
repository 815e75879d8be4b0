"""A campaign whose QR signing key was removed is never signed with another key: its
coupons' QR still verify through the public key, but cannot be drawn again."""

from __future__ import annotations

from urllib.parse import urlsplit

from sqlalchemy import update

from couponsvc.models import Campaign
from tests.factories import Shop, in_db, problem


def test_a_campaign_whose_signing_key_was_removed_is_never_re_signed(app, client, caplog):
    shop = Shop(client)
    placed = client.order(shop.campaign["id"], 1)
    coupon = placed["coupons"][0]
    assert coupon["qr_payload"]
    in_db(app, update(Campaign).where(Campaign.id == shop.campaign["id"]).values(qr_kid="retiredkid00"))

    shown = client.ok(client.get(f"coupons/{coupon['code']}"))
    assert shown["qr_payload"] is None
    assert "retiredkid00" in caplog.text
    order = client.ok(client.get(f"orders/{placed['id']}"))
    assert [c["qr_payload"] for c in order["coupons"]] == [None]
    url = urlsplit(shown["qr_url"])
    image = client.get(url.path + (f"?{url.query}" if url.query else ""))
    problem(image, 409, "invalid_state")
    # what does not need a signature still works: the typed code redeems
    client.ok(shop.redeem(coupon["code"]), 201)
