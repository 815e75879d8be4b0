"""The request id: which log lines, jobs and deliveries one request caused.

A request's id is its `X-Request-ID` header when that is a sane token (8 to 128 of
letters, digits and `. _ : + / = -`, what proxies and load balancers make), else a new
one; the answer echoes it in `X-Request-ID`. It lives in a context variable while the
request runs, so every log line of the request names it (`couponsvc/logs/`); a job the
request queues carries it in its meta and the worker binds it again while it runs the
job (`couponsvc/job_context.py`), so the job's log lines, and the deliveries it makes,
name the request that caused them.

Nothing here imports Flask: the web hooks are in `couponsvc/logs/access.py`.
"""

from __future__ import annotations

import re
from contextvars import ContextVar, Token

from . import randomness

HEADER = "X-Request-ID"
_SANE = re.compile(r"[A-Za-z0-9._:+/=-]{8,128}")
_CURRENT: ContextVar[str | None] = ContextVar("couponsvc_request_id", default=None)


def accept(raw: str | None) -> str:
    """`raw` when it is a sane request id, else a new one."""
    if raw is not None and _SANE.fullmatch(raw):
        return raw
    return new()


def new() -> str:
    return randomness.take(16).hex()


def current() -> str | None:
    """The id of the request (or of the request behind the job) running here, if any."""
    return _CURRENT.get()


def bind(request_id: str | None) -> Token:
    """Make `request_id` current until `unbind(token)`."""
    return _CURRENT.set(request_id)


def unbind(token: Token) -> None:
    _CURRENT.reset(token)
