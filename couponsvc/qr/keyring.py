"""Ed25519 keys that sign QR payloads, and the public keys scanners verify them with.

The first signing key is the current one; older ones stay in the ring, after it, so
that coupons they signed keep verifying until they expire. Keys whose private half
is gone can stay as verify-only public keys. A key's `kid` is the first 12 characters
of base64url(sha256(raw public key)).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable, Sequence

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from ..instance_files import read_or_create

DEV_KEY_FILENAME = "qr_signing_key.pem"
KID_LENGTH = 12
_RAW_KEY_LENGTH = 32
_SIGNATURE_LENGTH = 64


def b64url_encode(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict inverse of `b64url_encode`: one text per byte string, else ValueError."""
    if not text.isascii():
        raise ValueError("not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error:
        raise ValueError("not base64url") from None
    if b64url_encode(data) != text:  # stray characters, padding or non-zero spare bits
        raise ValueError("not canonical base64url")
    return data


def kid_of(public_key: Ed25519PublicKey) -> str:
    """The key id: the first 12 characters of base64url(sha256(raw public key))."""
    return b64url_encode(hashlib.sha256(_raw_public(public_key)).digest())[:KID_LENGTH]


def generate_private_key_text() -> str:
    """A new signing key as base64url of its 32-byte seed, for COUPONSVC_QR_SIGNING_KEYS."""
    return b64url_encode(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    )


class UnknownKeyError(LookupError):
    """No signing key of the ring has this kid (its private half was removed)."""


class KeyRing:
    """Signing keys (the first is current) plus verify-only public keys."""

    def __init__(
        self,
        signing_keys: Sequence[Ed25519PrivateKey],
        public_keys: Iterable[Ed25519PublicKey] = (),
    ) -> None:
        if not signing_keys:
            raise ValueError("a key ring needs at least one signing key")
        self._private: dict[str, Ed25519PrivateKey] = {}
        self._public: dict[str, Ed25519PublicKey] = {}
        for private in signing_keys:
            kid = kid_of(private.public_key())
            self._private.setdefault(kid, private)
            self._public.setdefault(kid, private.public_key())
        for public in public_keys:
            self._public.setdefault(kid_of(public), public)
        self._current = next(iter(self._private))

    @classmethod
    def from_settings(
        cls, signing_keys: Sequence[str], public_keys: Sequence[str], instance_path: str
    ) -> KeyRing:
        """Build the ring from configuration text; ValueError names a bad entry.

        A signing key is a PKCS8 PEM private key or the base64url (or standard base64)
        of a raw 32-byte seed; a public key is the base64url of its raw 32 bytes. With
        no signing key, a development key is loaded from, or created at,
        ``<instance_path>/qr_signing_key.pem``.
        """
        count = len(signing_keys)
        private = [
            _parse_private(text, f"signing key #{n} of {count}")
            for n, text in enumerate(signing_keys, start=1)
        ]
        if not private:
            private = [_load_or_create_dev_key(instance_path)]
        count = len(public_keys)
        public = [
            _parse_public(text, f"public key #{n} of {count}")
            for n, text in enumerate(public_keys, start=1)
        ]
        return cls(private, public)

    @property
    def current_kid(self) -> str:
        """The kid of the key new campaigns are signed with."""
        return self._current

    @property
    def kids(self) -> list[str]:
        """Every kid of the ring: signing keys first, current first."""
        return list(self._public)

    def sign(self, message: bytes, kid: str | None = None) -> str:
        """The base64url signature of `message` by key `kid` (None: the current key).

        A `kid` whose private key is not in the ring raises UnknownKeyError: signing
        with another key would hand out a second, different payload for the same
        coupon. Ed25519 is deterministic: the same key and message always give the
        same signature.
        """
        key = self._private.get(kid or self._current)
        if key is None:
            raise UnknownKeyError(f"no signing key has the kid {kid!r}")
        return b64url_encode(key.sign(message))

    def verify(self, message: bytes, signature_b64: str) -> str | None:
        """The kid of the key whose signature `signature_b64` is over `message`, or None."""
        try:
            signature = b64url_decode(signature_b64)
        except ValueError:
            return None
        if len(signature) != _SIGNATURE_LENGTH:
            return None
        for kid, public in self._public.items():
            try:
                public.verify(signature, message)
            except InvalidSignature:
                continue
            return kid
        return None

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public keys as a JWK set, current first, for scanners that verify offline."""
        return {
            "keys": [
                {
                    "kid": kid,
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "alg": "Ed25519",
                    "x": b64url_encode(_raw_public(public)),
                }
                for kid, public in self._public.items()
            ]
        }


def _raw_public(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _decode_raw_key(text: str) -> bytes:
    """32 bytes from base64url or standard base64, padded or not; ValueError otherwise."""
    compact = "".join(text.split()).rstrip("=")
    standard = compact.replace("-", "+").replace("_", "/")
    try:
        data = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
    if len(data) != _RAW_KEY_LENGTH:
        raise ValueError(f"decodes to {len(data)} bytes, not {_RAW_KEY_LENGTH}")
    return data


def _parse_private(text: str, name: str) -> Ed25519PrivateKey:
    # Messages never quote the text: it is a secret.
    stripped = text.strip()
    if stripped.startswith("-----BEGIN"):
        # Environment variables often carry a PEM with its newlines written as \n.
        pem = stripped.replace("\\n", "\n").encode("ascii", "replace")
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise ValueError(f"{name}: not an unencrypted PKCS8 PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{name}: the PEM holds a key of another type, not Ed25519")
        return key
    try:
        return Ed25519PrivateKey.from_private_bytes(_decode_raw_key(stripped))
    except ValueError as exc:
        raise ValueError(
            f"{name}: not a PEM Ed25519 private key nor the base64 of a 32-byte seed ({exc})"
        ) from None


def _parse_public(text: str, name: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(_decode_raw_key(text))
    except ValueError as exc:
        raise ValueError(
            f"{name}: not the base64url of a raw 32-byte Ed25519 public key ({exc})"
        ) from None


def _load_or_create_dev_key(instance_path: str) -> Ed25519PrivateKey:
    """The key in ``<instance_path>/qr_signing_key.pem``, created (mode 0600) if missing."""
    text = read_or_create(instance_path, DEV_KEY_FILENAME, _new_pem)
    return _parse_private(text, f"development signing key {os.path.join(instance_path, DEV_KEY_FILENAME)}")


def _new_pem() -> str:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
