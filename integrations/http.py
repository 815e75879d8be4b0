"""The one way adapters talk HTTP: checked targets, bounded waits, classified answers.

`request` sends (after `targets.check_url`, unless private targets are allowed), never
follows a redirect, reads at most 64 KiB of the answer, and turns transport failures
into `RetryableError`. The context's timeout is one wall-clock deadline over the whole
call, connect, headers and body (`integrations.deadline`), not a bound on each read. `raise_for_status` classifies an answer as
the delivery semantics say: only 2xx succeeds; 410 Gone is permanent and disables the
integration; everything else (3xx, 4xx, 5xx) is retryable, 429 and 503 with the
`Retry-After` they sent. `post` is the three steps in one for adapters with nothing
to read in a 2xx body.
"""

from __future__ import annotations

import json as jsonlib
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.structures import CaseInsensitiveDict

from .adapter import EXCERPT_CHARS, Context, Outcome, PermanentError, RetryableError
from .deadline import Deadline, WatchedAdapter, deadline
from .targets import GuardedAdapter, TargetRefused, check_url

MAX_BODY = 64 * 1024
RETRY_AFTER_BOUNDS = (1.0, 6 * 3600.0)
USER_AGENT = "couponsvc-integrations/1"

_local = threading.local()


@dataclass(frozen=True)
class Reply:
    """An HTTP answer, its body cut at 64 KiB."""

    status_code: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def excerpt(self) -> str:
        return self.text[:EXCERPT_CHARS]

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not."""
        return jsonlib.loads(self.body)


def new_session(*, allow_private_targets: bool = False) -> requests.Session:
    """A keep-alive session for one worker thread: no environment proxies or .netrc,
    and (unless private targets are allowed) the connection-time target guard."""
    session = requests.Session()
    session.trust_env = False
    session.headers["User-Agent"] = USER_AGENT
    _mount(session, WatchedAdapter() if allow_private_targets else GuardedAdapter())
    return session


def _mount(session: requests.Session, adapter: WatchedAdapter) -> None:
    session.mount("http://", adapter)
    session.mount("https://", adapter)


def _session(context: Context) -> requests.Session:
    if context.session is not None:
        mounted = context.session.get_adapter("https://example.com")
        if not context.allow_private_targets and not isinstance(mounted, GuardedAdapter):
            _mount(context.session, GuardedAdapter())
        elif not isinstance(mounted, WatchedAdapter):
            _mount(context.session, WatchedAdapter())
        return context.session
    key = "open" if context.allow_private_targets else "guarded"
    if not hasattr(_local, key):
        setattr(_local, key, new_session(allow_private_targets=context.allow_private_targets))
    return getattr(_local, key)


def request(context: Context, method: str, url: str, *, json: Any = None,
            data: Any = None, headers: Mapping[str, str] | None = None,
            params: Mapping[str, str] | None = None, files: Any = None) -> Reply:
    """Send one request; `json` is sent as compact UTF-8 (no \\u escapes); `files` (with
    `data` as the other form fields) makes it multipart/form-data, as requests does."""
    host = urlsplit(url).hostname or "?"
    headers = dict(headers or {})
    if json is not None:
        data = jsonlib.dumps(json, ensure_ascii=False, separators=(",", ":")).encode()
        headers.setdefault("Content-Type", "application/json; charset=utf-8")
    try:
        check_url(url, resolve_host=not context.allow_private_targets)
    except TargetRefused as error:
        raise PermanentError(f"target refused: {error}") from error
    except ValueError as error:
        raise PermanentError(f"invalid target URL: {error}") from error
    except OSError as error:
        raise RetryableError(f"could not resolve {host}: {error.strerror or error}") from error
    with deadline(context.timeout) as call:
        return _send(context, call, method, url, host, data=data, headers=headers, params=params,
                     files=files)


def _send(context: Context, call: Deadline, method: str, url: str, host: str, **kwargs: Any) -> Reply:
    status_code = None
    try:
        with _session(context).request(method, url, stream=True, timeout=context.timeout,
                                       allow_redirects=False, **kwargs) as response:
            status_code = response.status_code
            body = _read(response)
            if call.expired:  # the watchdog cut the body short
                raise _late(host, context.timeout, status_code)
            return Reply(status_code, CaseInsensitiveDict(response.headers), body)
    except TargetRefused as error:
        raise PermanentError(f"target refused: {error}") from error
    except (requests.Timeout, urllib3.exceptions.TimeoutError) as error:
        raise RetryableError(f"no answer from {host} within {context.timeout:g} s") from error
    except (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
            requests.exceptions.MissingSchema, requests.exceptions.InvalidHeader) as error:
        raise PermanentError(f"invalid request: {type(error).__name__}") from error
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
        if call.expired:
            raise _late(host, context.timeout, status_code) from error
        raise RetryableError(f"could not reach {host}: {type(error).__name__}") from error


def _late(host: str, timeout: float, status_code: int | None) -> RetryableError:
    """The deadline passed: before the headers were complete, or during the body."""
    if status_code is None:
        return RetryableError(f"no answer from {host} within {timeout:g} s")
    return RetryableError(f"the answer from {host} took longer than {timeout:g} s", status_code=status_code)


def _read(response: requests.Response) -> bytes:
    """At most MAX_BODY bytes; the call's deadline cuts a server dripping them."""
    chunks, size = [], 0
    while size < MAX_BODY:
        chunk = response.raw.read1(8192, decode_content=True)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)[:MAX_BODY]


def raise_for_status(reply: Reply, *, permanent: Collection[int] = ()) -> None:
    """Raise unless 2xx: 410 disables; `permanent` codes fail for good; others retry."""
    code = reply.status_code
    if 200 <= code < 300:
        return
    excerpt = reply.excerpt or f"HTTP {code}"
    if code == 410:
        raise PermanentError("410 Gone: the target asks to stop", status_code=code,
                             excerpt=excerpt, disable=True)
    if code in permanent:
        raise PermanentError(f"HTTP {code}", status_code=code, excerpt=excerpt)
    if 300 <= code < 400:
        location = reply.headers.get("Location", "?")
        raise RetryableError(f"HTTP {code}: redirect to {location} not followed",
                             status_code=code, excerpt=f"redirect not followed: {location}")
    wait = retry_after(reply.headers.get("Retry-After")) if code in (429, 503) else None
    raise RetryableError(f"HTTP {code}", status_code=code, excerpt=excerpt, retry_after=wait)


def outcome(reply: Reply) -> Outcome:
    return Outcome(reply.status_code, reply.excerpt)


def post(context: Context, url: str, **kwargs: Any) -> Outcome:
    """POST; an `Outcome` for a 2xx, the classified error otherwise."""
    reply = request(context, "POST", url, **kwargs)
    raise_for_status(reply)
    return outcome(reply)


def retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), clamped to
    [1 s, 6 h]; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return clamp_wait(seconds)


def clamp_wait(seconds: float) -> float:
    low, high = RETRY_AFTER_BOUNDS
    return min(max(seconds, low), high)
