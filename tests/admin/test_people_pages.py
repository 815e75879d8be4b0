"""Merchant users: listed, created (a password chosen or generated once), disabled and
enabled, signed out; a manager does this for their own merchant only."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from couponsvc import people
from couponsvc.domain_error import DomainError
from couponsvc.extensions import db
from couponsvc.models import AdminUser, AuditEntry

from .conftest import pages


def audit_of(app, action):
    with app.app_context():
        return db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)).all()


def test_an_operator_adds_a_manager_with_a_generated_password_shown_once(app, client, operator,
                                                                       signed_in):
    merchant = client.merchant(name="老街牛肉面")
    page = signed_in(app.test_client(), operator)
    form = page.get(f"/admin/users/new?merchant={merchant['id']}").get_data(as_text=True)
    assert 'for="f-email"' in form and f'value="{merchant["id"]}" selected' in form
    created = page.post("/admin/users/new", {"email": "Li.Ming@Example.cn", "name": "李明",
                                             "role": "manager", "merchant_id": merchant["id"]})
    assert created.status_code == 200 and created.headers["Cache-Control"] == "no-store"
    password = re.search(r'<p class="secret"[^>]*>([^<]+)</p>', created.get_data(as_text=True)).group(1)
    newcomer = pages(app.test_client())
    assert newcomer.sign_in("li.ming@example.cn", password).status_code == 302
    listing = page.get("/admin/users").get_data(as_text=True)
    assert "li.ming@example.cn" in listing and "老街牛肉面" in listing and password not in listing
    [entry] = audit_of(app, "person.create")
    assert (entry.user_id, entry.merchant_id, entry.detail["role"]) == (operator.id, merchant["id"], "manager")
    assert password not in str(entry.detail)


def test_field_errors_are_shown_next_to_their_field(app, client, operator, signed_in):
    page = signed_in(app.test_client(), operator)
    answer = page.post("/admin/users/new", {"email": "not-an-email", "role": "manager",
                                            "merchant_id": "", "password": "short"})
    assert answer.status_code == 422
    text = answer.get_data(as_text=True)
    assert 'id="f-email-error">请输入有效的邮箱地址。' in text
    assert 'id="f-password-error">至少 10 个字符。' in text
    assert 'id="f-merchant_id-error">请选择商户。' in text
    assert 'aria-invalid="true"' in text
    with app.app_context():
        assert db.session.scalar(select(AdminUser).where(AdminUser.email == "not-an-email")) is None


def test_an_email_can_have_one_person(app, client, operator, signed_in):
    merchant = client.merchant()
    page = signed_in(app.test_client(), operator)
    answer = page.post("/admin/users/new", {"email": operator.email.upper(), "role": "manager",
                                            "merchant_id": merchant["id"], "password": "long enough pw"},
                       headers={"Accept-Language": "en"})
    assert answer.status_code == 422
    assert "Someone already signs in with this e-mail." in answer.get_data(as_text=True)


def test_a_manager_adds_a_manager_of_their_own_merchant_only(app, client, manager_of, signed_in):
    mine, theirs = client.merchant(), client.merchant()
    page = signed_in(app.test_client(), manager_of(mine))
    ok = page.post("/admin/users/new", {"email": "colleague@example.cn", "merchant_id": mine["id"],
                                        "password": "a good long password"})
    assert ok.status_code == 200
    foreign = page.post("/admin/users/new", {"email": "intruder@example.cn",
                                             "merchant_id": theirs["id"],
                                             "password": "a good long password"})
    assert foreign.status_code == 404
    promoted = page.post("/admin/users/new", {"email": "boss@example.cn", "role": "operator",
                                              "merchant_id": mine["id"],
                                              "password": "a good long password"})
    assert promoted.status_code == 403  # refused by people.create_person, as to anyone but an operator
    with app.app_context():
        found = {u.email: (u.role, u.merchant_id) for u in db.session.scalars(select(AdminUser))}
    assert found["colleague@example.cn"] == ("manager", mine["id"])
    assert "boss@example.cn" not in found and "intruder@example.cn" not in found


def test_a_manager_sees_and_manages_their_merchants_people_only(app, client, operator, manager_of,
                                                                signed_in):
    mine, theirs = client.merchant(), client.merchant()
    me, colleague, stranger = manager_of(mine), manager_of(mine), manager_of(theirs)
    page = signed_in(app.test_client(), me)
    listing = page.get("/admin/users").get_data(as_text=True)
    assert me.email in listing and colleague.email in listing
    assert stranger.email not in listing and operator.email not in listing
    assert page.get(f"/admin/users?merchant={theirs['id']}").get_data(as_text=True).count(
        stranger.email) == 0
    for action in ("disable", "enable", "end-sessions"):
        assert page.post(f"/admin/users/{stranger.id}/{action}").status_code == 404
        assert page.post(f"/admin/users/{operator.id}/{action}").status_code == 404
    assert page.post(f"/admin/users/{me.id}/disable").status_code == 409


def test_disabling_signs_a_person_out_and_keeps_them_out_until_enabled(app, client, operator,
                                                                      manager_of, signed_in):
    merchant = client.merchant()
    manager = manager_of(merchant)
    their_browser = signed_in(app.test_client(), manager)
    page = signed_in(app.test_client(), operator)
    assert page.post(f"/admin/users/{manager.id}/disable").status_code == 302
    assert their_browser.get("/admin/sessions").status_code == 302
    assert pages(app.test_client()).sign_in(manager.email, manager.password).status_code == 401
    assert page.post(f"/admin/users/{manager.id}/enable").status_code == 302
    assert pages(app.test_client()).sign_in(manager.email, manager.password).status_code == 302
    assert [e.action for e in audit_of(app, "person.disable") + audit_of(app, "person.enable")] == [
        "person.disable", "person.enable"]
    assert audit_of(app, "person.disable")[0].merchant_id == merchant["id"]


def test_a_manager_ends_a_colleagues_sessions(app, client, manager_of, signed_in):
    merchant = client.merchant()
    me, colleague = manager_of(merchant), manager_of(merchant)
    their_browser = signed_in(app.test_client(), colleague)
    page = signed_in(app.test_client(), me)
    assert page.post(f"/admin/users/{colleague.id}/end-sessions").status_code == 302
    assert their_browser.get("/admin/sessions").status_code == 302
    [entry] = audit_of(app, "person.end_sessions")
    assert (entry.target_id, entry.detail["count"], entry.address) == (colleague.id, 1, "127.0.0.1")


def test_the_users_page_without_signing_in_sends_to_the_sign_in(app):
    answer = app.test_client().get("/admin/users")
    assert answer.status_code == 302 and answer.location.startswith("/admin/sign-in")


def test_a_locked_manager_is_unlocked_by_a_colleague(app, client, manager_of, signed_in):
    merchant = client.merchant()
    me, colleague = manager_of(merchant), manager_of(merchant)
    for _ in range(app.config["ADMIN_MAX_FAILURES"]):
        pages(app.test_client()).sign_in(colleague.email, "a wrong guess")
    assert pages(app.test_client()).sign_in(colleague.email, colleague.password).status_code == 429
    page = signed_in(app.test_client(), me)
    assert "解锁" in page.get("/admin/users").get_data(as_text=True)
    assert page.post(f"/admin/users/{colleague.id}/enable").status_code == 302
    assert pages(app.test_client()).sign_in(colleague.email, colleague.password).status_code == 302


@pytest.mark.parametrize("value", ["\x00", "a\x00b"])
def test_text_no_database_can_keep_is_refused_not_an_error(app, client, operator, signed_in, value):
    merchant = client.merchant()
    page = signed_in(app.test_client(), operator)
    assert page.get("/admin/users", query_string={"merchant": value}).status_code == 200
    for data, status in (({"email": f"x{value}@example.cn", "merchant_id": merchant["id"]}, 422),
                         ({"email": "ok@example.cn", "name": value, "merchant_id": merchant["id"]}, 422),
                         ({"email": "ok@example.cn", "merchant_id": value}, 404)):
        answer = page.post("/admin/users/new", {"role": "manager", "password": "long enough pw",
                                                **data})
        assert answer.status_code == status, data
    for name in ("merchant", "action", "after"):
        assert page.get("/admin/audit", query_string={name: value}).status_code == 422


def test_a_lone_surrogate_is_refused_by_the_domain(app, client):
    merchant = client.merchant()
    with app.app_context():
        for fields in ({"email": "x\ud800@example.cn"}, {"email": "ok@example.cn", "name": "\ud800"}):
            with pytest.raises(DomainError) as refused:
                people.create_person(db.session, people.SYSTEM, password="long enough pw",
                                     merchant_id=merchant["id"], **fields)
            assert refused.value.code == "validation_error"
        with pytest.raises(DomainError) as refused:
            people.create_person(db.session, people.SYSTEM, email="ok@example.cn",
                                 password="long enough pw", merchant_id="mer_\ud800")
        assert refused.value.code == "not_found"
        assert people.list_people(db.session, people.SYSTEM, merchant_id="mer_\ud800") == []
