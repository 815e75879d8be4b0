"""Which client an address's budgets are counted for."""

from __future__ import annotations

import pytest

from couponsvc.address_identity import address_identity


@pytest.mark.parametrize(("address", "identity"), [
    ("203.0.113.7", "203.0.113.7"),
    ("2001:db8:1:2:a:b:c:d", "2001:db8:1:2::/64"),
    ("2001:DB8:1:2::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2::", "2001:db8:1:2::/64"),
    ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
    ("::1", "::/64"),
    ("::ffff:203.0.113.7", "203.0.113.7"),
    ("fe80::1%eth0", "fe80::/64"),
    ("unknown", "unknown"),
    ("", ""),
    ("999.1.1.1", "999.1.1.1"),
])
def test_identity(address, identity):
    assert address_identity(address) == identity
