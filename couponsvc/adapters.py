"""The adapters installed in this process, and one keep-alive HTTP session per thread."""

from __future__ import annotations

import threading
from functools import cache

from integrations.adapter import Adapter
from integrations.http import new_session
from integrations.registry import describe, load_adapters

_local = threading.local()


@cache
def installed() -> dict[str, Adapter]:
    """Built-ins plus those under the `couponsvc.adapters` entry points, read once."""
    return load_adapters()


def adapter_named(name: str) -> Adapter | None:
    return installed().get(name)


def descriptions() -> list[dict]:
    return [describe(adapter) for _, adapter in sorted(installed().items())]


def http_session(allow_private_targets: bool):
    """Pooled keep-alive connections, one session per worker thread (and per setting of
    COUPONSVC_ALLOW_PRIVATE_WEBHOOK_TARGETS, which the caller passes)."""
    key = ("session", allow_private_targets)
    session = getattr(_local, "session", None)
    if session is None or getattr(_local, "key", None) != key:
        session = _local.session = new_session(allow_private_targets=allow_private_targets)
        _local.key = key
    return session
