"""The audit log page: newest first, a page at a time, filtered; a manager sees their
merchant's entries only."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from couponsvc import audit
from couponsvc.extensions import db
from couponsvc.people import SYSTEM
from couponsvc.timeutil import utcnow


def add_entries(app, merchant_id, count, action="campaign.publish", start=None):
    start = start or utcnow() - timedelta(days=1)
    with app.app_context():
        for i in range(count):
            audit.record(db.session, SYSTEM, action, target_type="campaign", target_id=f"cmp_{i}",
                         merchant_id=merchant_id, address="192.0.2.1", email="ops@example.cn",
                         detail={"n": i}, at=start + timedelta(minutes=i))
        db.session.commit()


def test_entries_are_newest_first_a_page_at_a_time(app, client, operator, signed_in):
    merchant = client.merchant()
    add_entries(app, merchant["id"], 120)
    page = signed_in(app.test_client(), operator)
    seen, url = [], f"/admin/audit?merchant={merchant['id']}&action=campaign"
    while url:
        text = page.get(url).get_data(as_text=True)
        seen += [int(n) for n in re.findall(r'<span class="muted">n</span> (\d+)', text)]
        found = re.search(r'href="([^"]+)" rel="next"', text)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert seen == list(range(119, -1, -1))


def test_a_manager_sees_their_merchants_entries_only(app, client, manager_of, signed_in):
    mine, theirs = client.merchant(), client.merchant()
    add_entries(app, mine["id"], 2, action="campaign.pause")
    add_entries(app, theirs["id"], 3, action="campaign.cancel")
    page = signed_in(app.test_client(), manager_of(mine))
    text = page.get(f"/admin/audit?merchant={theirs['id']}").get_data(as_text=True)
    assert text.count("<code>campaign.pause</code>") == 2
    assert "campaign.cancel" not in text
    assert "<code>auth.sign_in</code>" in text  # the manager's own sign-in, on their merchant


def test_an_operator_filters_by_action(app, client, operator, signed_in):
    merchant = client.merchant()
    add_entries(app, merchant["id"], 2, action="campaign.pause")
    add_entries(app, None, 1, action="merchant.create")
    page = signed_in(app.test_client(), operator)
    text = page.get("/admin/audit?action=merchant.create").get_data(as_text=True)
    assert text.count("<code>merchant.create</code>") == 1 and "<code>campaign.pause</code>" not in text
    everything = page.get("/admin/audit").get_data(as_text=True)
    assert everything.count("<code>campaign.pause</code>") == 2


def test_a_bad_cursor_is_a_page_not_an_error(app, operator, signed_in):
    page = signed_in(app.test_client(), operator)
    for cursor in ("nonsense", "%00", "YWJj", "x" * 500):
        answer = page.get(f"/admin/audit?after={cursor}")
        assert answer.status_code == 422 and answer.mimetype == "text/html"


def test_times_are_shown_in_the_merchants_time_zone(app, client, operator, signed_in):
    merchant = client.merchant(timezone="Asia/Urumqi")
    with app.app_context():
        audit.record(db.session, SYSTEM, "campaign.pause", merchant_id=merchant["id"],
                     at=datetime(2026, 5, 1, 4, 0, tzinfo=UTC))
        audit.record(db.session, SYSTEM, "merchant.create", merchant_id=None,
                     at=datetime(2026, 5, 1, 4, 0, tzinfo=UTC))
        db.session.commit()
    text = signed_in(app.test_client(), operator).get("/admin/audit").get_data(as_text=True)
    assert "2026-05-01 10:00:00" in text  # Urumqi, UTC+6
    assert "2026-05-01 12:00:00" in text  # no merchant: Asia/Shanghai
