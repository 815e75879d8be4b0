"""Scanning at the till: typed codes, QR codes, validate, multi-use, reversal, the record."""

from __future__ import annotations

import io
import re
from datetime import datetime
from xml.etree import ElementTree

import pytest
import zxingcpp
from PIL import Image

from couponsvc import codes
from tests.factories import Shop, problem


@pytest.fixture
def shop(client):
    return Shop(client)


def _image(coupon: dict, kind: str = "png", query: str = "") -> str:
    """The path of the coupon's QR image, with the token of its qr_url."""
    path = coupon["qr_url"].split("/api/v1/", 1)[1].replace("qr.png", f"qr.{kind}")
    return path + (f"&{query}" if query else "")


def _coupon(client, code: str) -> dict:
    return client.ok(client.get(f"coupons/{code}"))


def _key_id(client, shop: Shop, secret: str) -> str:
    rows = client.ok(client.get(f"merchants/{shop.merchant['id']}/api-keys"))["data"]
    matches = [row["id"] for row in rows if secret.startswith(row["prefix"])]
    assert len(matches) == 1, rows
    return matches[0]


# -- typed and scanned ----------------------------------------------------------------------


@pytest.mark.parametrize("typed", [
    lambda code: code.lower(),
    lambda code: codes.display(code),
    lambda code: codes.display(code).lower(),
    lambda code: f"  {code[:4]} {code[4:8]} {code[8:]}  ",
    lambda code: f"{code[:4]}–{code[4:8]}—{code[8:]}".lower(),
    lambda code: " - ".join(code[i:i + 3] for i in range(0, 12, 3)),
], ids=["lower", "display", "display-lower", "spaces", "dashes", "triples"])
def test_a_typed_code_redeems_in_any_case_with_spaces_and_hyphens(client, shop, typed):
    code = shop.coupon()["code"]
    redemption = client.ok(shop.redeem(typed(code)), 201)
    assert redemption["coupon"]["code"] == code
    assert redemption["coupon"]["status"] == "redeemed"
    assert redemption["store_id"] == shop.store["id"]
    assert redemption["uses"] == 1
    assert datetime.fromisoformat(redemption["redeemed_at"]).tzinfo is not None
    assert _coupon(client, code)["status"] == "redeemed"


def test_a_scanned_qr_redeems(client, shop):
    coupon = shop.coupon()
    redemption = client.ok(shop.redeem(qr=coupon["qr_payload"]), 201)
    assert redemption["coupon"]["code"] == coupon["code"]
    assert _coupon(client, coupon["code"])["uses_left"] == 0
    problem(shop.redeem(qr=coupon["qr_payload"]), 409, "coupon_already_redeemed")


def test_a_scanned_qr_with_a_trailing_newline_redeems(client, shop):
    coupon = shop.coupon()
    client.ok(shop.redeem(qr=coupon["qr_payload"] + "\n"), 201)


def test_a_roaming_scanner_names_its_store(client, shop):
    code = shop.coupon()["code"]
    problem(shop.redeem(code, key=shop.roaming_scanner), 422, "validation_error")
    redemption = client.ok(shop.redeem(code, key=shop.roaming_scanner,
                                       store_id=shop.other_store["id"]), 201)
    assert redemption["store_id"] == shop.other_store["id"]


def test_code_and_qr_together_are_a_validation_error(client, shop):
    coupon = shop.coupon()
    problem(shop.redeem(coupon["code"], qr=coupon["qr_payload"]), 422, "validation_error")
    problem(shop.redeem(), 422, "validation_error")
    assert _coupon(client, coupon["code"])["uses_left"] == 1


# -- validate -------------------------------------------------------------------------------


def test_validate_changes_nothing(client, shop):
    code = shop.coupon()["code"]
    events_before = client.events()
    for _ in range(3):
        answer = client.ok(client.post("redemptions/validate", {"code": code.lower()},
                                       key=shop.scanner))
        assert answer["ok"] is True
        assert answer.get("code") is None
        assert answer["coupon"]["code"] == code
        assert answer["coupon"]["uses_left"] == 1
    coupon = _coupon(client, code)
    assert (coupon["status"], coupon["uses_left"], coupon["redemptions"]) == ("active", 1, [])
    assert client.ok(client.get("redemptions"))["data"] == []
    assert client.events() == events_before
    client.ok(shop.redeem(code), 201)


