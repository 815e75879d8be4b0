"""COUPONSVC_TRUSTED_PROXIES: the per-address budget counts clients, not the load balancer."""

from __future__ import annotations

import pytest

from couponsvc import codes
from tests.factories import problem

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
