"""Signing in and out: passwords, lock-outs, CSRF, the form's labels, the audit of it all."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update
from werkzeug.security import generate_password_hash

from couponsvc import people
from couponsvc.admin.guard import limiter, policy
from couponsvc.extensions import db
from couponsvc.models import AdminUser, AuditEntry
from couponsvc.timeutil import utcnow

from .conftest import PASSWORD, pages


def audit_actions(app) -> list[tuple[str, str]]:
    with app.app_context():
        rows = db.session.scalars(select(AuditEntry).order_by(AuditEntry.at, AuditEntry.id)).all()
        return [(e.action, e.detail.get("reason", "")) for e in rows]


def test_a_wrong_password_is_refused_and_the_right_one_lets_in(app, operator):
    page = pages(app.test_client())
    refused = page.sign_in(operator.email, "not the password")
    assert refused.status_code == 401
    assert "邮箱或密码不正确" in refused.get_data(as_text=True)
    assert page.http.get_cookie("couponsvc_admin") is None
    assert page.get("/admin/sessions").status_code == 302
    answer = page.sign_in(operator.email, operator.password)
    assert answer.status_code == 302
    assert page.get("/admin/sessions").status_code == 200
    assert audit_actions(app) == [("auth.sign_in_failed", "wrong"), ("auth.sign_in", "")]


def test_an_unknown_email_is_told_exactly_what_a_wrong_password_is(app, operator):
    page = pages(app.test_client())
    wrong = page.sign_in(operator.email, "not the password").get_data(as_text=True)
    unknown = page.sign_in("nobody@example.cn", "not the password").get_data(as_text=True)
    strip = re.compile(r'(value|content)="[^"]*"|"X-CSRFToken": "[^"]*"')
    assert strip.sub("", wrong).replace(operator.email, "") == strip.sub("", unknown).replace(
        "nobody@example.cn", "")


def test_the_form_labels_its_fields_in_each_language(app):
    http = app.test_client()
    chinese = http.get("/admin/sign-in").get_data(as_text=True)
    assert '<label for="email">邮箱</label>' in chinese and '<label for="password">密码</label>' in chinese
    assert 'id="email"' in chinese and 'id="password"' in chinese
    english = http.get("/admin/sign-in", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<label for="email">Email</label>' in english
    assert '<label for="password">Password</label>' in english
    http.get("/language/en")
    assert '<label for="email">Email</label>' in http.get("/admin/sign-in").get_data(as_text=True)
    assert '<html lang="en">' in http.get("/admin/sign-in").get_data(as_text=True)


def test_a_form_posted_without_its_token_is_refused_with_a_page(app, operator, signed_in):
    http = app.test_client()
    answer = http.post("/admin/sign-in", data={"email": operator.email, "password": operator.password})
    assert answer.status_code == 400 and answer.mimetype == "text/html"
    assert "表单已过期" in answer.get_data(as_text=True)
    assert http.get_cookie("couponsvc_admin") is None
    page = signed_in(http, operator)
    forged = page.post("/admin/sessions/end-others", {"csrf_token": "forged"})
    assert forged.status_code == 400 and forged.mimetype == "text/html"
    assert page.post("/admin/sessions/end-others", csrf=False).status_code == 400
    assert page.post("/admin/sessions/end-others").status_code == 302


def test_the_api_needs_no_csrf_token(app, client):
    assert client.post("merchants", json={"name": "面馆", "city": "赣州"}).status_code == 201


def test_an_account_is_locked_after_repeated_failures_even_for_the_right_password(app, operator):
    page = pages(app.test_client())
    for _ in range(4):
        assert page.sign_in(operator.email, "wrong password").status_code == 401
    locked = page.sign_in(operator.email, "wrong password")
    assert locked.status_code == 429
    assert "已被锁定" in locked.get_data(as_text=True) and "15 分钟" in locked.get_data(as_text=True)
    still = page.sign_in(operator.email, operator.password)
    assert still.status_code == 429
    assert page.http.get_cookie("couponsvc_admin") is None
    assert audit_actions(app)[-3:] == [("auth.sign_in_failed", "locked"),
                                       ("auth.account_locked", ""),
                                       ("auth.sign_in_failed", "locked")]
    with app.app_context():
        user = db.session.get(AdminUser, operator.id)
        assert user.locked_until > utcnow() + timedelta(seconds=890)


def test_the_lock_ends_after_its_window(app, operator):
    with app.test_request_context():
        rules, counter, start = policy(), limiter(), utcnow()

        def attempt(password, at):
            outcome = people.sign_in(db.session, operator.email, password, address="192.0.2.9",
                                     limiter=counter, policy=rules, now=at)
            db.session.commit()
            return outcome.reason

        assert [attempt("wrong password", start) for _ in range(5)] == ["wrong"] * 4 + ["locked"]
        just_before = start + timedelta(seconds=rules.lock_seconds - 1)
        assert attempt(operator.password, just_before) == "locked"
        assert attempt(operator.password, start + timedelta(seconds=rules.lock_seconds)) is None


def test_an_unknown_email_locks_like_an_account(app):
    with app.test_request_context():
        rules, counter, start = policy(), limiter(), utcnow()
        reasons = [people.sign_in(db.session, "nobody@example.cn", "guess", address="192.0.2.8",
                                  limiter=counter, policy=rules, now=start).reason
                   for _ in range(6)]
        assert reasons == ["wrong"] * 4 + ["locked", "locked"]


@pytest.mark.config(ADMIN_SIGNIN_LIMIT_PER_ADDRESS="3/15minutes", ADMIN_MAX_FAILURES=50)
def test_an_address_is_refused_after_repeated_failures_then_let_in_after_the_window(app, operator,
                                                                                    manager_of):
    page = pages(app.test_client())
    for email in ("a@example.cn", "b@example.cn", operator.email):
        assert page.sign_in(email, "wrong password").status_code == 401
    refused = page.sign_in(operator.email, operator.password)
    assert refused.status_code == 429
    assert "此地址" in refused.get_data(as_text=True)
    elsewhere = pages(app.test_client())
    answer = elsewhere.sign_in(operator.email, operator.password,
                               environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert answer.status_code == 302  # another address, the same account: let in
    assert audit_actions(app)[-2:] == [("auth.sign_in_failed", "address_limited"), ("auth.sign_in", "")]
    with app.test_request_context():
        later = utcnow() + timedelta(minutes=15)
        outcome = people.sign_in(db.session, operator.email, operator.password, address="127.0.0.1",
                                 limiter=limiter(), policy=policy(), now=later)
        assert outcome.user is not None


def test_a_disabled_person_cannot_sign_in(app, operator):
    with app.app_context():
        db.session.execute(update(AdminUser).values(disabled_at=utcnow()))
        db.session.commit()
    page = pages(app.test_client())
    assert page.sign_in(operator.email, operator.password).status_code == 401
    assert audit_actions(app) == [("auth.sign_in_failed", "disabled")]


def test_a_werkzeug_hash_lets_in_once_and_becomes_argon2(app, operator):
    with app.app_context():
        db.session.execute(update(AdminUser).values(password_hash=generate_password_hash(PASSWORD)))
        db.session.commit()
    assert pages(app.test_client()).sign_in(operator.email, PASSWORD).status_code == 302
    with app.app_context():
        stored = db.session.get(AdminUser, operator.id).password_hash
        assert stored.startswith("$argon2id$") and PasswordHasher().verify(stored, PASSWORD)


def test_a_hash_of_older_parameters_is_replaced_at_sign_in(app, operator):
    with app.app_context():
        weak = PasswordHasher(time_cost=1, memory_cost=8192).hash(PASSWORD)
        db.session.execute(update(AdminUser).values(password_hash=weak))
        db.session.commit()
    assert pages(app.test_client()).sign_in(operator.email, PASSWORD).status_code == 302
    with app.app_context():
        stored = db.session.get(AdminUser, operator.id).password_hash
        assert stored != weak and not people.hasher.check_needs_rehash(stored)


def test_signing_in_sets_a_fresh_httponly_lax_cookie_and_a_new_csrf_token(app, operator):
    page = pages(app.test_client())
    before = page.csrf_token()
    answer = page.sign_in(operator.email, operator.password)
    cookie = answer.headers.getlist("Set-Cookie")
    admin_cookie = next(c for c in cookie if c.startswith("couponsvc_admin="))
    assert "HttpOnly" in admin_cookie and "SameSite=Lax" in admin_cookie
    assert "Secure" not in admin_cookie  # the public URL is http
    page._token = None
    assert page.csrf_token() != before
    first = page.http.get_cookie("couponsvc_admin").value
    page.sign_in(operator.email, operator.password)
    assert page.http.get_cookie("couponsvc_admin").value != first
    with app.app_context():
        assert people.find_session(db.session, first, policy=people.SignInPolicy()) is None


@pytest.mark.config(PUBLIC_URL="https://coupons.example.cn")
def test_the_cookie_is_secure_when_the_public_url_is_https(app, operator):
    site = "https://coupons.example.cn"
    page = pages(app.test_client())
    page.get("/admin/sign-in", base_url=site)
    answer = page.post("/admin/sign-in", {"email": operator.email, "password": operator.password},
                       base_url=site, headers={"Referer": f"{site}/admin/sign-in"})
    assert answer.status_code == 302
    cookies = answer.headers.getlist("Set-Cookie")
    assert all("Secure" in c for c in cookies) and len(cookies) == 2


def test_sign_in_goes_back_to_the_page_asked_for_and_never_to_another_site(app, operator):
    page = pages(app.test_client())
    asked = page.get("/admin/users?merchant=x")
    assert asked.status_code == 302 and "next=/admin/users" in asked.location
    page.get("/admin/sign-in?next=/admin/audit")
    answer = page.post("/admin/sign-in", {"email": operator.email, "password": operator.password,
                                          "next": "/admin/audit"})
    assert answer.location == "/admin/audit"
    other = pages(app.test_client())
    other.get("/admin/sign-in")
    answer = other.post("/admin/sign-in", {"email": operator.email, "password": operator.password,
                                           "next": "//evil.example/admin"})
    assert answer.location.startswith("/admin")


def test_signing_out_ends_the_session(app, operator, signed_in):
    page = signed_in(app.test_client(), operator)
    token = page.http.get_cookie("couponsvc_admin").value
    assert page.post("/admin/sign-out").status_code == 302
    assert page.get("/admin/sessions").status_code == 302
    with app.app_context():
        assert people.find_session(db.session, token, policy=people.SignInPolicy()) is None
    assert ("auth.sign_out", "") in audit_actions(app)


def test_empty_fields_are_asked_for(app):
    page = pages(app.test_client())
    page.get("/admin/sign-in")
    answer = page.post("/admin/sign-in", {"email": "", "password": ""})
    assert answer.status_code == 400 and "请输入邮箱和密码" in answer.get_data(as_text=True)


@pytest.mark.parametrize("email", ["x" * 5000 + "@example.cn", "\x00@example.cn", "名字@例子.中国"])
def test_odd_input_is_refused_not_an_error(app, email):
    page = pages(app.test_client())
    page.get("/admin/sign-in")
    assert page.post("/admin/sign-in", {"email": email, "password": "p" * 5000}).status_code == 401


def test_odd_input_is_audited_as_it_can_be(app):
    page = pages(app.test_client())
    page.get("/admin/sign-in")
    page.post("/admin/sign-in", {"email": "a\x00b@example.cn", "password": "x"},
              headers={"User-Agent": "agent"})
    with app.app_context():
        entry = db.session.scalars(select(AuditEntry)).one()
    assert entry.action == "auth.sign_in_failed" and entry.user_email == "a\ufffdb@example.cn"


@pytest.mark.postgresql
@pytest.mark.config(ADMIN_SIGNIN_LIMIT_PER_ADDRESS="1000/15minutes")
def test_wrong_passwords_sent_at_once_lock_the_account_as_one_by_one_would(app, operator):
    """Twelve wrong passwords posted together: each is counted (none is lost to another's
    write), so at most `max_failures` are checked before the lock and the right password is
    then refused too."""
    import threading

    crowd = 12
    ready = [pages(app.test_client()) for _ in range(crowd)]
    for page in ready:
        page.get("/admin/sign-in")
    barrier = threading.Barrier(crowd)
    statuses: list[int] = []

    def attempt(page) -> None:
        data = {"email": operator.email, "password": "wrong password", "csrf_token": page.csrf_token()}
        barrier.wait()
        statuses.append(page.http.post("/admin/sign-in", data=data).status_code)

    threads = [threading.Thread(target=attempt, args=(page,)) for page in ready]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [401] * 4 + [429] * (crowd - 4)
    assert pages(app.test_client()).sign_in(operator.email, operator.password).status_code == 429


def _reasons(app, email: str, moments, password: str = "wrong password"):
    """Sign-in attempts for `email` at each moment: (reason, retry_after) of each."""
    with app.test_request_context():
        rules, counter = policy(), limiter()
        seen = []
        for moment in moments:
            outcome = people.sign_in(db.session, email, password, address="192.0.2.20",
                                     limiter=counter, policy=rules, now=moment)
            db.session.commit()
            seen.append((outcome.reason, outcome.retry_after))
        return seen


def _mid_window(seconds: int, offset: int):
    """A moment `offset` seconds into a window of `seconds` by the epoch's clock."""
    from datetime import UTC, datetime

    now = int(utcnow().timestamp())
    return datetime.fromtimestamp(now - now % seconds + offset, UTC)


