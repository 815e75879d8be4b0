"""What a log line must never hold whole, masked on its way out.

Nothing logs these on purpose (the access line names the path's template, never the
path; no request header is logged); this is what catches the rest: an exception's text,
a library's message, a URL in an error:

- API keys `cpn_<role>_…`: the role and the first 4 characters are kept, as the admin
  pages show a key's prefix;
- `Bearer …`, Standard Webhooks secrets `whsec_…`, Fernet tokens (stored secrets),
  the password of a URL (`scheme://user:…@host`), and the value of a query or key-value
  parameter named like a secret (`access_token=`, `key=`, `sign=`, `"password": …`);
- coupon codes (12 symbols of the code alphabet, grouped or not, any case): the first 4
  symbols are kept, `K7QM-****-****`; a mistyped code is masked too (11 of its symbols
  would name a real one).

Each kind is looked for only when a cheap test of the text says it may be there (its
marker: `cpn_`, `bearer`, `://`, a secret's name), so an ordinary line costs one pass for
codes; codes go last, so that nothing of a key's random part is taken for one.
"""

from __future__ import annotations

import re

_SYMBOL = "[2-9A-HJKMNP-Z]"
_SECRET_NAMES = ("access_token", "refresh_token", "token", "api_key", "apikey", "key", "secret",
                 "client_secret", "sign", "signature", "password", "passwd", "pwd", "credential",
                 "credentials", "authorization")
_SECRET_WORDS = ("token", "key", "secret", "sign", "pass", "pwd", "credential", "authorization")

_KEY = re.compile(r"(cpn_[a-z]+_[A-Za-z0-9_-]{4})[A-Za-z0-9_-]+")
_BEARER = re.compile(r"\b(Bearer\s+)[^\s\"',;]+", re.IGNORECASE)
_WHSEC = re.compile(r"\bwhsec_[A-Za-z0-9+/=_-]+")
_FERNET = re.compile(r"\bgAAAAA[A-Za-z0-9_=-]{20,}")
_USERINFO = re.compile(r"(://[^/\s:@]+:)[^@\s/]+@")
_PARAM = re.compile(
    rf"((?:{'|'.join(sorted(_SECRET_NAMES, key=len, reverse=True))})[\"']?\s*[:=]\s*(?P<quote>[\"'])?)"
    r"(?!\[redacted\])(?(quote)[^\"'\n]+|[^\"'\s&,;}]+)", re.IGNORECASE)
_CODE = re.compile(rf"\b({_SYMBOL}{{4}})[-\s]?{_SYMBOL}{{4}}[-\s]?{_SYMBOL}{{4}}\b",
                   re.IGNORECASE | re.ASCII)

_MASKS: tuple[tuple[tuple[str, ...], re.Pattern, str], ...] = (
    (("cpn_",), _KEY, r"\1…"),
    (("bearer",), _BEARER, r"\1[redacted]"),
    (("whsec_",), _WHSEC, "whsec_[redacted]"),
    (("gaaaaa",), _FERNET, "[encrypted]"),
    (("://",), _USERINFO, r"\1[redacted]@"),
    (_SECRET_WORDS, _PARAM, r"\1[redacted]"),
)


def redact(text: str) -> str:
    """`text` with every key, secret and code in it masked."""
    if len(text) < 12:  # shorter than a code, and than any secret
        return text
    lower = text.lower()
    for markers, pattern, mask in _MASKS:
        for marker in markers:  # substring tests: far cheaper than any expression
            if marker in lower:
                text = pattern.sub(mask, text)
                lower = text.lower()
                break
    return _CODE.sub(r"\1-****-****", text)
