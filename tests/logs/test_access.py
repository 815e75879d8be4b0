"""One JSON object a line; a request id taken or made, echoed, on every line of the request
and of the jobs it queued; an access line per request naming the route, not the path."""

from __future__ import annotations

import re

import pytest

from tests.factories import Shop

from .lines import json_lines


def access_lines(captured: str) -> list[dict]:
    return [line for line in json_lines(captured) if line["logger"] == "couponsvc.access"]


def test_the_access_line_names_the_route_and_the_request_id_it_echoes(client, capsys):
    shop = Shop(client)
    code = shop.coupon()["code"]
    capsys.readouterr()
    answer = client.get(f"coupons/{code}", headers={"X-Request-ID": "till-7/2026:scan.0001"})
    assert answer.status_code == 200
    assert answer.headers["X-Request-ID"] == "till-7/2026:scan.0001"
    [line] = access_lines(capsys.readouterr().err)
    assert line["request_id"] == "till-7/2026:scan.0001"
    assert line["msg"] == "GET /api/v1/coupons/<code> 200"
    assert (line["method"], line["route"], line["status"]) == ("GET", "/api/v1/coupons/<code>", 200)
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["client"] == "127.0.0.1" and line["level"] == "INFO"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["ts"])
    assert isinstance(line["pid"], int)


@pytest.mark.parametrize("sent", ["short", "a" * 129, "two words here", "tab\tinjected-id",
                                  "<script>alert(1)</script>", "日志编号-00000001"])
def test_an_unfit_request_id_is_replaced_by_a_new_one(client, capsys, sent):
    answer = client.http.get("/healthz", headers={"X-Request-ID": sent})
    made = answer.headers["X-Request-ID"]
    assert made != sent and re.fullmatch(r"[0-9a-f]{32}", made)
    [line] = access_lines(capsys.readouterr().err)
    assert line["request_id"] == made


def test_without_a_request_id_each_request_gets_its_own(client, capsys):
    first = client.http.get("/healthz").headers["X-Request-ID"]
    second = client.http.get("/no/such/page").headers["X-Request-ID"]
    assert first != second
    lines = access_lines(capsys.readouterr().err)
    assert [(line["route"], line["status"], line["request_id"]) for line in lines] == [
        ("/healthz", 200, first), ("<unmatched>", 404, second)]


@pytest.mark.config(LOG_FORMAT="text")
def test_text_format_for_a_terminal(client, capsys):
    client.http.get("/healthz", headers={"X-Request-ID": "abcdefgh12"})
    lines = [line for line in capsys.readouterr().err.splitlines() if "couponsvc.access" in line
             and not line.startswith("INFO  [")]  # (alembic's own handler, from the migrations)
    assert len(lines) == 1, lines
    assert re.fullmatch(r"\S+ INFO couponsvc\.access GET /healthz 200 request_id=abcdefgh12 "
                        r"method=GET route=/healthz status=200 duration_ms=[\d.]+ client=127\.0\.0\.1",
                        lines[0])


@pytest.mark.config(REDIS_URL=None, ALLOW_PRIVATE_WEBHOOK_TARGETS=True)
def test_a_job_run_in_process_logs_under_the_request_that_queued_it(client, app, capsys):
    from tests.integrations.receiver import Receiver

    with Receiver() as receiver:
        shop = Shop(client)
        client.ok(client.post(f"merchants/{shop.merchant['id']}/integrations", {
            "adapter": "webhook", "config": {"url": receiver.url + "/hook"},
            "events": ["coupon.redeemed"]}, key=shop.manager), 201)
        code = shop.coupon()["code"]
        capsys.readouterr()
        answer = client.post("redemptions", {"code": code}, key=shop.scanner,
                             headers={"X-Request-ID": "redeem-at-till-0042"})
        assert answer.status_code == 201
        app.extensions["couponsvc.jobs"].wait_idle()
        assert len(receiver.requests) == 1
    lines = [line for line in json_lines(capsys.readouterr().err)
             if line.get("request_id") == "redeem-at-till-0042"]
    said = [(line["logger"], line["msg"].split(":")[0]) for line in lines]
    assert ("couponsvc.access", "POST /api/v1/redemptions 201") in said
    assert ("couponsvc.jobs", "job drain started") in said
    assert ("couponsvc.jobs", "job drain succeeded") in said
    [attempt] = [line for line in lines if line["logger"] == "couponsvc.deliveries.attempt"]
    assert (attempt["adapter"], attempt["result"], attempt["status_code"]) == ("webhook", "succeeded", 200)
    assert attempt["event_type"] == "coupon.redeemed"


@pytest.mark.config(ACCESS_LOG=False)
def test_the_access_line_can_be_left_out_the_request_id_stays(client, capsys):
    answer = client.http.get("/healthz", headers={"X-Request-ID": "abcdefgh12"})
    assert answer.headers["X-Request-ID"] == "abcdefgh12"
    assert access_lines(capsys.readouterr().err) == []
