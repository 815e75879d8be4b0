"""Signing in and out: a wrong password refused, the right one let in, the form labelled."""

from __future__ import annotations

from sqlalchemy import select

from couponsvc.extensions import db
from couponsvc.models import AuditEntry

from .conftest import pages


def test_the_right_password_lets_in_and_a_wrong_one_is_refused(app, operator):
    page = pages(app.test_client())
    refused = page.sign_in(operator.email, "not the password")
    assert refused.status_code == 401
    assert "邮箱或密码不正确" in refused.get_data(as_text=True) or "not right" in refused.get_data(as_text=True)
    assert page.get("/admin/sessions").status_code == 302
    answer = page.sign_in(operator.email, operator.password)
    assert answer.status_code == 302
    assert page.get("/admin/sessions").status_code == 200
    with app.app_context():
        actions = [e.action for e in db.session.scalars(select(AuditEntry).order_by(AuditEntry.at))]
    assert actions == ["auth.sign_in_failed", "auth.sign_in"]


def test_a_form_posted_without_its_token_is_refused_with_a_page(app, operator):
    http = app.test_client()
    answer = http.post("/admin/sign-in", data={"email": operator.email, "password": operator.password})
    assert answer.status_code == 400
    assert answer.mimetype == "text/html"
    assert http.get_cookie("couponsvc_admin") is None


def test_pages_render(app, operator, signed_in):
    http = app.test_client()
    assert http.get("/").status_code == 200
    assert http.get("/admin/nothing-here").status_code == 404
    page = signed_in(http, operator)
    for path in ("/admin/sessions", "/admin/"):
        assert page.get(path).status_code in (200, 302), path
