"""GET /revocations resumes like /events: every page answers `next`, the last one included."""

from __future__ import annotations

from tests.factories import Shop


def _void(client, shop: Shop, count: int) -> list[str]:
    codes = [c["code"] for c in shop.coupons(count)]
    for code in codes:
        client.ok(client.post(f"coupons/{code}/void", {"reason": "lost"}, key=shop.manager))
    return codes


def _page(client, shop: Shop, **query) -> dict:
    return client.ok(client.get("revocations", key=shop.scanner, query_string=query))


def test_every_page_has_next_and_resuming_from_the_last_gives_only_what_is_new(client):
    shop = Shop(client)
    other = Shop(client)
    empty = _page(client, shop)
    assert empty["data"] == [] and empty["next"] is not None  # even before anything was revoked

    first = _void(client, shop, 3)
    _void(client, other, 1)  # another merchant's: never in this scanner's feed
    page = _page(client, shop, after=empty["next"], limit=2)
    assert [r["code"] for r in page["data"]] == first[:2]
    last = _page(client, shop, after=page["next"], limit=2)
    assert [r["code"] for r in last["data"]] == first[2:]
    assert last["next"] is not None  # the last page too: the scanner's bookmark
    assert _page(client, shop, after=last["next"]) == {"data": [], "next": last["next"]}

    later = _void(client, shop, 2)
    _void(client, other, 1)
    news = _page(client, shop, after=last["next"])
    assert [r["code"] for r in news["data"]] == later
    assert _page(client, shop, after=news["next"])["data"] == []
