"""Sessions expire (idle, absolute), and can be ended from another session."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from couponsvc.extensions import db
from couponsvc.models import AdminSession, AuditEntry
from couponsvc.timeutil import utcnow


def age_sessions(app, **columns) -> None:
    with app.app_context():
        db.session.execute(update(AdminSession).values(**columns))
        db.session.commit()


def test_an_idle_session_expires(app, operator, signed_in):
    page = signed_in(app.test_client(), operator)
    assert page.get("/admin/sessions").status_code == 200
    idle = app.config["ADMIN_SESSION_IDLE"]
    age_sessions(app, last_seen_at=utcnow() - timedelta(seconds=idle - 120))
    assert page.get("/admin/sessions").status_code == 200  # and it is seen again now
    age_sessions(app, last_seen_at=utcnow() - timedelta(seconds=idle + 1))
    answer = page.get("/admin/sessions")
    assert answer.status_code == 302 and "/admin/sign-in" in answer.location


def test_a_session_in_use_still_ends_at_its_absolute_limit(app, operator, signed_in):
    page = signed_in(app.test_client(), operator)
    age_sessions(app, expires_at=utcnow() - timedelta(seconds=1))
    assert page.get("/admin/sessions").status_code == 302


def test_the_last_seen_time_is_kept_up_to_date_but_not_on_every_page(app, operator, signed_in):
    page = signed_in(app.test_client(), operator)
    long_ago = utcnow() - timedelta(minutes=10)
    age_sessions(app, last_seen_at=long_ago)
    page.get("/admin/sessions")
    with app.app_context():
        seen = db.session.scalar(select(AdminSession.last_seen_at))
    assert seen > long_ago + timedelta(minutes=9)
    page.get("/admin/sessions")
    with app.app_context():
        assert db.session.scalar(select(AdminSession.last_seen_at)) == seen


def test_a_managers_pages_keep_the_session_alive_too(app, client, manager_of, signed_in):
    """A manager's request looks up the merchant's time zone after the session: that query
    flushed the moved `last_seen_at` unseen, and the request ended without committing it,
    so a manager browsing all day was signed out two hours after signing in."""
    merchant = client.merchant()
    page = signed_in(app.test_client(), manager_of(merchant))
    idle = app.config["ADMIN_SESSION_IDLE"]
    long_ago = utcnow() - timedelta(seconds=idle - 120)
    age_sessions(app, last_seen_at=long_ago)
    assert page.get("/admin/campaigns").status_code == 200
    with app.app_context():
        assert db.session.scalar(select(AdminSession.last_seen_at)) > long_ago + timedelta(seconds=60)
    age_sessions(app, last_seen_at=utcnow() - timedelta(seconds=idle - 120))
    assert page.get("/admin/campaigns").status_code == 200  # seen again: not idle


def test_a_session_ended_from_another_one_is_signed_out(app, operator, signed_in):
    phone = signed_in(app.test_client(), operator)
    desk = signed_in(app.test_client(), operator)
    listing = desk.get("/admin/sessions").get_data(as_text=True)
    assert listing.count("/end\"") == 2
    with app.app_context():
        phone_session = db.session.scalar(select(AdminSession.id).order_by(AdminSession.created_at))
    ended = desk.post(f"/admin/sessions/{phone_session}/end")
    assert ended.status_code == 302
    assert phone.get("/admin/sessions").status_code == 302
    assert desk.get("/admin/sessions").status_code == 200
    with app.app_context():
        entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "session.end")).one()
        assert entry.target_id == phone_session and entry.user_id == operator.id


def test_ending_all_other_sessions_keeps_this_one(app, operator, signed_in):
    others = [signed_in(app.test_client(), operator) for _ in range(2)]
    here = signed_in(app.test_client(), operator)
    assert here.post("/admin/sessions/end-others").status_code == 302
    assert [o.get("/admin/sessions").status_code for o in others] == [302, 302]
    assert here.get("/admin/sessions").status_code == 200


def test_nobody_ends_another_persons_session(app, operator, manager_of, client, signed_in):
    merchant = client.merchant()
    manager = signed_in(app.test_client(), manager_of(merchant))
    mine = signed_in(app.test_client(), operator)
    with app.app_context():
        manager_session = db.session.scalar(
            select(AdminSession.id).where(AdminSession.user_id != operator.id))
    assert mine.post(f"/admin/sessions/{manager_session}/end").status_code == 404
    assert manager.get("/admin/sessions").status_code == 200


@pytest.mark.parametrize("cookie", ["", "x" * 500, "\u00e9\u00e9", "not-a-token"])
def test_a_bad_cookie_is_not_signed_in(app, cookie):
    http = app.test_client()
    http.set_cookie("couponsvc_admin", cookie)
    assert http.get("/admin/sessions").status_code == 302


def test_a_password_set_from_the_command_line_signs_the_operator_out_everywhere(app, operator, signed_in,
                                                                                monkeypatch):
    """`create-admin` on an existing operator is how a stolen password is replaced: the
    sessions opened with the old one end with it."""
    stolen = signed_in(app.test_client(), operator)
    assert stolen.get("/admin/sessions").status_code == 200
    monkeypatch.setenv("COUPONSVC_ADMIN_PASSWORD", "a brand new password")
    done = app.test_cli_runner().invoke(args=["create-admin", "--email", operator.email])
    assert done.exit_code == 0, done.output
    assert stolen.get("/admin/sessions").status_code == 302
