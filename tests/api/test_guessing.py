"""Guessing must not pay: over budget, nothing is answered; QR images need a token or a key."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from sqlalchemy import select, update

from couponsvc import codes
from couponsvc.extensions import db
from couponsvc.models import LookupBlock
from couponsvc.timeutil import utcnow
from tests.conftest import REDIS_URL
from tests.factories import Shop, problem


def _exhaust(shop: Shop, key: str, misses: int = 3) -> None:
    for _ in range(misses):
        problem(shop.redeem(codes.generate(), key=key), 404, "coupon_not_found")


def _refused(response) -> None:
    problem(response, 429, "rate_limited")
    retry_after = response.headers.get("Retry-After", "")
    assert retry_after.isdigit() and int(retry_after) >= 1


@pytest.mark.config(LOOKUP_LIMIT_PER_KEY="3/hour")  # an hour: a window boundary mid-test is unlikely
def test_a_key_over_budget_gets_no_answer_even_for_a_real_code(client):
    shop = Shop(client)
    real = shop.coupon()["code"]
    _exhaust(shop, shop.scanner)
    _refused(client.post("redemptions/validate", {"code": real}, key=shop.scanner))
    _refused(shop.redeem(real, key=shop.scanner))
    _refused(client.get(f"coupons/{real}", key=shop.scanner))
    # Nothing was redeemed by the refused attempt, and another key still works.
    coupon = client.ok(client.get(f"coupons/{real}", key=shop.manager))
    assert coupon["uses_left"] == coupon["uses_total"]
    client.ok(shop.redeem(real, key=shop.roaming_scanner, store_id=shop.store["id"]), 201)


@pytest.mark.config(LOOKUP_LIMIT_PER_ADDRESS="3/hour")
def test_an_address_over_budget_gets_no_answer_even_for_a_real_code(client):
    shop = Shop(client)
    real = shop.coupon()["code"]
    _exhaust(shop, shop.scanner)
    # Another key from the same address is refused too: the address is over budget.
    _refused(client.get(f"coupons/{real}", key=shop.manager))
    _refused(shop.redeem(real, key=shop.roaming_scanner, store_id=shop.store["id"]))


# -- QR images: a capability URL, or a key ----------------------------------------------------


def _path(url: str) -> str:
    assert "/api/v1/coupons/" in url and "?token=" in url, url
    return url.split("/api/v1/", 1)[1]


def test_the_qr_url_loads_without_a_key_for_an_img_tag(client):
    shop = Shop(client)
    coupon = shop.coupon()
    for url in (coupon["qr_url"], client.ok(client.get(f"coupons/{coupon['code']}"))["qr_url"]):
        response = client.get(_path(url), key=None)
        assert response.status_code == 200 and response.mimetype == "image/png"
        svg = client.get(_path(url).replace("qr.png", "qr.svg"), key=None)
        assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"


def test_without_a_token_the_image_answers_404_whatever_the_code(client):
    shop = Shop(client)
    real = shop.coupon()["code"]
    answers = []
    for code in (real, codes.generate(), "NOT-A-CODE", real.lower()):
        for kind in ("png", "svg"):
            body = problem(client.get(f"coupons/{code}/qr.{kind}", key=None), 404, "coupon_not_found")
            answers.append({k: body[k] for k in ("type", "title", "status", "detail", "code")})
    assert all(answer == answers[0] for answer in answers), answers


def test_a_token_opens_only_its_own_coupon(client):
    shop = Shop(client)
    first, second = shop.coupons(2)
    token = first["qr_url"].split("token=", 1)[1]
    other_token = second["qr_url"].split("token=", 1)[1]
    assert token != other_token
    for code, bad in ((second["code"], token), (first["code"], other_token), (first["code"], token[:-1]),
                      (first["code"], token[:-1] + ("A" if token[-1] != "A" else "B")),
                      (first["code"], ""), (codes.generate(), token)):
        problem(client.get(f"coupons/{code}/qr.png", key=None, query_string={"token": bad}),
                404, "coupon_not_found")


def test_a_key_that_sees_the_coupon_draws_it_without_a_token(client):
    shop, other = Shop(client), Shop(client)
    code = shop.coupon()["code"]
    for key in (shop.manager, shop.scanner, "platform"):
        response = client.get(f"coupons/{code}/qr.png", key=key)
        assert response.status_code == 200 and response.mimetype == "image/png"
        assert "private" in response.headers["Cache-Control"]
    problem(client.get(f"coupons/{code}/qr.png", key=other.manager), 404, "coupon_not_found")
    problem(client.get(f"coupons/{code}/qr.png", key="cpn_manager_" + "x" * 43), 401, "unauthenticated")


@pytest.mark.config(LOOKUP_LIMIT_PER_ADDRESS="3/hour")
def test_guessing_images_uses_up_the_address_budget(client):
    shop = Shop(client)
    coupon = shop.coupon()
    for _ in range(3):
        problem(client.get(f"coupons/{codes.generate()}/qr.png", key=None), 404, "coupon_not_found")
    _refused(client.get(_path(coupon["qr_url"]), key=None))


# -- PostgreSQL: the budget used up is where the redeem's statement reads it ------------------


def _blocks(app) -> dict[str, object]:
    with app.app_context():
        rows = db.session.execute(select(LookupBlock.subject, LookupBlock.until)).all()
        db.session.remove()
    return dict(rows)


@pytest.mark.postgresql
@pytest.mark.config(LOOKUP_LIMIT_PER_KEY="3/hour")
def test_the_redeem_statement_refuses_a_key_over_budget_without_the_counts(client, app):
    """The failure that uses the budget up records it until the window ends; the redeem's
    own statement reads that record, so with every count gone from Redis a real code is
    still refused (429, not redeemed) for the key, and its budget is not counted again."""
    shop = Shop(client)
    real = shop.coupon()["code"]
    scanner_id = client.ok(client.get("whoami", key=shop.scanner))["key"]["id"]
    _exhaust(shop, shop.scanner, misses=2)
    assert _blocks(app) == {}  # two misses of three: nothing used up yet
    _exhaust(shop, shop.scanner, misses=1)
    blocks = _blocks(app)
    assert list(blocks) == [f"key:{scanner_id}"]
    assert 0 < (blocks[f"key:{scanner_id}"] - utcnow()).total_seconds() <= 3600
    redis.Redis.from_url(REDIS_URL).flushdb()
    for _ in range(2):
        _refused(shop.redeem(real, key=shop.scanner))
    _refused(shop.redeem("ABCD", key=shop.scanner))  # refused before its statement: asked after
    _refused(client.post("redemptions/validate", {"code": real}, key=shop.scanner))
    coupon = client.ok(client.get(f"coupons/{real}", key=shop.manager))
    assert coupon["uses_left"] == coupon["uses_total"]
    assert client.ok(client.get("redemption-attempts", key=shop.manager))["data"][-1]["reason"] == "rate_limited"


@pytest.mark.postgresql
@pytest.mark.config(LOOKUP_LIMIT_PER_KEY="3/hour")
def test_a_budget_whose_window_ended_refuses_nothing(client, app):
    shop = Shop(client)
    real = shop.coupon()["code"]
    _exhaust(shop, shop.scanner)
    redis.Redis.from_url(REDIS_URL).flushdb()  # the window ended: its counts expired ...
    with app.app_context():  # ... and so did the record
        db.session.execute(update(LookupBlock).values(until=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    client.ok(shop.redeem(real, key=shop.scanner), 201)


@pytest.mark.postgresql
@pytest.mark.config(LOOKUP_LIMIT_PER_KEY="3/hour")
def test_a_revoked_key_over_budget_is_told_it_is_revoked(client):
    shop = Shop(client)
    real = shop.coupon()["code"]
    scanner_id = client.ok(client.get("whoami", key=shop.scanner))["key"]["id"]
    _exhaust(shop, shop.scanner)
    client.ok(client.delete(f"api-keys/{scanner_id}", key=shop.manager))
    problem(shop.redeem(real, key=shop.scanner), 401, "unauthenticated")
