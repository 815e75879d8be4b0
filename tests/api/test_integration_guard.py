"""What a merchant may save as an integration: public targets only, and not too many."""

from __future__ import annotations

import pytest

from tests.factories import Shop, problem


@pytest.mark.parametrize("url", ["HTTP://10.0.0.5/hook", "Https://127.0.0.1/hook", "http://[fec0::1]/hook",
                                 "ftp://93.184.216.34/hook"])
def test_a_private_or_odd_target_is_refused_when_saved(client, url):
    shop = Shop(client)
    response = client.post(f"merchants/{shop.merchant['id']}/integrations",
                           {"adapter": "webhook", "config": {"url": url}}, key=shop.manager)
    errors = problem(response, 422, "validation_error")["errors"]
    assert "url" in errors["config"]


@pytest.mark.config(MAX_INTEGRATIONS_PER_MERCHANT=2, ALLOW_PRIVATE_WEBHOOK_TARGETS=True)
def test_a_merchant_has_at_most_the_configured_number_of_integrations(client):
    shop, other = Shop(client), Shop(client)

    def create(merchant_id, key):
        return client.post(f"merchants/{merchant_id}/integrations",
                           {"adapter": "webhook", "config": {"url": "http://127.0.0.1:9/hook"}}, key=key)

    for _ in range(2):
        client.ok(create(shop.merchant["id"], shop.manager), 201)
    body = problem(create(shop.merchant["id"], shop.manager), 409, "too_many_integrations")
    assert body["limit"] == 2
    problem(create(shop.merchant["id"], "platform"), 409, "too_many_integrations")  # the platform too
    listed = client.ok(client.get(f"merchants/{shop.merchant['id']}/integrations", key=shop.manager))
    assert len(listed["data"]) == 2
    client.ok(create(other.merchant["id"], other.manager), 201)  # per merchant


def test_the_default_cap_is_twenty(app):
    assert app.config["MAX_INTEGRATIONS_PER_MERCHANT"] == 20
