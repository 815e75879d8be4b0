"""The redeem's 201 body is written out by hand (`redemptions.redeemed_body`); it must stay
what its documented schema, `RedemptionOut`, would dump, members and order included."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from couponsvc.api.redemptions import redeemed_body, redeemed_json
from couponsvc.api.schemas.redemptions import RedemptionOut
from couponsvc.redeem.redeem import Redeemed
from tests.factories import Shop


def _redeemed(device_id: str | None, order_id: str | None) -> Redeemed:
    coupon = {"code": "U447K3JJ456K", "display": "U447-K3JJ-456K", "status": "redeemed",
              "uses_total": 3, "uses_left": 0,
              "valid_from": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
              "valid_until": datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
              "campaign_id": "cmp_1", "order_id": order_id}
    return Redeemed(id="red_1", coupon=coupon, store_id="sto_1", uses=2,
                    redeemed_at=datetime(2026, 6, 1, 12, 0, 0, 123456, tzinfo=UTC), device_id=device_id)


@pytest.mark.parametrize(("device_id", "order_id"), [(None, None), ("till-7", "ord_1")])
def test_the_written_out_body_is_the_schemas_dump(device_id, order_id):
    done = _redeemed(device_id, order_id)
    assert json.dumps(redeemed_body(done)) == json.dumps(RedemptionOut().dump(done))


@pytest.mark.parametrize("device_id", [None, "till-7", "收银台 7", "caf\u00e9 \"7\" \\ \t"])
def test_the_body_is_written_as_the_standard_librarys_compact_json(device_id):
    """orjson writes the 201 (`redeemed_json`) byte for byte as the standard library's
    compact encoder with non-ASCII kept did: escapes, Chinese and all."""
    done = _redeemed(device_id, "ord_1")
    expected = json.dumps(redeemed_body(done), ensure_ascii=False, separators=(",", ":")) + "\n"
    assert redeemed_json(done) == expected.encode()


def test_a_redeem_answers_the_schemas_dump_of_what_it_did(client):
    shop = Shop(client)
    coupon = shop.coupon()
    response = shop.redeem(coupon["code"], device_id="till-1")
    body = client.ok(response, 201)
    redeemed_at = datetime.fromisoformat(body["redeemed_at"])
    coupon_out = body["coupon"]
    done = Redeemed(id=body["id"], coupon={**coupon_out, **{
        name: datetime.fromisoformat(coupon_out[name]) for name in ("valid_from", "valid_until")}},
        store_id=body["store_id"], uses=body["uses"], redeemed_at=redeemed_at, device_id="till-1")
    assert response.get_data(as_text=True).strip() == json.dumps(
        RedemptionOut().dump(done), ensure_ascii=False, separators=(",", ":"))
