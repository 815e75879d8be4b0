"""The vectors the browser's code is tested against hold for the server's code, and the
browser's code passes them: tests/vectors/*.json (written by tests/vectors/generate.py)
are checked here against couponsvc.codes and couponsvc.qr.payload, then node runs
tests/js/ against the same files."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from couponsvc import codes
from couponsvc.qr import payload
from couponsvc.qr.keyring import KeyRing, b64url_decode
from tests.vectors import generate

ROOT = Path(__file__).resolve().parent.parent
CODES = json.loads(generate.CODES_FILE.read_text(encoding="utf-8"))
QR = json.loads(generate.QR_FILE.read_text(encoding="utf-8"))


def test_the_committed_vectors_are_what_the_generator_writes():
    assert generate.CODES_FILE.read_text(encoding="utf-8") == generate.dump(generate.code_vectors())
    assert generate.QR_FILE.read_text(encoding="utf-8") == generate.dump(generate.qr_vectors())


def test_code_vectors_hold_for_couponsvc_codes():
    assert CODES["alphabet"] == codes.ALPHABET and CODES["length"] == codes.LENGTH
    reasons = {vector.get("reason", "ok") for vector in CODES["cases"]}
    assert reasons == {"ok", *codes.CodeError.REASONS}
    for vector in CODES["cases"]:
        if "canonical" in vector:
            assert codes.canonical(vector["input"]) == vector["canonical"]
        else:
            with pytest.raises(codes.CodeError) as caught:
                codes.canonical(vector["input"])
            assert caught.value.reason == vector["reason"], vector
    for vector in CODES["check_symbols"]:
        assert codes.check_symbol(vector["body"]) == vector["check"]
    for vector in CODES["display"]:
        assert codes.display(vector["input"]) == vector["display"]


def _ring_of(keys: list[dict]) -> KeyRing:
    """A verify-only ring: a throwaway signing key plus the vectors' public keys."""
    public = [Ed25519PublicKey.from_public_bytes(b64url_decode(key["x"])) for key in keys]
    return KeyRing([Ed25519PrivateKey.generate()], public)


def test_qr_vectors_hold_for_couponsvc_qr_payload():
    ring = _ring_of(QR["keys"])
    outcomes = {vector.get("reason", "ok") for vector in QR["cases"]}
    assert outcomes == {"ok", *payload.QrError.REASONS}
    for vector in QR["cases"]:
        if "reason" in vector:
            with pytest.raises(payload.QrError) as caught:
                payload.parse(ring, vector["payload"])
            assert caught.value.reason == vector["reason"], vector["note"]
        else:
            claims = payload.parse(ring, vector["payload"])
            assert (claims.code, claims.campaign_id, int(claims.valid_until.timestamp()), claims.kid) \
                == (vector["code"], vector["campaign_id"], vector["valid_until"], vector["kid"])


def test_the_forged_vector_is_a_real_signature_by_another_key():
    forged = next(v for v in QR["cases"] if v["note"].startswith("forged"))
    claims = payload.parse(_ring_of([QR["stranger_key"]]), forged["payload"])
    assert claims.kid == QR["stranger_key"]["kid"]


def test_javascript_passes_the_same_vectors():
    node = shutil.which("node")
    assert node is not None, "node is needed for the browser code's tests (apt-get install nodejs)"
    done = subprocess.run([node, "--test", str(ROOT / "tests" / "js")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout
