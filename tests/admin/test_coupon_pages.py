"""The coupon pages: look-up by a typed code (a typo told before the database is asked),
the coupon's history and refused attempts, void with a reason; a manager finds their own
merchant's coupons only."""

from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, select

from couponsvc import codes
from couponsvc.extensions import db
from couponsvc.models import AuditEntry
from tests.factories import Shop


def english(page):
    page.http.get("/language/en")
    return page


def text(answer) -> str:
    return re.sub(r"\s+", " ", answer.get_data(as_text=True))


def mistyped(code: str) -> str:
    """The code with its third symbol replaced: the check character catches it."""
    swap = codes.ALPHABET[(codes.ALPHABET.index(code[2]) + 1) % codes.BASE]
    return code[:2] + swap + code[3:]


def unknown_code() -> str:
    body = "23456789ABC"
    return body + codes.check_symbol(body)


@contextmanager
def coupon_queries(app):
    """The SQL statements that read the coupons table while the block runs."""
    seen: list[str] = []

    def note(conn, cursor, statement, parameters, context, executemany):
        if re.search(r"\bcoupons\b", statement):
            seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


@pytest.fixture
def shop(client):
    return Shop(client)


@pytest.fixture
def manager(shop, manager_of, signed_in, client):
    return english(signed_in(client, manager_of(shop.merchant)))


def test_a_typo_is_told_before_the_database_is_asked(app, shop, manager):
    code = shop.coupon()["code"]
    with coupon_queries(app) as seen:
        answer = manager.get("/admin/coupons", query_string={"code": mistyped(code)})
    assert answer.status_code == 400
    assert "Invalid code (typo?)" in text(answer)
    assert 'aria-invalid="true"' in text(answer)
    assert seen == []
    with coupon_queries(app) as seen:  # the same look-up, typed right, does ask
        assert manager.get("/admin/coupons", query_string={"code": code}).status_code == 302
    assert seen


def test_a_code_is_found_however_it_is_typed(shop, manager):
    code = shop.coupon()["code"]
    typed = f" {code[:4].lower()} {code[4:8]}-{code[8:].lower()} "
    answer = manager.get("/admin/coupons", query_string={"code": typed})
    assert answer.status_code == 302
    assert answer.headers["Location"].endswith(f"/admin/coupons/{code}")
    page = manager.get(f"/admin/coupons/{code.lower()}")  # any form of the code: the canonical address
    assert page.status_code == 302 and page.headers["Location"].endswith(f"/admin/coupons/{code}")
    page = manager.get(f"/admin/coupons/{code}")
    assert page.status_code == 200
    assert codes.display(code) in text(page)
    assert shop.campaign["title"] in text(page)
    assert "¥39.90" in text(page)


def test_an_unknown_and_a_foreign_code_are_the_same_not_found(client, shop, manager):
    foreign = Shop(client).coupon()["code"]
    never = manager.get("/admin/coupons", query_string={"code": unknown_code()})
    other = manager.get("/admin/coupons", query_string={"code": foreign})
    assert never.status_code == other.status_code == 404
    assert "No coupon has this code." in text(never) and "No coupon has this code." in text(other)
    assert manager.get(f"/admin/coupons/{foreign}").status_code == 404
    refused = manager.post(f"/admin/coupons/{foreign}/void", {"reason": "not mine"})
    assert refused.status_code == 404
    assert client.ok(client.get(f"coupons/{foreign}"))["status"] == "active"


def test_an_operator_finds_every_merchants_coupon(client, shop, operator, signed_in):
    page = english(signed_in(client, operator))
    code = shop.coupon()["code"]
    answer = page.get(f"/admin/coupons/{code}")
    assert answer.status_code == 200
    assert shop.merchant["name"] in text(answer)


def test_the_history_tells_issue_activation_redemption_reversal_and_void(client, manager_of, signed_in):
    shop = Shop(client, min_group_size=2)
    first = shop.coupon()["code"]  # pending until the second order tips the deal
    shop.coupon()
    redeemed = client.ok(shop.redeem(first, device_id="till-7"), 201)
    client.ok(client.post(f"redemptions/{redeemed['id']}/reverse", {"reason": "wrong customer"},
                          key=shop.scanner))
    page = english(signed_in(client, manager_of(shop.merchant)))
    assert page.post(f"/admin/coupons/{first}/void", {"reason": "refunded at the counter"}).status_code == 302
    html = text(page.get(f"/admin/coupons/{first}"))
    steps = re.findall(r'<tr class="step step-(\w+)">', html)
    assert steps == ["issued", "activated", "redeemed", "reversed", "voided"]
    redeemed_row = html[html.index("step-redeemed"):html.index("step-reversed")]
    assert shop.store["name"] in redeemed_row and "till-7" in redeemed_row
    assert "scanner" in redeemed_row and "cpn_scanner_" in redeemed_row  # the key: label and prefix
    assert "wrong customer" in html[html.index("step-reversed"):html.index("step-voided")]
    assert "refunded at the counter" in html[html.index("step-voided"):]


