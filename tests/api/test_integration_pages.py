"""Integrations and their deliveries page like every other list: `limit`, `after`, `next`."""

from __future__ import annotations

import pytest

from tests.factories import Shop, problem

pytestmark = pytest.mark.config(ALLOW_PRIVATE_WEBHOOK_TARGETS=True)


def pages(client, path, key, limit=2):
    seen, after = [], None
    while True:
        page = client.ok(client.get(path, key=key, query_string={"limit": limit, **({"after": after} if after else {})}))
        assert len(page["data"]) <= limit
        seen.append([row["id"] for row in page["data"]])
        if page["next"] is None:
            return seen
        after = page["next"]


def test_integrations_in_id_order_and_deliveries_newest_first(client):
    shop = Shop(client)
    made = [client.ok(client.post(f"merchants/{shop.merchant['id']}/integrations",
                                  {"adapter": "webhook", "config": {"url": f"http://127.0.0.1:9/{n}"}},
                                  key=shop.manager), 201)["id"] for n in range(3)]
    listed = pages(client, f"merchants/{shop.merchant['id']}/integrations", shop.manager)
    assert [len(p) for p in listed] == [2, 1]
    assert sum(listed, []) == sorted(made)

    pings = [client.ok(client.post(f"integrations/{made[0]}/test", key=shop.manager), 202)["id"]
             for _ in range(5)]
    listed = pages(client, f"integrations/{made[0]}/deliveries", shop.manager)
    assert [len(p) for p in listed] == [2, 2, 1]
    assert sum(listed, []) == pings[::-1]  # made one after another: newest first


@pytest.mark.parametrize("after", ["dlv_x", "12x", "dlv_" + "9" * 19, "-1"])
def test_a_cursor_the_list_never_gave_is_refused(client, after):
    shop = Shop(client)
    hook = client.ok(client.post(f"merchants/{shop.merchant['id']}/integrations",
                                 {"adapter": "webhook", "config": {"url": "http://127.0.0.1:9/"}},
                                 key=shop.manager), 201)
    response = client.get(f"integrations/{hook['id']}/deliveries", key=shop.manager,
                          query_string={"after": after})
    problem(response, 422, "validation_error")
