"""What never reaches a log whole: codes keep their first 4 symbols, keys their prefix,
secrets nothing; through the JSON and the text formatter, message, extras and traceback."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

import pytest

from couponsvc import codes
from couponsvc.logs.formatting import JsonFormatter, TextFormatter
from couponsvc.logs.redaction import redact

CODE = codes.generate()
DISPLAY = codes.display(CODE)


@pytest.mark.parametrize(("text", "kept", "gone"), [
    (f"redeem {DISPLAY} refused", f"{CODE[:4]}-****-****", DISPLAY),
    (f"raw={CODE.lower()}", f"{CODE[:4].lower()}-****-****", CODE.lower()),
    (f"spaced {DISPLAY.replace('-', ' ')}.", f"{CODE[:4]}-****-****", CODE[4:8]),
    (f"qr v1.{CODE}.cmp_01J.kid.sig", f"v1.{CODE[:4]}-****-****.cmp_01J", CODE),
    ("key cpn_scanner_AbCd3fGh1jK_lmnopqrstuvwxyz0123456789ABCDEFG", "cpn_scanner_AbCd…",
     "3fGh1jK_lmnop"),
    ("Authorization: Bearer cpn_platform_secretsecretsecret", "[redacted]", "secretsecret"),
    ("sent Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig to", "Bearer [redacted] to", "eyJhbGci"),
    ("signing with whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_[redacted]", "MfKQ9r8GKY"),
    ("POST /robot/send?access_token=0123abcd&timestamp=1&sign=c2lnbg%3D%3D HTTP/1.1",
     "access_token=[redacted]&timestamp=1&sign=[redacted]", "0123abcd"),
    ("connect postgresql://app:hunter2@db.internal/couponsvc", "app:[redacted]@db.internal", "hunter2"),
    ('{"email": "ops@example.cn", "password": "correct horse"}', '"password": "[redacted]"',
     "correct horse"),
    ("stored gAAAAABnZ3VlcnlfZW5jcnlwdGVkX3ZhbHVlX2hlcmU=", "[encrypted]", "Z3VlcnlfZW5j"),
])
def test_redact(text, kept, gone):
    masked = redact(text)
    assert kept in masked and gone not in masked, masked


def test_ordinary_ids_and_messages_are_left_alone():
    text = ("job periodic-relay-sweep-11fabecc3e-1796001008 evt_01JD3W7Y5N6QK2M8R4T9VXZ2AB "
            "red_01JD3W7Y5N6QK2M8R4T9VXZ2AC POST /api/v1/redemptions 201 request_id=9f8e7d6c")
    assert redact(text) == text


def test_both_formatters_mask_the_message_the_extras_and_the_traceback():
    try:
        raise ValueError(f"no coupon {DISPLAY} for Bearer cpn_manager_0123456789abcdef")
    except ValueError:
        record = logging.LogRecord("couponsvc.test", logging.ERROR, __file__, 1,
                                   "look-up of %s failed", (CODE,), sys.exc_info())
    record.raw_input = DISPLAY
    for formatter in (JsonFormatter(), TextFormatter()):
        line = formatter.format(record)
        assert CODE not in line and DISPLAY not in line and "0123456789abcdef" not in line, line
        assert f"{CODE[:4]}-****-****" in line
    entry = json.loads(JsonFormatter().format(record))
    assert entry["raw_input"] == f"{CODE[:4]}-****-****"
    assert entry["exc"].startswith("Traceback") and "Bearer [redacted]" in entry["exc"]


def test_a_json_line_is_written_whatever_its_values():
    """Values orjson writes (Chinese as is, a datetime, an object by its str) and values it
    will not (an integer past 64 bits, a lone surrogate), which the standard library's
    encoder then writes: every record makes one line of JSON."""
    record = logging.LogRecord("couponsvc.test", logging.INFO, __file__, 1, "核销 %s", ("成功",), None)
    record.at = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    record.thing = object()
    entry = json.loads(JsonFormatter().format(record))
    assert entry["msg"] == "核销 成功" and entry["at"] == "2026-11-30T12:00:00+00:00"
    assert entry["thing"].startswith("<object object at")
    record.big, record.odd = 2**70, "a\ud800b"
    entry = json.loads(JsonFormatter().format(record))
    assert (entry["big"], entry["odd"], entry["msg"]) == (2**70, "a\ud800b", "核销 成功")
