"""GET /revocations resumes like /events: every page answers `next`, the last one included."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from couponsvc.coupons import void_coupon
from couponsvc.extensions import db
from couponsvc.principal import PLATFORM, Principal
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


@pytest.mark.postgresql
def test_a_revocation_committed_late_is_never_stepped_past(client, app):
    """Two voids: the first's transaction takes its revocation, then stays open while the
    second (a request) runs. A scanner reading meanwhile must not get a cursor past the
    first one's revocation, or it would never see it."""
    shop = Shop(client)
    slow_code, fast_code = (c["code"] for c in shop.coupons(2))
    start = _page(client, shop)["next"]
    with app.app_context():
        slow = Session(db.engine)
        void_coupon(slow, Principal(key_id=None, role=PLATFORM, merchant_id=None, store_id=None), slow_code)
        fast = threading.Thread(target=lambda: client.ok(client.post(
            f"coupons/{fast_code}/void", {"reason": "lost"}, key=shop.manager)))
        fast.start()
        deadline = time.monotonic() + 20  # until the second void waits for the first, or is done
        while fast.is_alive() and not _waiting_for_a_lock(app) and time.monotonic() < deadline:
            time.sleep(0.02)
        meanwhile = _page(client, shop, after=start)
        slow.commit()
        slow.close()
        fast.join(20)
    assert not fast.is_alive()
    seen = [r["code"] for r in meanwhile["data"]]
    seen += [r["code"] for r in _page(client, shop, after=meanwhile["next"])["data"]]
    assert sorted(seen) == sorted([slow_code, fast_code])


def _waiting_for_a_lock(app) -> bool:
    with app.app_context():
        waiting = db.session.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")).scalar()
        db.session.remove()
    return bool(waiting)
