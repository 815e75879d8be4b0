"""The delivery semantics every adapter inherits from `integrations.http`."""

import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from integrations import http
from integrations.adapter import Context, PermanentError, RetryableError


def test_2xx_is_an_outcome_with_an_excerpt(receiver, context):
    receiver.answer(202, "accepted " + "x" * 1000)
    outcome = http.post(context, receiver.url + "/hook", json={"a": 1})
    assert outcome.status_code == 202
    assert outcome.excerpt.startswith("accepted") and len(outcome.excerpt) == 500


def test_json_is_sent_as_compact_utf8(receiver, context):
    http.post(context, receiver.url, json={"title": "双人套餐"})
    sent = receiver.requests[0]
    assert sent.body == '{"title":"双人套餐"}'.encode()
    assert sent.headers["content-type"] == "application/json; charset=utf-8"


def test_410_disables(receiver, context):
    receiver.answer(410, "gone")
    with pytest.raises(PermanentError) as caught:
        http.post(context, receiver.url)
    assert caught.value.disable and caught.value.status_code == 410
    assert caught.value.excerpt == "gone"


@pytest.mark.parametrize("status", [400, 401, 404, 408, 409, 422, 500, 502])
def test_every_other_failure_is_retried(receiver, context, status):
    receiver.answer(status, "nope")
    with pytest.raises(RetryableError) as caught:
        http.post(context, receiver.url)
    assert caught.value.status_code == status
    assert caught.value.retry_after is None and caught.value.excerpt == "nope"


def test_redirects_are_not_followed(receiver, context):
    receiver.answer(302, headers={"Location": receiver.url + "/elsewhere"})
    with pytest.raises(RetryableError) as caught:
        http.post(context, receiver.url)
    assert caught.value.status_code == 302
    assert [r.path for r in receiver.requests] == ["/"]


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_in_seconds_is_honoured(receiver, context, status):
    receiver.answer(status, headers={"Retry-After": "120"})
    with pytest.raises(RetryableError) as caught:
        http.post(context, receiver.url)
    assert caught.value.retry_after == 120


def test_retry_after_as_http_date(receiver, context):
    when = datetime.now(UTC) + timedelta(minutes=10)
    receiver.answer(503, headers={"Retry-After": format_datetime(when, usegmt=True)})
    with pytest.raises(RetryableError) as caught:
        http.post(context, receiver.url)
    assert 590 <= caught.value.retry_after <= 600


@pytest.mark.parametrize(("header", "seconds"), [
    (None, None), ("", None), ("soon", None), ("0", 1.0), ("30", 30.0),
    ("999999", 6 * 3600.0), ("Wed, 21 Oct 2015 07:28:00 GMT", 1.0)])
def test_retry_after_parsing_and_bounds(header, seconds):
    assert http.retry_after(header) == seconds


def test_retry_after_http_date_relative_to_now():
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert http.retry_after("Tue, 01 Jan 2030 00:01:30 GMT", now=now) == 90


def test_a_slow_answer_times_out(receiver):
    receiver.answer(200, delay=1.5)
    with pytest.raises(RetryableError) as caught:
        http.post(Context(timeout=0.3), receiver.url)
    assert caught.value.status_code is None
    assert "0.3 s" in caught.value.excerpt


def test_a_dripping_answer_cannot_hold_the_worker(receiver):
    receiver.answer(200, b"x" * 40, drip=0.05)  # each byte in time, the whole far too late
    with pytest.raises(RetryableError, match="took longer than 0.3 s") as caught:
        http.post(Context(timeout=0.3), receiver.url)
    assert caught.value.status_code == 200  # tests/integrations/test_deadline.py counts what was sent


def test_a_closed_port_is_retried(context):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/"
    with pytest.raises(RetryableError) as caught:
        http.post(context, url)
    assert caught.value.status_code is None and "could not reach 127.0.0.1" in caught.value.excerpt


def test_only_http_and_https(context):
    for url in ("ftp://example.com/x", "file:///etc/passwd", "gopher://example.com"):
        with pytest.raises(PermanentError, match="only http and https"):
            http.post(context, url)


def test_body_is_read_up_to_a_bound(receiver, context):
    receiver.answer(200, b"a" * (3 * http.MAX_BODY))
    reply = http.request(context, "GET", receiver.url)
    assert len(reply.body) == http.MAX_BODY


def test_a_caller_session_is_reused(receiver):
    connections = []  # one entry per TCP connection the receiver accepts
    accept = receiver._server.process_request

    def counted(request, address):
        connections.append(address)
        accept(request, address)

    receiver._server.process_request = counted
    session = http.new_session(allow_private_targets=True)
    session.headers["X-Caller"] = "mine"
    context = Context(session=session, allow_private_targets=True)
    for _ in range(3):
        http.post(context, receiver.url)
    assert [r.headers.get("x-caller") for r in receiver.requests] == ["mine"] * 3
    assert receiver.requests[0].headers["user-agent"] == http.USER_AGENT
    assert len(connections) == 1, connections
    http.post(Context(session=http.new_session(allow_private_targets=True),
                      allow_private_targets=True), receiver.url)
    assert len(connections) == 2, "another session opens its own connection"

