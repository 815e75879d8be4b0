from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from couponsvc import codes
from couponsvc.qr import payload
from couponsvc.qr.keyring import KeyRing
from couponsvc.qr.payload import QrClaims, QrError

CAMPAIGN = "cmp_01JD8Y3K2Q9V7M4T6X0A5B8C1D"
VALID_UNTIL = datetime(2026, 12, 31, 15, 59, 59, tzinfo=UTC)
RING = KeyRing([Ed25519PrivateKey.generate()])


def make(code: str | None = None, ring: KeyRing = RING, **overrides) -> str:
    return payload.build(
        ring,
        code or codes.generate(),
        overrides.get("campaign_id", CAMPAIGN),
        overrides.get("valid_until", VALID_UNTIL),
        kid=overrides.get("kid"),
    )


def reason_of(text: str, ring: KeyRing = RING) -> str:
    with pytest.raises(QrError) as caught:
        payload.parse(ring, text)
    return caught.value.reason


def test_layout_of_a_payload():
    code = codes.generate()
    text = make(code)
    prefix, in_code, campaign, unix, signature = text.split(".")
    assert (prefix, in_code, campaign, unix) == ("CPN1", code, CAMPAIGN, "1798732799")
    assert RING.verify(f"CPN1.{code}.{CAMPAIGN}.1798732799".encode(), signature)


def test_round_trip():
    code = codes.generate()
    assert payload.parse(RING, make(code)) == QrClaims(
        code=code, campaign_id=CAMPAIGN, valid_until=VALID_UNTIL, kid=RING.current_kid
    )


@given(
    st.sampled_from(codes.generate_many(50)),
    st.from_regex(r"[A-Za-z0-9_-]{1,40}", fullmatch=True),
    st.datetimes(
        min_value=datetime(1970, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=8)), timezone(-timedelta(hours=5))]
        ),
    ),
)
def test_round_trip_of_any_claims(code, campaign_id, valid_until):
    claims = payload.parse(RING, make(code, campaign_id=campaign_id, valid_until=valid_until))
    assert claims.code == code
    assert claims.campaign_id == campaign_id
    assert claims.valid_until == valid_until.replace(microsecond=0)
    assert claims.valid_until.tzinfo is UTC


def test_building_is_deterministic_per_key():
    code = codes.generate()
    assert make(code) == make(code)


def test_surrounding_whitespace_from_a_scanner_is_ignored():
    text = make()
    assert payload.parse(RING, f"  {text}\r\n").code == text.split(".")[1]


def test_a_payload_of_an_older_key_still_parses_after_rotation():
    old = Ed25519PrivateKey.generate()
    text = make(ring=KeyRing([old]))
    rotated = KeyRing([Ed25519PrivateKey.generate(), old])
    claims = payload.parse(rotated, text)
    assert claims.kid != rotated.current_kid
    assert make(claims.code, ring=rotated, kid=claims.kid) == text


def test_a_payload_of_an_unknown_key_is_refused():
    assert reason_of(make(ring=KeyRing([Ed25519PrivateKey.generate()]))) == "signature"


def tampered(text: str, index: int, value: str) -> str:
    parts = text.split(".")
    parts[index] = value
    return ".".join(parts)


def test_tampering_with_any_claim_breaks_the_signature():
    text = make()
    other_code = codes.generate()
    assert reason_of(tampered(text, 1, other_code)) == "signature"
    assert reason_of(tampered(text, 2, CAMPAIGN[:-1] + "X")) == "signature"
    assert reason_of(tampered(text, 3, "1893455999")) == "signature"
    signature = text.split(".")[4]
    assert reason_of(tampered(text, 4, signature[::-1])) == "signature"
    assert reason_of(tampered(text, 4, signature[:-2])) == "signature"


def test_a_signature_of_other_claims_does_not_transfer():
    one, two = make(), make()
    assert reason_of(tampered(one, 4, two.split(".")[4])) == "signature"


@pytest.mark.parametrize(
    "edit",
    [
        lambda t: "",
        lambda t: "K7QM-3XPA-9RT2",
        lambda t: "https://example.com/c/K7QM3XPA9RT2",
        lambda t: t.replace("CPN1", "CPN2", 1),
        lambda t: t.replace("CPN1", "cpn1", 1),
        lambda t: t + ".extra",
        lambda t: t.rsplit(".", 1)[0],
        lambda t: t.rsplit(".", 1)[0] + ".",
        lambda t: tampered(t, 1, t.split(".")[1].lower()),
        lambda t: tampered(t, 1, t.split(".")[1][:-1]),
        lambda t: tampered(t, 1, "O" + t.split(".")[1][1:]),
        lambda t: tampered(t, 1, codes.display(t.split(".")[1])),
        lambda t: tampered(t, 2, ""),
        lambda t: tampered(t, 2, "cmp 01"),
        lambda t: tampered(t, 2, "活动"),
        lambda t: tampered(t, 2, "x" * 129),
        lambda t: tampered(t, 3, ""),
        lambda t: tampered(t, 3, "-1"),
        lambda t: tampered(t, 3, "+1798732799"),
        lambda t: tampered(t, 3, "01798732799"),
        lambda t: tampered(t, 3, "1798732799.5"),
        lambda t: tampered(t, 3, "١٧٩٨٧٣٢٧٩٩"),
        lambda t: tampered(t, 3, "999999999999"),
        lambda t: t + "A" * 600,
    ],
)
def test_malformed_text_is_a_format_error(edit):
    assert reason_of(edit(make())) == "format"


def test_qr_error_is_a_value_error_with_a_declared_reason():
    with pytest.raises(ValueError) as caught:
        payload.parse(RING, "nonsense")
    assert caught.value.reason in QrError.REASONS
    assert str(caught.value)


@pytest.mark.parametrize(
    "overrides",
    [
        {"campaign_id": "cmp.01"},
        {"campaign_id": ""},
        {"valid_until": datetime(2026, 12, 31)},
        {"valid_until": datetime(1969, 12, 31, tzinfo=UTC)},
    ],
)
def test_build_refuses_claims_that_would_not_parse(overrides):
    with pytest.raises(ValueError):
        make(**overrides)


def test_build_refuses_a_code_not_in_canonical_form():
    code = codes.generate()
    with pytest.raises(ValueError):
        make(codes.display(code))
    with pytest.raises(codes.CodeError):
        make(code[:-1])
