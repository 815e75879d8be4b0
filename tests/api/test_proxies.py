"""COUPONSVC_TRUSTED_PROXIES: the per-address budget counts clients, not the load balancer."""

from __future__ import annotations

import pytest

from couponsvc import codes
from tests.factories import Shop, problem

BALANCER = "10.0.0.2"


def _miss(client, forwarded_for: str | None):
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return client.get(f"coupons/{codes.generate()}", headers=headers, environ_base={"REMOTE_ADDR": BALANCER})


@pytest.mark.config(TRUSTED_PROXIES=1, LOOKUP_LIMIT_PER_ADDRESS="3/hour")
def test_two_clients_behind_one_proxy_have_their_own_budgets(client):
    for _ in range(3):
        problem(_miss(client, "203.0.113.7"), 404, "coupon_not_found")
    problem(_miss(client, "203.0.113.7"), 429, "rate_limited")
    problem(_miss(client, "203.0.113.8"), 404, "coupon_not_found")
    # A client cannot forge its way out: the proxy appends the address it saw, and only that hop is trusted.
    problem(_miss(client, "198.51.100.1, 203.0.113.7"), 429, "rate_limited")


@pytest.mark.config(TRUSTED_PROXIES=0, LOOKUP_LIMIT_PER_ADDRESS="3/hour")
def test_with_no_trusted_proxy_a_forged_forwarded_for_does_not_reset_the_budget(client):
    for n in range(3):
        problem(_miss(client, f"203.0.113.{n}"), 404, "coupon_not_found")
    problem(_miss(client, "203.0.113.99"), 429, "rate_limited")
    problem(_miss(client, None), 429, "rate_limited")


def _miss_from(client, address: str, code: str | None = None):
    return client.get(f"coupons/{code or codes.generate()}", environ_base={"REMOTE_ADDR": address})


@pytest.mark.config(LOOKUP_LIMIT_PER_ADDRESS="3/hour")
def test_an_ipv6_client_cannot_walk_its_64_for_a_fresh_budget(client):
    """A client holds a whole /64 and may take a new address for every guess: its guesses
    share one budget, over which even a real code is refused; the next /64 is another client."""
    real = Shop(client).coupon()["code"]
    for n in range(3):
        problem(_miss_from(client, f"2001:db8:1:2::{n + 1}"), 404, "coupon_not_found")
    problem(_miss_from(client, "2001:db8:1:2:ffff:ffff:ffff:fff0"), 429, "rate_limited")
    problem(_miss_from(client, "2001:db8:1:2::99", code=real), 429, "rate_limited")
    problem(_miss_from(client, "2001:db8:1:3::1"), 404, "coupon_not_found")
    assert client.get(f"coupons/{real}", environ_base={"REMOTE_ADDR": "2001:db8:1:3::1"}).status_code == 200


@pytest.mark.config(LOOKUP_LIMIT_PER_ADDRESS="3/hour")
def test_an_ipv4_client_on_a_dual_stack_socket_is_its_ipv4_address(client):
    for _ in range(3):
        problem(_miss_from(client, "::ffff:203.0.113.7"), 404, "coupon_not_found")
    problem(_miss_from(client, "203.0.113.7"), 429, "rate_limited")
    problem(_miss_from(client, "203.0.113.8"), 404, "coupon_not_found")