def test_an_unknown_email_is_told_the_same_wait_as_an_account(app, operator):
    """Five failures in the middle of a clock window: an account is locked for the whole lock
    time, and so is an e-mail nobody has (a wait cut short at the window's end would say
    the e-mail has no account)."""
    with app.test_request_context():
        seconds = policy().lock_seconds
    start = _mid_window(seconds, seconds // 2)
    moments = [start] * 5 + [start + timedelta(seconds=60)]
    known = _reasons(app, operator.email, moments)
    unknown = _reasons(app, "nobody-here@example.cn", moments)
    assert known == unknown
    assert known[4] == ("locked", seconds) and known[5] == ("locked", seconds - 60)


def test_failures_across_a_clock_window_lock_an_unknown_email_as_an_account(app, operator):
    """Three failures at the end of a window and two at the start of the next lock an
    account; they lock an e-mail nobody has too."""
    with app.test_request_context():
        seconds = policy().lock_seconds
    start = _mid_window(seconds, seconds - 5)
    moments = [start] * 3 + [start + timedelta(seconds=10)] * 2
    assert _reasons(app, "nobody-there@example.cn", moments) == _reasons(app, operator.email, moments)


@pytest.mark.config(ADMIN_SIGNIN_LIMIT_PER_ADDRESS="3/15minutes", ADMIN_MAX_FAILURES=50)
def test_an_ipv6_network_counts_as_one_address(app, operator):
    """One IPv6 client holds a whole /64: moving to the next address of it is no way around
    the address's budget."""
    def attempt(address: str, password: str) -> int:
        page = pages(app.test_client())
        return page.sign_in(operator.email, password, environ_base={"REMOTE_ADDR": address}).status_code

    assert [attempt(f"2001:db8:1:2::{n}", "wrong password") for n in (1, 2, 3)] == [401] * 3
    assert attempt("2001:db8:1:2:ffff::9", operator.password) == 429
    assert attempt("2001:db8:1:3::1", operator.password) == 302  # another network


def test_the_right_password_of_a_disabled_person_counts_as_a_wrong_one(app, operator):
    """Else it would be found out: four wrong passwords and then the right one would not lock
    the account where a fifth wrong one does."""
    with app.app_context():
        db.session.execute(update(AdminUser).values(disabled_at=utcnow()))
        db.session.commit()
    page = pages(app.test_client())
    assert [page.sign_in(operator.email, "wrong password").status_code for _ in range(4)] == [401] * 4
    assert page.sign_in(operator.email, operator.password).status_code == 429
    assert audit_actions(app)[-2:] == [("auth.sign_in_failed", "locked"), ("auth.account_locked", "")]
