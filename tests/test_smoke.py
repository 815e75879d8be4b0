from tests.factories import Shop


def test_sell_and_redeem_a_coupon(client):
    shop = Shop(client)
    coupon = shop.coupon()
    assert coupon["status"] == "active"
    redemption = client.ok(shop.redeem(coupon["code"]), 201)
    assert redemption["coupon"]["status"] == "redeemed"
    again = shop.redeem(coupon["code"])
    assert again.status_code == 409
    assert again.get_json()["code"] == "coupon_already_redeemed"