def test_validate_says_why_a_redeem_would_be_refused(client):
    shop = Shop(client, uses_per_coupon=2)
    voided, redeemed, short = (c["code"] for c in shop.coupons(3))
    client.ok(client.post(f"coupons/{voided}/void"))
    client.ok(shop.redeem(redeemed, uses=2), 201)
    for code, uses, reason in ((voided, 1, "coupon_voided"), (redeemed, 1, "coupon_already_redeemed"),
                               (short, 3, "insufficient_uses")):
        answer = client.ok(client.post("redemptions/validate", {"code": code, "uses": uses},
                                       key=shop.scanner))
        assert (answer["ok"], answer["code"]) == (False, reason)
        assert answer["coupon"]["code"] == code
    assert _coupon(client, short)["uses_left"] == 2


def test_validate_answers_the_coupons_redemptions(client):
    shop = Shop(client, uses_per_coupon=3)
    code = shop.coupon()["code"]
    first = client.ok(shop.redeem(code), 201)
    answer = client.ok(client.post("redemptions/validate", {"code": code}, key=shop.scanner))
    assert answer["ok"] is True
    assert [r["id"] for r in answer["coupon"]["redemptions"]] == [first["id"]]
    assert answer["coupon"]["redemptions"] == _coupon(client, code)["redemptions"]


def test_validate_a_pending_coupon(client):
    shop = Shop(client, min_group_size=2)
    code = shop.coupon()["code"]
    answer = client.ok(client.post("redemptions/validate", {"code": code}, key=shop.scanner))
    assert (answer["ok"], answer["code"]) == (False, "coupon_pending")


def test_validate_of_an_unknown_code_is_not_found(client, shop):
    problem(client.post("redemptions/validate", {"code": codes.generate()}, key=shop.scanner),
            404, "coupon_not_found")


# -- multi-use and reversal -----------------------------------------------------------------


def test_a_multi_use_coupon_counts_down_and_ends_redeemed(client):
    shop = Shop(client, uses_per_coupon=5)
    code = shop.coupon()["code"]
    assert _coupon(client, code)["uses_total"] == 5
    left = []
    for uses in (1, 2):
        left.append(client.ok(shop.redeem(code, uses=uses), 201)["coupon"]["uses_left"])
    assert left == [4, 2]
    assert _coupon(client, code)["status"] == "active"
    problem(shop.redeem(code, uses=3), 422, "insufficient_uses")
    last = client.ok(shop.redeem(code, uses=2), 201)
    assert (last["coupon"]["uses_left"], last["coupon"]["status"]) == (0, "redeemed")
    coupon = _coupon(client, code)
    assert (coupon["status"], coupon["uses_left"]) == ("redeemed", 0)
    assert [r["uses"] for r in coupon["redemptions"]] == [1, 2, 2]
    problem(shop.redeem(code), 409, "coupon_already_redeemed")


def test_a_reversal_within_the_window_restores_the_uses(client):
    shop = Shop(client, uses_per_coupon=3)
    code = shop.coupon()["code"]
    client.ok(shop.redeem(code), 201)
    second = client.ok(shop.redeem(code, uses=2), 201)
    assert _coupon(client, code)["status"] == "redeemed"
    reversal = client.ok(client.post(f"redemptions/{second['id']}/reverse",
                                     {"reason": "wrong table"}, key=shop.scanner))
    assert reversal["id"] == second["id"]
    assert reversal["reversed_at"] is not None
    assert reversal["reversal_reason"] == "wrong table"
    coupon = _coupon(client, code)
    assert (coupon["status"], coupon["uses_left"]) == ("active", 2)
    reversed_rows = [r for r in coupon["redemptions"] if r["reversed_at"]]
    assert [r["id"] for r in reversed_rows] == [second["id"]]
    events = client.events(type="coupon.redemption_reversed")
    assert len(events) == 1
    assert events[0]["data"]["redemption"]["id"] == second["id"]
    assert events[0]["data"]["coupon"]["uses_left"] == 2
    assert events[0]["merchant_id"] == shop.merchant["id"]
    client.ok(shop.redeem(code, uses=2), 201)
    problem(client.post(f"redemptions/{second['id']}/reverse", {"reason": "again"},
                        key=shop.scanner), 409, "redemption_already_reversed")


