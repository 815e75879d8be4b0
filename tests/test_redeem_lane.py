"""The redeem's lane (`couponsvc/api/redeem_lane.py`): a till's redeem that succeeds is
answered without Flask's request machinery, as Flask would answer it; everything else
is Flask's, answered as before, and decided, counted and recorded once."""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager

import pytest
from flask import request

import couponsvc.redeem as till
from couponsvc import codes, request_id
from couponsvc.api.redemptions import Redemptions
from tests.conftest import BACKEND
from tests.factories import Shop, problem
from tests.metrics.scrape import scrape, value

postgresql_only = pytest.mark.postgresql  # the lane runs the statement of PostgreSQL only


@pytest.fixture
def views(monkeypatch) -> list[str]:
    """The redeems Flask's view ran (the lane answered the others), by code."""
    seen: list[str] = []
    original = Redemptions.post

    def post(self, *args, **kwargs):
        body = request.get_json(silent=True)
        seen.append(body.get("code") if isinstance(body, dict) else None)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Redemptions, "post", post)
    return seen


def _till_headers(**extra) -> dict[str, str]:
    return {"Accept-Language": "zh-CN,zh;q=0.9", "X-Request-ID": "till-7-000123", **extra}


def test_a_key_seen_before_redeems_in_the_lane_on_postgresql(client, views):
    shop = Shop(client)
    first, second, third = (c["code"] for c in shop.coupons(3))
    client.ok(shop.redeem(first), 201)  # the key is new to this process: Flask's view
    before = scrape(client)
    with access_lines() as lines:
        answer = client.post("redemptions", {"code": second}, key=shop.scanner,
                             headers={"X-Request-ID": "till-7-000456"})
    client.ok(answer, 201)
    client.ok(shop.redeem(third, device_id="till-2"), 201)
    after = scrape(client)
    assert views == ([first] if BACKEND == "postgresql" else [first, second, third])
    # counted and logged as Flask's hooks count and log
    assert lines == [("/api/v1/redemptions", 201, "till-7-000456")]
    assert moved(before, after, "couponsvc_http_requests_total", method="POST",
                 route="/api/v1/redemptions", status="201") == 2
    assert moved(before, after, "couponsvc_redemptions_total", outcome="redeemed") == 2


@contextmanager
def access_lines():
    """(route, status, request id) of each access line written meanwhile."""
    lines = []

    class Lines(logging.Handler):
        def emit(self, record):
            lines.append((record.route, record.status, request_id.current()))

    handler = Lines()
    logging.getLogger("couponsvc.access").addHandler(handler)
    try:
        yield lines
    finally:
        logging.getLogger("couponsvc.access").removeHandler(handler)


