import base64
import os
import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from couponsvc.qr import keyring
from couponsvc.qr.keyring import KeyRing

MESSAGE = b"CPN1.K7QM3XPA9RT2.cmp_01JD8Y3K2Q9V7M4T6X0A5B8C1D.1767225599"


def seed_of(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def pem_of(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_text_of(key: Ed25519PrivateKey) -> str:
    return keyring.b64url_encode(
        key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


def ring_of(*texts: str, public: tuple[str, ...] = (), instance_path: str = "/nonexistent"):
    return KeyRing.from_settings(list(texts), list(public), instance_path)


def test_kid_is_a_hash_prefix_of_the_public_key():
    key = Ed25519PrivateKey.generate()
    ring = KeyRing([key])
    assert len(ring.current_kid) == 12
    assert ring.current_kid == keyring.kid_of(key.public_key())
    assert ring.kids == [ring.current_kid]


def test_sign_then_verify_names_the_key():
    ring = KeyRing([Ed25519PrivateKey.generate()])
    signature = ring.sign(MESSAGE)
    assert "=" not in signature
    assert len(signature) == 86
    assert ring.verify(MESSAGE, signature) == ring.current_kid


def test_signing_is_deterministic():
    ring = KeyRing([Ed25519PrivateKey.generate()])
    assert ring.sign(MESSAGE) == ring.sign(MESSAGE)


def test_verify_refuses_another_message_or_signature():
    ring = KeyRing([Ed25519PrivateKey.generate()])
    signature = ring.sign(MESSAGE)
    assert ring.verify(MESSAGE + b"0", signature) is None
    flipped = ("B" if signature[0] == "A" else "A") + signature[1:]
    assert ring.verify(MESSAGE, flipped) is None


@pytest.mark.parametrize("signature", ["", "not base64!", "AAAA", "A" * 85, "é" * 86])
def test_verify_refuses_text_that_is_no_signature(signature):
    ring = KeyRing([Ed25519PrivateKey.generate()])
    assert ring.verify(MESSAGE, signature) is None


def test_verify_refuses_a_non_canonical_encoding_of_a_good_signature():
    # 64 bytes leave 4 spare bits in the last base64 character; only zeros are accepted,
    # so one signature has exactly one text.
    ring = KeyRing([Ed25519PrivateKey.generate()])
    signature = ring.sign(MESSAGE)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    twin = signature[:-1] + alphabet[last | 1]
    assert base64.urlsafe_b64decode(twin + "==") == base64.urlsafe_b64decode(signature + "==")
    assert ring.verify(MESSAGE, twin) is None
    assert ring.verify(MESSAGE, signature + "==") is None


def test_rotation_keeps_old_signatures_verifiable():
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    before = KeyRing([old])
    old_signature = before.sign(MESSAGE)

    after = ring_of(keyring.b64url_encode(seed_of(new)), keyring.b64url_encode(seed_of(old)))
    assert after.current_kid == keyring.kid_of(new.public_key())
    assert after.verify(MESSAGE, old_signature) == before.current_kid
    assert after.verify(MESSAGE, after.sign(MESSAGE)) == after.current_kid
    assert after.sign(MESSAGE) != old_signature
    assert [k["kid"] for k in after.jwks()["keys"]] == [after.current_kid, before.current_kid]


def test_sign_with_a_named_key_and_refuse_an_unknown_one():
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    ring = KeyRing([new, old])
    old_kid = keyring.kid_of(old.public_key())
    assert ring.sign(MESSAGE, kid=old_kid) == KeyRing([old]).sign(MESSAGE)
    assert ring.verify(MESSAGE, ring.sign(MESSAGE, kid=old_kid)) == old_kid
    assert ring.sign(MESSAGE, kid=None) == KeyRing([new]).sign(MESSAGE)
    with pytest.raises(keyring.UnknownKeyError):
        ring.sign(MESSAGE, kid="retiredkid00")
    # a key kept only as a public key verifies its coupons but signs nothing
    verify_only = KeyRing([new], [old.public_key()])
    assert verify_only.verify(MESSAGE, ring.sign(MESSAGE, kid=old_kid)) == old_kid
    with pytest.raises(keyring.UnknownKeyError):
        verify_only.sign(MESSAGE, kid=old_kid)


def test_verify_only_public_keys_verify():
    retired = Ed25519PrivateKey.generate()
    signature = KeyRing([retired]).sign(MESSAGE)
    ring = ring_of(keyring.generate_private_key_text(), public=(public_text_of(retired),))
    retired_kid = keyring.kid_of(retired.public_key())
    assert ring.verify(MESSAGE, signature) == retired_kid
    assert retired_kid in ring.kids
    # It cannot sign, and naming it never signs with another key.
    with pytest.raises(keyring.UnknownKeyError):
        ring.sign(MESSAGE, kid=retired_kid)


def test_jwks_lists_every_key_as_an_okp_jwk():
    signer, retired = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    ring = KeyRing([signer], [retired.public_key(), signer.public_key()])
    keys = ring.jwks()["keys"]
    assert len(keys) == 2  # the signer's public key is not listed twice
    for jwk, key in zip(keys, [signer, retired], strict=True):
        assert jwk == {
            "kid": keyring.kid_of(key.public_key()),
            "kty": "OKP",
            "crv": "Ed25519",
            "alg": "Ed25519",
            "x": public_text_of(key),
        }


def test_a_ring_needs_a_signing_key():
    with pytest.raises(ValueError):
        KeyRing([])


def test_signing_key_text_in_every_accepted_form():
    key = Ed25519PrivateKey.generate()
    seed = seed_of(key)
    expected = keyring.kid_of(key.public_key())
    forms = [
        keyring.b64url_encode(seed),
        base64.urlsafe_b64encode(seed).decode(),
        base64.b64encode(seed).decode(),
        base64.b64encode(seed).decode().rstrip("="),
        pem_of(key),
        pem_of(key).replace("\n", "\\n"),  # a PEM squeezed into one environment line
        f"  {keyring.b64url_encode(seed)}\n",
    ]
    for text in forms:
        assert ring_of(text).current_kid == expected, text


def test_generate_private_key_text_is_a_usable_seed():
    text = keyring.generate_private_key_text()
    assert len(text) == 43
    assert ring_of(text).verify(MESSAGE, ring_of(text).sign(MESSAGE))
    assert keyring.generate_private_key_text() != text


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "hunter2",
        keyring.b64url_encode(os.urandom(31)),
        keyring.b64url_encode(os.urandom(64)),
        "-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n",
        "£" * 43,
    ],
)
def test_bad_signing_key_text_names_the_entry(bad):
    good = keyring.generate_private_key_text()
    with pytest.raises(ValueError) as caught:
        ring_of(good, bad)
    message = str(caught.value)
    assert "signing key #2 of 2" in message
    if bad:
        assert bad.strip() not in message  # a secret is never echoed


def test_a_pem_of_another_key_type_is_refused():
    ec_pem = (
        generate_private_key(SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    with pytest.raises(ValueError, match="signing key #1 of 1.*Ed25519"):
        ring_of(ec_pem)


def test_an_encrypted_pem_is_refused():
    encrypted = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(ValueError, match="signing key #1 of 1"):
        ring_of(encrypted.decode())


def test_bad_public_key_text_names_the_entry():
    good = public_text_of(Ed25519PrivateKey.generate())
    with pytest.raises(ValueError, match="public key #2 of 2"):
        ring_of(keyring.generate_private_key_text(), public=(good, "AAAA"))


def test_dev_key_is_created_private_and_reused(tmp_path):
    instance = tmp_path / "instance" / "nested"
    first = ring_of(instance_path=str(instance))
    path = instance / keyring.DEV_KEY_FILENAME
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert os.listdir(instance) == [keyring.DEV_KEY_FILENAME]  # no temporary left behind

    again = ring_of(instance_path=str(instance))
    assert again.current_kid == first.current_kid
    assert again.verify(MESSAGE, first.sign(MESSAGE)) == first.current_kid


def test_dev_key_is_not_used_when_keys_are_configured(tmp_path):
    ring_of(keyring.generate_private_key_text(), instance_path=str(tmp_path))
    assert not (tmp_path / keyring.DEV_KEY_FILENAME).exists()


def test_dev_key_created_concurrently_is_the_one_kept(tmp_path, monkeypatch):
    # Another process links its key into place between our look and our link.
    theirs = Ed25519PrivateKey.generate()
    real_link = os.link

    def link_after_them(source, target):
        with open(target, "w") as file:
            file.write(pem_of(theirs))
        return real_link(source, target)

    monkeypatch.setattr(os, "link", link_after_them)
    ring = ring_of(instance_path=str(tmp_path))
    assert ring.current_kid == keyring.kid_of(theirs.public_key())
    assert os.listdir(tmp_path) == [keyring.DEV_KEY_FILENAME]


def test_a_corrupt_dev_key_stops_the_boot(tmp_path):
    (tmp_path / keyring.DEV_KEY_FILENAME).write_text("garbage")
    with pytest.raises(ValueError, match=keyring.DEV_KEY_FILENAME):
        ring_of(instance_path=str(tmp_path))
