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
