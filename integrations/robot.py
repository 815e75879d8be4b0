"""Group-robot webhooks (WeCom, DingTalk): HTTP 200 carries `{"errcode", "errmsg"}`.

`errcode` 0 is success. A robot's documented rate-limit codes are retryable after the
wait its documentation gives; "system busy" (-1) is retryable; every other code (an
invalid key or token, a failed signature or keyword check, a malformed message) is
permanent: resending the same message cannot succeed.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import http
from .adapter import Outcome, PermanentError, RetryableError


def answer(reply: http.Reply, robot: str, retryable: Mapping[int, float | None]) -> Outcome:
    """The outcome of a robot's answer; `retryable` maps errcodes to a wait in seconds."""
    http.raise_for_status(reply)
    try:
        errcode = reply.json().get("errcode")
    except (ValueError, AttributeError):
        errcode = None
    if not isinstance(errcode, int):
        raise RetryableError(f"{robot} answered without an errcode",
                             status_code=reply.status_code, excerpt=reply.excerpt)
    if errcode == 0:
        return http.outcome(reply)
    if errcode == -1 or errcode in retryable:
        wait = retryable.get(errcode)
        raise RetryableError(f"{robot} errcode {errcode}", status_code=reply.status_code,
                             excerpt=reply.excerpt,
                             retry_after=None if wait is None else http.clamp_wait(wait))
    raise PermanentError(f"{robot} errcode {errcode}", status_code=reply.status_code,
                         excerpt=reply.excerpt)


def truncate_utf8(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes, on a character boundary."""
    data = text.encode()
    return text if len(data) <= limit else data[:limit].decode(errors="ignore")