def moved(before, after, name, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


@postgresql_only
@pytest.mark.parametrize("idempotent", [False, True])
def test_the_lanes_201_is_the_one_flask_gives(app, client, views, monkeypatch, idempotent):
    shop = Shop(client)
    warm, in_lane, in_flask = (c["code"] for c in shop.coupons(3))
    client.ok(shop.redeem(warm), 201)

    def redeem(code):
        headers = _till_headers(**({"Idempotency-Key": f"scan-{code}"} if idempotent else {}))
        return client.post("redemptions", {"code": code, "store_id": shop.store["id"]},
                           key=shop.scanner, headers=headers)

    lane = redeem(in_lane)
    monkeypatch.setattr(app, "wsgi_app", app.wsgi_app.wsgi_app)  # the lane taken out
    flask = redeem(in_flask)
    assert views == [warm, in_flask]
    assert (lane.status_code, flask.status_code) == (201, 201)
    varying = {"Location", "Content-Length"}
    assert ({k: v for k, v in lane.headers.items() if k not in varying}
            == {k: v for k, v in flask.headers.items() if k not in varying})
    assert lane.headers["Content-Language"] == "zh"
    assert lane.headers["X-Request-ID"] == "till-7-000123"
    body, other = lane.get_json(), flask.get_json()
    assert lane.headers["Location"] == f"http://couponsvc.test/api/v1/redemptions/{body['id']}"
    assert lane.headers["Content-Length"] == str(len(lane.get_data()))
    assert lane.get_data().endswith(b"}\n") and flask.get_data().endswith(b"}\n")
    assert list(body) == list(other) and list(body["coupon"]) == list(other["coupon"])
    same = ("store_id", "uses", "device_id")
    assert {k: body[k] for k in same} == {k: other[k] for k in same}
    assert body["coupon"]["code"] == in_lane and body["coupon"]["status"] == "redeemed"


@postgresql_only
def test_a_replay_of_the_lanes_answer_is_that_answer(client, views):
    shop = Shop(client)
    warm, code = (c["code"] for c in shop.coupons(2))
    client.ok(shop.redeem(warm), 201)
    headers = {"Idempotency-Key": "scan-once"}
    first = client.post("redemptions", {"code": code}, key=shop.scanner, headers=headers)
    again = client.post("redemptions", {"code": code}, key=shop.scanner, headers=headers)
    other = client.post("redemptions", {"code": code, "uses": 1, "device_id": "x"},
                        key=shop.scanner, headers=headers)
    assert views == [warm, code, code]  # the replays are Flask's
    assert first.status_code == again.status_code == 201
    assert again.get_data() == first.get_data()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    problem(other, 409, "idempotency_key_reused")


@postgresql_only
def test_a_refusal_is_flasks_and_recorded_once(client, views):
    shop = Shop(client)
    code = shop.coupon()["code"]
    client.ok(shop.redeem(code), 201)  # Flask's: the key was new
    problem(shop.redeem(code), 409, "coupon_already_redeemed")
    problem(shop.redeem(codes.generate()), 404, "coupon_not_found")
    assert len(views) == 3
    attempts = client.ok(client.get("redemption-attempts", key=shop.manager))["data"]
    assert sorted(a["reason"] for a in attempts) == ["coupon_already_redeemed", "coupon_not_found"]


@postgresql_only
def test_a_revoked_key_the_lane_remembers_is_refused(client, views):
    shop = Shop(client)
    first, second = (c["code"] for c in shop.coupons(2))
    client.ok(shop.redeem(first), 201)
    keys = client.ok(client.get(f"merchants/{shop.merchant['id']}/api-keys"))["data"]
    scanner_id = next(k["id"] for k in keys if k["store_id"] == shop.store["id"])
    client.ok(client.delete(f"api-keys/{scanner_id}"), 200)
    problem(shop.redeem(second), 401, "unauthenticated")
    assert client.ok(client.get(f"coupons/{second}"))["status"] == "active"


@postgresql_only
@pytest.mark.parametrize(("body", "headers", "status", "code"), [
    ({"code": "{code}", "coupon": "x"}, {}, 422, "validation_error"),  # a member the schema lacks
    ({"code": "{code}", "uses": "1"}, {}, 422, "validation_error"),  # uses is a number
    ({"code": "{code}", "qr": "CPN1.x"}, {}, 422, "validation_error"),  # both
    ({"code": "{code}"}, {"Idempotency-Key": "  "}, 400, "bad_request"),
    ({"code": "{code}"}, {"Idempotency-Key": "k" * 256}, 400, "bad_request"),
], ids=["unknown-member", "uses-as-text", "code-and-qr", "blank-key", "long-key"])
def test_what_the_view_refuses_the_lane_leaves_to_it(client, views, body, headers, status, code):
    shop = Shop(client)
    warm, coupon = (c["code"] for c in shop.coupons(2))
    client.ok(shop.redeem(warm), 201)
    body = {k: v.replace("{code}", coupon) if isinstance(v, str) else v for k, v in body.items()}
    problem(client.post("redemptions", body, key=shop.scanner, headers=headers), status, code)
    assert client.ok(client.get(f"coupons/{coupon}"))["status"] == "active"


@postgresql_only
def test_a_body_that_is_not_a_small_json_object_goes_to_flask(client, views):
    shop = Shop(client)
    warm, coupon = (c["code"] for c in shop.coupons(2))
    client.ok(shop.redeem(warm), 201)
    auth = {"Authorization": f"Bearer {shop.scanner}"}
    as_text = client.http.post("/api/v1/redemptions", data=f'{{"code": "{coupon}"}}',
                               headers={**auth, "Content-Type": "text/plain"})
    problem(as_text, 415, "unsupported_media_type")
    problem(client.http.post("/api/v1/redemptions", json=[coupon], headers=auth), 422, "validation_error")
    padded = json.dumps({"code": coupon, "device_id": "till", "store_id": shop.store["id"]}) + " " * 5000
    large = client.http.post("/api/v1/redemptions", data=padded,
                             headers={**auth, "Content-Type": "application/json"})
    client.ok(large, 201)  # JSON with 5,000 spaces after it: Flask's, and redeemed
    assert views == [warm, None, coupon]  # the text refused before the view, the list by its schema


@postgresql_only
def test_json_the_lanes_reader_refuses_or_reads_otherwise_is_flasks(client, views):
    """The lane reads a body with orjson, Flask with the standard library. What orjson
    refuses (a byte-order mark, NaN) or reads otherwise (an integer past 64 bits, as a
    float) goes to Flask's view, which answers it as without the lane: the BOM's body is
    redeemed there, the others refused by the schema."""
    shop = Shop(client)
    warm, with_bom, too_big, not_a_number = (c["code"] for c in shop.coupons(4))
    client.ok(shop.redeem(warm), 201)
    headers = {"Authorization": f"Bearer {shop.scanner}", "Content-Type": "application/json"}

    def post(text: str):
        return client.http.post("/api/v1/redemptions", data=text.encode(), headers=headers)

    body = client.ok(post(f'\ufeff{{"code": "{with_bom}"}}'), 201)
    assert body["coupon"]["code"] == with_bom
    problem(post(f'{{"code": "{too_big}", "uses": {2**70}}}'), 422, "validation_error")
    problem(post(f'{{"code": "{not_a_number}", "device_id": NaN}}'), 422, "validation_error")
    assert views == [warm, with_bom, too_big, not_a_number]
    for code in (too_big, not_a_number):
        assert client.ok(client.get(f"coupons/{code}"))["status"] == "active"


@postgresql_only
def test_an_error_in_the_lane_is_answered_by_flasks_handlers_once(app, client, views, monkeypatch):
    shop = Shop(client)
    warm, code = (c["code"] for c in shop.coupons(2))
    client.ok(shop.redeem(warm), 201)
    calls = []

    def broken(*args, **kwargs):
        calls.append(args)
        raise RuntimeError("the database went away")

    monkeypatch.setattr(till, "redeem", broken)
    monkeypatch.setattr(app, "testing", False)  # the handler answers instead of raising
    with access_lines() as lines:
        answer = client.post("redemptions", {"code": code}, key=shop.scanner,
                             headers={"X-Request-ID": "till-7-000999"})
    problem(answer, 500, "internal_error")
    assert answer.headers["X-Request-ID"] == "till-7-000999"
    assert len(calls) == 1 and views == [warm]  # not run again through the view
    assert lines == [("/api/v1/redemptions", 500, "till-7-000999")]
    assert request_id.current() is None