def test_void_takes_a_reason_is_audited_and_said_once(app, client, shop, manager):
    code = shop.coupon()["code"]
    page = text(manager.get(f"/admin/coupons/{code}"))
    assert '<details class="confirm void"' in page and "Yes, void it" in page  # a confirmation step
    too_long = manager.post(f"/admin/coupons/{code}/void", {"reason": "x" * 501})
    assert too_long.status_code == 422 and 'id="f-reason-error"' in text(too_long)
    assert client.ok(client.get(f"coupons/{code}"))["status"] == "active"
    done = manager.post(f"/admin/coupons/{code}/void", {"reason": "customer asked"})
    assert done.status_code == 302
    assert client.ok(client.get(f"coupons/{code}"))["status"] == "voided"
    after = text(manager.get(f"/admin/coupons/{code}"))
    assert "voided" in after and "Void this coupon" not in after
    again = manager.post(f"/admin/coupons/{code}/void", {"reason": "twice"})
    assert again.status_code == 302
    assert "cannot be voided" in text(manager.get(f"/admin/coupons/{code}"))
    with app.app_context():
        [entry] = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "coupon.void")).all()
        assert (entry.target_type, entry.target_id, entry.merchant_id) == ("coupon", code, shop.merchant["id"])
        assert entry.detail == {"reason": "customer asked"}
    revocations = client.ok(client.get("revocations"))["data"]
    assert [r["code"] for r in revocations] == [code]  # the same void as the API's: offline scanners learn it


def test_a_void_without_its_form_token_is_refused(client, shop, manager):
    code = shop.coupon()["code"]
    refused = manager.post(f"/admin/coupons/{code}/void", {"reason": "forged"}, csrf=False)
    assert refused.status_code == 400
    assert client.ok(client.get(f"coupons/{code}"))["status"] == "active"


def test_refused_attempts_are_listed_with_reason_store_key_and_device(client, shop, manager):
    code = shop.coupon()["code"]
    client.ok(shop.redeem(code), 201)
    refused = shop.redeem(code, device_id="counter-2")
    assert refused.status_code == 409
    client.ok(shop.redeem(code, store_id=shop.other_store["id"], key=shop.roaming_scanner,
                          device_id="phone-9"), 409)
    html = text(manager.get(f"/admin/coupons/{code}"))
    attempts = html[html.index('id="refused"'):]
    rows = re.findall(r'<tr class="attempt">(.*?)</tr>', attempts)
    assert len(rows) == 2
    newest, oldest = rows
    assert "coupon_already_redeemed" in newest and "phone-9" in newest
    assert shop.other_store["name"] in newest
    assert "counter-2" in oldest and shop.store["name"] in oldest



def test_the_coupon_page_speaks_chinese_by_default(client, shop, manager_of, signed_in):
    page = signed_in(client, manager_of(shop.merchant))
    code = shop.coupon()["code"]
    html = text(page.get(f"/admin/coupons/{code}"))
    assert "历史" in html and "作废" in html
    typo = text(page.get("/admin/coupons", query_string={"code": mistyped(code)}))
    assert "券码无效" in typo


def test_times_are_in_the_merchants_time_zone(client, manager_of, signed_in):
    merchant = client.merchant(timezone="Asia/Urumqi")
    coupon = client.order(client.campaign(merchant["id"])["id"])["coupons"][0]
    until = datetime.fromisoformat(client.ok(client.get(f"coupons/{coupon['code']}"))["valid_until"])
    page = english(signed_in(client, manager_of(merchant)))
    html = text(page.get(f"/admin/coupons/{coupon['code']}"))
    assert until.astimezone(ZoneInfo("Asia/Urumqi")).strftime("%Y-%m-%d %H:%M") in html
    assert until.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M") not in html
    assert "Asia/Urumqi" in html


@pytest.mark.config(LOOKUP_LIMIT_PER_ADDRESS="3/minute")
def test_failed_look_ups_use_up_the_addresss_budget_as_the_apis_do(shop, manager):
    code = shop.coupon()["code"]
    for _ in range(3):
        assert manager.get("/admin/coupons", query_string={"code": unknown_code()}).status_code == 404
    refused = manager.get("/admin/coupons", query_string={"code": code})  # a real one too, now
    assert refused.status_code == 429
    assert "too many failed look-ups" in text(refused)
