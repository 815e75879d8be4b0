"""Data keys: what encrypts secrets at rest (integration credentials, stored answers
that carried an API key).

`COUPONSVC_DATA_KEYS` holds comma-separated keys in Fernet's format; the first
encrypts, all decrypt (`cryptography`'s MultiFernet), so a key is rotated by putting
a new one first, running `couponsvc rotate-data-keys`, then dropping the old one.
With none configured on SQLite, a development key is kept under `instance/`, as the
QR signing key is. Encrypted text carries the prefix `fernet:` so that a column can
tell what it holds.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from .instance_files import read_or_create

DEV_KEY_FILENAME = "data_key"
PREFIX = "fernet:"


class DataKeyError(ValueError):
    """A stored value cannot be decrypted with any configured data key."""


def new_key() -> str:
    """A fresh key in Fernet's format, for COUPONSVC_DATA_KEYS."""
    return Fernet.generate_key().decode("ascii")


class DataKeys:
    """Encrypt with the first key, decrypt with any."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one data key is needed")
        fernets = []
        for n, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.encode("ascii")))
            except (ValueError, UnicodeEncodeError):
                raise ValueError(f"data key #{n} of {len(keys)} is not a Fernet key "
                                 "(32 url-safe base64-encoded bytes)") from None
        self._fernet = MultiFernet(fernets)
        self._current = fernets[0]

    @classmethod
    def from_settings(cls, keys: Sequence[str], instance_path: str) -> DataKeys:
        """The configured keys, or the development key under `instance_path`."""
        return cls(list(keys) or [_load_or_create_dev_key(instance_path)])

    def encrypt(self, plaintext: str) -> str:
        return PREFIX + self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, stored: str) -> str:
        if not is_encrypted(stored):
            raise DataKeyError("the value is not encrypted")
        try:
            return self._fernet.decrypt(stored[len(PREFIX):].encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise DataKeyError("no configured data key decrypts this value") from None

    def rotate(self, stored: str) -> str:
        """The same plaintext, encrypted under the current (first) key."""
        if not is_encrypted(stored):
            return self.encrypt(stored)
        try:
            return PREFIX + self._fernet.rotate(stored[len(PREFIX):].encode("ascii")).decode("ascii")
        except InvalidToken:
            raise DataKeyError("no configured data key decrypts this value") from None


def is_encrypted(stored: str | None) -> bool:
    return isinstance(stored, str) and stored.startswith(PREFIX)


def _load_or_create_dev_key(instance_path: str) -> str:
    return read_or_create(instance_path, DEV_KEY_FILENAME, new_key)
