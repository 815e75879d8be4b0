"""Where an adapter may connect: public internet addresses over http(s) only.

A merchant types the URL an adapter calls, so without this an integration would be a
way into the merchant's or our own network (cloud metadata at 169.254.169.254, Redis
on 127.0.0.1, the office LAN). Two checks, unless private targets are allowed:

- `check_url` before any connection: scheme http/https, a host, and every address the
  host resolves to public. Nothing is sent anywhere when it refuses.
- `GuardedAdapter` when the socket is connected: the peer address is checked again, so
  a name that resolves to a public address for the check and a private one for the
  connection (DNS rebinding) is refused before a byte is sent.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from urllib3.connection import HTTPConnection, HTTPSConnection

from .deadline import Watched, WatchedAdapter

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SHARED = ipaddress.ip_network("100.64.0.0/10")


class TargetRefused(Exception):
    """The URL or the address it leads to is not one an adapter may call."""


def is_public(address: IPAddress) -> bool:
    """True for a global unicast address (`ipaddress`'s `is_global`, and not multicast or
    site-local); IPv6 forms that embed IPv4 are judged by the IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address.teredo:
            embedded = address.teredo[1]
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public(embedded)
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return False  # fec0::/10: deprecated, but routed inside some networks; Python < 3.13 calls it global
    return address.is_global and not (
        address.is_private or address.is_loopback or address.is_link_local
        or address.is_multicast or address.is_reserved or address.is_unspecified
        or address in _SHARED
    )


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (a literal address resolves to itself)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]


def check_url(url: str, *, resolve_host: bool = True) -> None:
    """Refuse (TargetRefused) a URL that is not http(s), or (`resolve_host`) whose host
    resolves to any address that is not public.

    A name that does not resolve raises OSError (socket.gaierror), which may pass; a
    malformed URL raises ValueError.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise TargetRefused(f"only http and https targets are allowed, not {parts.scheme!r}")
    host = parts.hostname
    if not host:
        raise TargetRefused("the target URL has no host")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if not resolve_host:
        return
    for address in resolve(host, port):
        if not is_public(address):
            raise TargetRefused(
                f"{host} resolves to {address}, a loopback, private or reserved address; "
                "set COUPONSVC_ALLOW_PRIVATE_WEBHOOK_TARGETS=1 to allow it")


class _PeerCheck:
    """Checks the address a new socket actually reached, before TLS or the request."""

    host: str

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        peer = ipaddress.ip_address(sock.getpeername()[0].split("%", 1)[0])
        if not is_public(peer):
            sock.close()
            raise TargetRefused(f"{self.host} connected to {peer}, which is not public")
        return sock


class _GuardedConnection(_PeerCheck, Watched, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_PeerCheck, Watched, HTTPSConnection):
    pass


class GuardedAdapter(WatchedAdapter):
    """A requests transport whose new connections must reach a public address (and keep
    to the call's deadline, as every adapter's do)."""

    connections = (_GuardedConnection, _GuardedHTTPSConnection)
