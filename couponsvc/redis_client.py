"""The one way this service connects to Redis: `redis_client(REDIS_URL)`.

`REDIS_URL` is a plain Redis URL (`redis://host:port/db`, `rediss://…`, `unix://…`,
anything `redis.Redis.from_url` reads), or names Redis Sentinels:

    redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name[/db]

the form the `limits` library reads (26379 when a port is left out). The client is then
Sentinel's `master_for(service_name)`: every new connection asks the Sentinels which
server is the primary now, so after a failover the next command reaches the promoted
replica. A user name and password in the URL are sent to the Sentinels and to the
servers alike, as `limits` does. RQ (jobs, the periodic ticker), the failed-look-up
budget and the admin sign-in limits (`ratelimit.py`, `people.py`) and the drain locks
(`outbox/wakeup.py`) all connect through here; none reads from a replica.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from redis import Redis
from redis.sentinel import Sentinel, SentinelManagedConnection

SENTINEL_SCHEME = "redis+sentinel://"
SENTINEL_PORT = 26379
_TIMEOUTS = ("socket_timeout", "socket_connect_timeout")


class _SentinelConnection(SentinelManagedConnection):
    """redis-py's Sentinel connection, closed when a read is interrupted, as its plain
    connection is: redis-py (7.4) leaves it open and pools it with the reply still to
    come, so the next command on it reads the previous one's answer (an RQ worker told
    to stop during its blocking dequeue then failed its last pipeline). Pub/sub reads
    still pass `disconnect_on_error=False` themselves."""

    def read_response(self, disable_decoding=False, *, disconnect_on_error=True,
                      push_request=False):
        return super().read_response(disable_decoding=disable_decoding,
                                     disconnect_on_error=disconnect_on_error,
                                     push_request=push_request)


@dataclass(frozen=True)
class SentinelURL:
    sentinels: tuple[tuple[str, int], ...]
    service_name: str
    db: int = 0
    username: str | None = None
    password: str | None = None


def is_sentinel_url(url: str) -> bool:
    return url.strip().lower().startswith(SENTINEL_SCHEME)


def parse_sentinel_url(url: str) -> SentinelURL:
    """Read `redis+sentinel://…`; ValueError saying what is wrong (never echoing a password)."""
    if not is_sentinel_url(url):
        raise ValueError(f"a Sentinel URL starts with {SENTINEL_SCHEME}")
    rest = url.strip()[len(SENTINEL_SCHEME):].split("?", 1)[0].split("#", 1)[0]
    netloc, _, path = rest.partition("/")
    username = password = None
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    sentinels = tuple(_host_port(part) for part in netloc.split(",") if part.strip())
    if not sentinels:
        raise ValueError("a Sentinel URL names at least one Sentinel: "
                         "redis+sentinel://host:port[,host:port...]/service_name[/db]")
    parts = [unquote(part) for part in path.split("/") if part]
    if not parts or len(parts) > 2:
        raise ValueError("a Sentinel URL ends with /service_name or /service_name/db")
    db = 0
    if len(parts) == 2:
        if not parts[1].isdigit():
            raise ValueError(f"the database after the service name must be a number, not {parts[1]!r}")
        db = int(parts[1])
    return SentinelURL(sentinels, parts[0], db, username, password)


def _host_port(text: str) -> tuple[str, int]:
    text = text.strip()
    if text.startswith("["):  # [ipv6]:port
        host, _, tail = text[1:].partition("]")
        port_text = tail[1:] if tail.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if not host:
        raise ValueError(f"a Sentinel address without a host: {text!r}")
    if not port_text:
        return host, SENTINEL_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"a Sentinel address with a bad port: {text!r}")
    return host, int(port_text)


def redis_client(url: str, **options: Any) -> Redis:
    """A client of the Redis that `url` names (through its Sentinels for `redis+sentinel://`);
    `options` (socket timeouts, ...) go to every connection, the Sentinels' included."""
    if not is_sentinel_url(url):
        if url.startswith("redis+unix://"):
            url = "unix://" + url[len("redis+unix://"):]
        return Redis.from_url(url, **options)
    parsed = parse_sentinel_url(url)
    auth = {name: value for name, value in (("username", parsed.username),
                                            ("password", parsed.password)) if value}
    sentinel_options = {name: options[name] for name in _TIMEOUTS if name in options}
    sentinel = Sentinel(list(parsed.sentinels), sentinel_kwargs={**auth, **sentinel_options},
                        **auth, **options)
    return sentinel.master_for(parsed.service_name, db=parsed.db,
                               connection_class=_SentinelConnection)

