"""Cursor pagination: `?limit=&after=` → `{"data": [...], "next": cursor | null}`.

A cursor is one the list could have given, or `422 validation_error`: an opaque token
for lists in numeric order (events, deliveries, revocations, redemption attempts), an id
of the listed kind (`cmp_` and 26 Crockford base32 characters for campaigns) for lists in
id order. A malformed, tampered or other list's cursor is never an empty page (the client
would think it had read everything) nor a database error.

The numbers behind the numeric lists are global (every merchant's rows), so a token hides
them: one AES block (the list's 8-byte tag, then the number) encrypted under a key derived
from `SECRET_KEY`, base64url. A block that does not decrypt to this list's tag is refused.
Changing `SECRET_KEY` refuses the cursors given before; a client then starts over.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from flask import current_app

from ..config import purpose_key
from ..errors import DomainError
from ..extensions import db


def cursor_page(query, column, *, after: str | None, limit: int, integer: bool = False,
                prefix: str = "", descending: bool = False,
                present: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """Run `query` ordered by `column` (unique; increasing, or decreasing when
    `descending`) from just after `after`. A cursor is the last row's `column` value, with
    `prefix` in front; an opaque token of it when `integer` (`number_token`, the table's
    name telling the lists apart); `present` turns each row into what is listed."""
    if after:
        value = _cursor(after, integer, prefix, column)
        query = query.where(column < value if descending else column > value)
    ordered = column.desc() if descending else column
    rows = list(db.session.execute(query.order_by(ordered).limit(limit + 1)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    last = getattr(rows[-1], column.key) if more else None
    cursor = None if last is None else number_token(column.table.name, last) if integer else f"{prefix}{last}"
    return {"data": [present(row) for row in rows] if present else rows, "next": cursor}


# The prefix of the ids of each table listed in id order (`couponsvc.ids.new_id`).
ID_PREFIXES = {"merchants": "mer", "stores": "sto", "api_keys": "key", "campaigns": "cmp",
               "integrations": "int", "redemptions": "red", "orders": "ord", "jobs": "job"}
_ID = re.compile(r"([a-z]{3})_[0-9A-HJKMNP-TV-Z]{26}")


_TOKEN = re.compile(r"[A-Za-z0-9_-]{22}")  # 16 bytes, base64url without padding


def number_token(kind: str, number: int) -> str:
    """The opaque cursor of position `number` in the list `kind` (`events`, `deliveries`, ...)."""
    block = _tag(kind) + int(number).to_bytes(8, "big", signed=True)
    encryptor = _cipher().encryptor()
    return base64.urlsafe_b64encode(encryptor.update(block) + encryptor.finalize()).decode().rstrip("=")


def integer_cursor(after: str, kind: str) -> int:
    """The number in a cursor that `number_token(kind, ...)` gave; 422 unless it is one."""
    if not _TOKEN.fullmatch(after):
        raise _not_a_cursor()
    try:
        block = base64.urlsafe_b64decode(after + "==")
    except (binascii.Error, ValueError):
        raise _not_a_cursor() from None
    decryptor = _cipher().decryptor()
    plain = decryptor.update(block) + decryptor.finalize()
    if not hmac.compare_digest(plain[:8], _tag(kind)):
        raise _not_a_cursor()  # tampered, or another list's
    return int.from_bytes(plain[8:], "big", signed=True)


def _tag(kind: str) -> bytes:
    return hashlib.sha256(f"couponsvc cursor {kind}".encode()).digest()[:8]


def _cipher() -> Cipher:
    key = purpose_key(current_app.config["SECRET_KEY"], b"couponsvc list cursors")
    return Cipher(algorithms.AES(key), modes.ECB())  # one block: a keyed permutation of it  # noqa: S305


def _cursor(after: str, integer: bool, prefix: str, column) -> Any:
    if integer:
        return integer_cursor(after, column.table.name)
    found = _ID.fullmatch(after)
    expected = ID_PREFIXES.get(column.table.name)
    if found is None or (expected is not None and found.group(1) != expected):
        raise _not_a_cursor()
    return after


def _not_a_cursor() -> DomainError:
    return DomainError("validation_error", "after is not a cursor this list gave",
                       errors={"after": ["Not a valid cursor."]})