def test_a_reversal_needs_a_reason(client, shop):
    redemption = client.ok(shop.redeem(shop.coupon()["code"]), 201)
    problem(client.post(f"redemptions/{redemption['id']}/reverse", {}, key=shop.scanner),
            422, "validation_error")


def test_a_reversal_of_another_merchants_redemption_is_not_found(client, shop):
    theirs = Shop(client)
    redemption = client.ok(theirs.redeem(theirs.coupon()["code"]), 201)
    response = client.post(f"redemptions/{redemption['id']}/reverse", {"reason": "x"},
                           key=shop.scanner)
    problem(response, 404, "redemption_not_found")


# -- the record -----------------------------------------------------------------------------


def test_refused_attempts_are_recorded(client):
    shop = Shop(client)
    voided = shop.coupon()
    client.ok(client.post(f"coupons/{voided['code']}/void"))
    good = shop.coupon()["code"]
    typo = good[:5] + codes.ALPHABET[(codes.ALPHABET.index(good[5]) + 1) % 31] + good[6:]
    problem(shop.redeem(typo, device_id="till-9"), 400, "invalid_code")
    problem(shop.redeem(qr=voided["qr_payload"], device_id="till-9"), 422, "coupon_voided")
    problem(shop.redeem(good, key=shop.roaming_scanner, store_id=shop.other_store["id"], uses=2,
                        device_id="phone-2"), 422, "insufficient_uses")
    client.ok(client.post("redemptions/validate", {"code": voided["code"], "device_id": "till-9"},
                          key=shop.scanner))
    client.ok(shop.redeem(good), 201)

    attempts = client.ok(client.get("redemption-attempts", key=shop.manager))["data"]
    scanner_id = _key_id(client, shop, shop.scanner)
    roaming_id = _key_id(client, shop, shop.roaming_scanner)
    summary = [(a["action"], a["reason"], a["raw_input"], a["store_id"], a["api_key_id"],
                a["device_id"]) for a in attempts]
    assert summary == [
        ("redeem", "invalid_code", typo, shop.store["id"], scanner_id, "till-9"),
        ("redeem", "coupon_voided", voided["qr_payload"], shop.store["id"], scanner_id, "till-9"),
        ("redeem", "insufficient_uses", good, shop.other_store["id"], roaming_id, "phone-2"),
        ("validate", "coupon_voided", voided["code"], shop.store["id"], scanner_id, "till-9"),
    ]
    assert [a["coupon_code"] for a in attempts] == [None, voided["code"], good, voided["code"]]
    voided_only = client.ok(client.get("redemption-attempts", key=shop.manager,
                                       query_string={"reason": "coupon_voided"}))["data"]
    assert len(voided_only) == 2
    problem(client.get("redemption-attempts", key=shop.scanner), 403, "forbidden")


def test_the_redemption_list_shows_successful_ones_only(client, shop):
    code = shop.coupon()["code"]
    problem(shop.redeem(codes.generate()), 404, "coupon_not_found")
    redemption = client.ok(shop.redeem(code), 201)
    problem(shop.redeem(code), 409, "coupon_already_redeemed")
    rows = client.ok(client.get("redemptions", key=shop.manager))["data"]
    assert [(r["id"], r["coupon_code"], r["store_id"]) for r in rows] == [
        (redemption["id"], code, shop.store["id"])]
    by_code = client.ok(client.get("redemptions", key=shop.manager,
                                   query_string={"code": codes.display(code).lower()}))["data"]
    assert [r["id"] for r in by_code] == [redemption["id"]]


