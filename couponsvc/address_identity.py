"""Which client an address's budgets are counted for (no Flask).

An IPv4 address is one client. An IPv6 client holds a whole /64 (SLAAC, privacy
addresses: RFC 4941, RFC 8981) and may take a new address from it for every request, so
each of its addresses is no new client: its budgets are counted for the /64. An IPv4
address mapped into IPv6 (`::ffff:203.0.113.7`, a dual-stack socket) is the IPv4 address.
Anything that is not an address (a test client's `unknown`) is counted as it is.

The failed-look-up budgets (`ratelimit.py`) and the admin's sign-in budget (`people.py`)
both count an address through `address_identity`.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

IPV6_CLIENT_PREFIX = 64


@lru_cache(maxsize=4096)  # a till's address asks again on every scan
def address_identity(address: str) -> str:
    """`203.0.113.7` → itself; `2001:db8:1:2:a:b:c:d` → `2001:db8:1:2::/64`;
    `::ffff:203.0.113.7` → `203.0.113.7`."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, IPV6_CLIENT_PREFIX), strict=False))
    return address
