"""Coupon codes: short enough to read aloud and type at the till, never guessable.

A code is 12 symbols from a 31-symbol alphabet without the look-alikes 0/O and
1/I/L: 11 random symbols, then one check symbol. 11 * log2(31) ≈ 54.5 random bits.

Check symbol. Let v(c) be the index of c in ALPHABET and number the positions 1..12.
A code is valid when

    sum(i * v(c_i)) ≡ 0  (mod 31).

31 is prime, so the product of two numbers that are not multiples of 31 is not a
multiple of 31 either. Hence:

- replacing symbol a by b at position i moves the sum by i * (b - a); 1 <= i <= 12
  and 0 < |b - a| < 31, so the sum stops being 0: every substitution is caught;
- swapping a and b at positions i < j moves it by (j - i) * (a - b); 0 < j - i < 31,
  so every transposition, adjacent or not, of two different symbols is caught.

The check symbol is the value that makes the sum vanish: with S the weighted sum of
the first 11 symbols, v(c_12) = -S * 12⁻¹ = -13 * S (mod 31), as 12 * 13 = 156 ≡ 1.
"""

from __future__ import annotations

import math
import secrets
import unicodedata
from operator import mul

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 12
BASE = len(ALPHABET)
RANDOM_BITS = (LENGTH - 1) * math.log2(BASE)

_BODY = LENGTH - 1
_INVERSE_OF_LAST_WEIGHT = pow(LENGTH, -1, BASE)
_VALUE = {symbol: value for value, symbol in enumerate(ALPHABET)}
# Input longer than this is refused before Unicode normalisation gets to see it.
_MAX_RAW_LENGTH = 64
_WEIGHTS = range(1, LENGTH + 1)  # the weight of each position in the check sum
# Dashes that phones, word processors and full-width keyboards put in pasted codes.
_EXTRA_SEPARATORS = frozenset("\u2212")

# Bulk generation works on whole byte strings so that the per-symbol work runs in C.
# A random byte below 248 = 8 * 31 maps onto the alphabet without bias (b % 31);
# bytes 248..255 are dropped (rejection sampling).
_ACCEPT_BELOW = 256 - 256 % BASE
_REJECTED_BYTES = bytes(range(_ACCEPT_BELOW, 256))
_BYTE_TO_SYMBOL = bytes(ord(ALPHABET[b % BASE]) for b in range(256))
# _WEIGHTED[k][ord(symbol)] is (k + 1) * v(symbol) mod 31: the symbol's share of the
# weighted sum at position k + 1.
_WEIGHTED = tuple(
    bytes(((k + 1) * _VALUE[chr(b)]) % BASE if chr(b) in _VALUE else 0 for b in range(256))
    for k in range(_BODY)
)
# _CHECK_FOR_SUM[s] is the check symbol (as a byte) for a weighted sum s of the body.
_CHECK_FOR_SUM = bytes(
    ord(ALPHABET[(-s * _INVERSE_OF_LAST_WEIGHT) % BASE]) for s in range(_BODY * (BASE - 1) + 1)
)
# Codes drawn per round of generate_many: bounds the memory of the intermediates.
_CHUNK = 1 << 16


class CodeError(ValueError):
    """A typed code is not a coupon code; `reason` says why, the message for whom."""

    LENGTH = "length"
    CHARACTER = "character"
    CHECK = "check"
    REASONS = (LENGTH, CHARACTER, CHECK)

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def check_symbol(body: str) -> str:
    """The check symbol that completes the 11 canonical symbols of `body`."""
    if len(body) != _BODY:
        raise ValueError(f"the body of a code has {_BODY} symbols, got {len(body)}")
    try:
        total = sum(i * _VALUE[symbol] for i, symbol in enumerate(body, start=1))
    except KeyError as exc:
        raise ValueError(f"{exc.args[0]!r} is not a coupon code symbol") from None
    return ALPHABET[(-total * _INVERSE_OF_LAST_WEIGHT) % BASE]


def generate() -> str:
    """One new canonical code."""
    return _draw(1)[0]


