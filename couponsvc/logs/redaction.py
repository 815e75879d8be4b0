"""What a log line must never hold whole, masked on its way out.

Nothing logs these on purpose (the access line names the path's template, never the
path; no request header is logged); this is what catches the rest: an exception's text,
a library's message, a URL in an error. One pass of one expression over the text:

- coupon codes (12 symbols of the code alphabet, grouped or not, any case): the first 4
  symbols are kept, `K7QM-****-****`; a mistyped code is masked too (11 of its symbols
  would name a real one);
- API keys `cpn_<role>_…`: the role and the first 4 characters are kept, as the admin
  pages show a key's prefix;
- `Bearer …`, Standard Webhooks secrets `whsec_…`, Fernet tokens (stored secrets),
  the password of a URL (`scheme://user:…@host`), and the value of a query or key-value
  parameter named like a secret (`access_token=`, `key=`, `sign=`, `"password": …`).
"""

from __future__ import annotations

import re

_SYMBOL = "[2-9A-HJKMNP-Z]"
_SECRET_NAMES = (r"access_token|refresh_token|token|api_?key|key|secret|client_secret|"
                 r"sign|signature|password|passwd|pwd|credentials?|authorization")

_PATTERN = re.compile(
    "|".join((
        rf"(?P<code>(?<![A-Za-z0-9_])(?P<head>{_SYMBOL}{{4}})[-\s]?{_SYMBOL}{{4}}[-\s]?{_SYMBOL}{{4}}"
        r"(?![A-Za-z0-9_]))",
        r"(?P<key>(?P<key_head>cpn_[a-z]+_[A-Za-z0-9_-]{4})[A-Za-z0-9_-]+)",
        r"(?P<bearer>(?P<bearer_head>\bBearer\s+)[^\s\"',;]+)",
        r"(?P<whsec>\bwhsec_[A-Za-z0-9+/=_-]+)",
        r"(?P<fernet>\bgAAAAA[A-Za-z0-9_=-]{20,})",
        r"(?P<userinfo>(?P<userinfo_head>://[^/\s:@]+:)[^@\s/]+@)",
        rf"(?P<param>(?P<param_head>[?&;,{{\s\"']?(?:{_SECRET_NAMES})[\"']?\s*[:=]\s*(?P<quote>[\"'])?)"
        r"(?!\[redacted\])(?(quote)[^\"'\n]+|[^\"'\s&,;}]+))",
    )),
    re.IGNORECASE,
)


def _mask(match: re.Match) -> str:
    if match.group("code") is not None:
        return f"{match.group('head')}-****-****"
    if match.group("key") is not None:
        return f"{match.group('key_head')}…"
    if match.group("bearer") is not None:
        return f"{match.group('bearer_head')}[redacted]"
    if match.group("whsec") is not None:
        return "whsec_[redacted]"
    if match.group("fernet") is not None:
        return "[encrypted]"
    if match.group("userinfo") is not None:
        return f"{match.group('userinfo_head')}[redacted]@"
    return f"{match.group('param_head')}[redacted]"  # a parameter named like a secret


def redact(text: str) -> str:
    """`text` with every code, key and secret in it masked."""
    return _PATTERN.sub(_mask, text)