def test_coupon_redeemed_event_carries_what_an_erp_needs(client):
    shop = Shop(client, uses_per_coupon=2)
    code = shop.coupon()["code"]
    redemption = client.ok(shop.redeem(code, device_id="till-3"), 201)
    events = client.events(type="coupon.redeemed")
    assert len(events) == 1
    event = events[0]
    assert event["merchant_id"] == shop.merchant["id"]
    data = event["data"]
    assert data["merchant_id"] == shop.merchant["id"]
    order_id = client.ok(client.get(f"coupons/{code}"))["order_id"]
    assert order_id
    assert {k: data["coupon"][k] for k in ("code", "campaign_id", "order_id", "uses_left")} == {
        "code": code, "campaign_id": shop.campaign["id"], "order_id": order_id, "uses_left": 1}
    got = data["redemption"]
    assert {k: got[k] for k in ("id", "store_id", "uses")} == {
        "id": redemption["id"], "store_id": shop.store["id"], "uses": 1}
    assert datetime.fromisoformat(got["redeemed_at"]) == datetime.fromisoformat(
        redemption["redeemed_at"])
    campaign = shop.campaign
    assert {k: data["campaign"][k] for k in ("id", "title", "price", "currency")} == {
        "id": campaign["id"], "title": campaign["title"], "price": campaign["price"],
        "currency": campaign["currency"]}


# -- QR images ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind, mimetype", [("png", "image/png"), ("svg", "image/svg+xml")])
def test_qr_images_are_cacheable(client, shop, kind, mimetype):
    path = _image(shop.coupon(), kind)
    first = client.get(path, key=None)
    assert first.status_code == 200, first.get_data(as_text=True)
    assert first.mimetype == mimetype
    etag = first.headers.get("ETag")
    assert etag
    cache = first.headers.get("Cache-Control", "")
    assert "max-age=" in cache and int(cache.split("max-age=")[1].split(",")[0]) > 0
    again = client.get(path, key=None)
    assert again.headers["ETag"] == etag and again.get_data() == first.get_data()
    cached = client.get(path, key=None, headers={"If-None-Match": etag})
    assert cached.status_code == 304
    assert cached.get_data() == b""
    stale = client.get(path, key=None, headers={"If-None-Match": '"not-it"'})
    assert stale.status_code == 200


def test_qr_png_scale_changes_the_size(client, shop):
    coupon = shop.coupon()
    small = Image.open(io.BytesIO(client.get(_image(coupon), key=None).get_data()))
    big_response = client.get(_image(coupon, query="scale=20"), key=None)
    big = Image.open(io.BytesIO(big_response.get_data()))
    assert big.size[0] > small.size[0] and big.size[1] > small.size[1]
    assert big_response.headers["ETag"] != client.get(_image(coupon), key=None).headers["ETag"]


def test_qr_svg_scale_changes_the_size(client, shop):
    coupon = shop.coupon()
    widths = []
    for scale in (2, 20):
        svg = client.get(_image(coupon, "svg", f"scale={scale}"), key=None).get_data(as_text=True)
        root = ElementTree.fromstring(svg)
        assert root.tag.endswith("svg")
        widths.append(float(re.match(r"[0-9.]+", root.get("width")).group()))
    assert widths[1] == pytest.approx(widths[0] * 10)


@pytest.mark.parametrize("scale", ["0", "-1", "41", "abc"])
def test_a_bad_qr_scale_is_a_validation_error(client, shop, scale):
    coupon = shop.coupon()
    for kind in ("png", "svg"):
        problem(client.get(_image(coupon, kind, f"scale={scale}"), key=None), 422,
                "validation_error")


def test_qr_png_decodes_to_the_payload(client, shop):
    coupon = shop.coupon()
    for scale in ("", "scale=3", "scale=20"):
        png = client.get(_image(coupon, query=scale), key=None).get_data()
        found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)), formats=zxingcpp.BarcodeFormat.QRCode)
        assert [barcode.text for barcode in found] == [coupon["qr_payload"]]


def test_the_qr_url_of_an_order_serves_the_image(client, shop):
    coupon = shop.coupon()
    path = coupon["qr_url"].split("://", 1)[1].split("/", 1)[1]
    response = client.get("/" + path, key=None)
    assert response.status_code == 200 and response.mimetype == "image/png"


def test_qr_image_of_an_unknown_coupon_is_not_found(client):
    problem(client.get(f"coupons/{codes.generate()}/qr.png", key=None), 404, "coupon_not_found")
    problem(client.get("coupons/NOT-A-CODE/qr.svg", key=None), 404, "coupon_not_found")
    problem(client.get("coupons/NOT-A-CODE/qr.svg"), 400, "invalid_code")  # with a key: a typo