def generate_many(n: int) -> list[str]:
    """`n` new canonical codes, all different from one another.

    Uniqueness holds within the batch only; the caller handles collisions with codes
    already stored (at 54.5 bits they are rare: about n * stored / 2**54.5).
    """
    if n < 0:
        raise ValueError(f"cannot generate {n} codes")
    unique: dict[str, None] = {}
    while len(unique) < n:
        unique.update(dict.fromkeys(_draw(min(n - len(unique), _CHUNK))))
    return list(unique)


def canonical(raw: str) -> str:
    """The canonical form of a typed code, or CodeError.

    Accepts any case, spaces, hyphens and other dashes, and full-width forms (NFKC),
    e.g. ``k7qm 3xpa-9rt2``. Checks, in this order: length, alphabet, check symbol.
    """
    if len(raw) > _MAX_RAW_LENGTH:
        raise CodeError(CodeError.LENGTH, f"a coupon code has {LENGTH} characters")
    text = unicodedata.normalize("NFKC", raw).upper()
    # Already canonical (the usual case): nothing to take out, every symbol in the alphabet.
    symbols = text if len(text) == LENGTH and not text.strip(ALPHABET) else _symbols(text)
    if sum(map(mul, _WEIGHTS, map(_VALUE.__getitem__, symbols))) % BASE:
        raise CodeError(CodeError.CHECK, "the code was mistyped: its check character fails")
    return symbols


def _symbols(text: str) -> str:
    """The symbols of a typed code without its separators, checked for length and alphabet."""
    symbols = "".join(char for char in text if not _is_separator(char))
    if len(symbols) != LENGTH:
        raise CodeError(
            CodeError.LENGTH, f"a coupon code has {LENGTH} characters, got {len(symbols)}"
        )
    for position, symbol in enumerate(symbols, start=1):
        if symbol not in _VALUE:
            raise CodeError(
                CodeError.CHARACTER,
                f"{symbol!r} (position {position}) does not occur in coupon codes",
            )
    return symbols


def display(code: str) -> str:
    """The code grouped for people, ``K7QM-3XPA-9RT2``; accepts any form `canonical` does."""
    return grouped(canonical(code))


def grouped(code: str) -> str:
    """A code already canonical (as stored) grouped for people, as `display` groups it,
    without checking it again: a redeem's answer groups the code its statement returned."""
    return f"{code[:4]}-{code[4:8]}-{code[8:]}"


def is_valid(code: object) -> bool:
    """True when `canonical` accepts `code`."""
    if not isinstance(code, str):
        return False
    try:
        canonical(code)
    except CodeError:
        return False
    return True


def _is_separator(char: str) -> bool:
    return (
        char.isspace()
        or char in _EXTRA_SEPARATORS
        or unicodedata.category(char) in ("Pd", "Cf")  # dashes; zero-width and BOM
    )


def _draw(count: int) -> list[str]:
    """`count` random codes (duplicates possible), built a column at a time."""
    needed = count * _BODY
    symbols = b""
    while len(symbols) < needed:
        # 256/248 bytes are needed per symbol on average; ask for a little more.
        missing = needed - len(symbols)
        raw = secrets.token_bytes(missing * 33 // 31 + 16)
        symbols += raw.translate(_BYTE_TO_SYMBOL, _REJECTED_BYTES)
    # Code k is symbols[11k : 11k + 11]; column p holds position p of every code.
    columns = [symbols[p:needed:_BODY] for p in range(_BODY)]
    out = bytearray(count * LENGTH)
    for p, column in enumerate(columns):
        out[p::LENGTH] = column
    weighted = [column.translate(_WEIGHTED[p]) for p, column in enumerate(columns)]
    sums = map(sum, zip(*weighted, strict=True))  # one weighted sum per code
    out[_BODY::LENGTH] = bytes(map(_CHECK_FOR_SUM.__getitem__, sums))
    text = out.decode("ascii")
    return [text[start : start + LENGTH] for start in range(0, len(text), LENGTH)]
