"""Merchant users: the people of a merchant, created, disabled and enabled, and their
sessions ended, by an operator (any merchant) or by a manager of that merchant.

Every rule is `couponsvc.people`'s (`visible_person`, `create_person`, ...) with
`g.principal`: a manager naming another merchant's person or merchant gets the 404 page.
"""

from __future__ import annotations

from flask import flash, g, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _

from .. import i18n, people
from ..domain_error import DomainError
from ..extensions import db
from ..timeutil import utcnow
from . import admin
from .guard import audit, policy, signed_in


@admin.get("/users")
@signed_in
def users():
    merchant_id = request.args.get("merchant") or None
    rows = people.list_people(db.session, g.principal, merchant_id=merchant_id)
    merchants = {m.id: m for m in people.merchant_choices(db.session, g.principal)}
    sessions = people.count_live_sessions(db.session, [u.id for u in rows], policy=policy())
    return render_template("admin/users/list.html", people=rows, merchants=merchants,
                           merchant_id=merchant_id, sessions=sessions, now=utcnow(),
                           operator=people.is_operator(g.principal))


@admin.route("/users/new", methods=["GET", "POST"])
@signed_in
def new_user():
    def page(form, errors):
        return render_template("admin/users/new.html", form=form, errors=errors,
                               merchants=merchants, operator=operator,
                               merchant_options=[(m.id, m.name) for m in merchants],
                               min_password=people.MIN_PASSWORD_LENGTH)

    operator = people.is_operator(g.principal)
    merchants = people.merchant_choices(db.session, g.principal)
    form = {"email": "", "name": "", "role": people.MANAGER, "password": "",
            "merchant_id": request.args.get("merchant") or (g.principal.merchant_id or "")}
    if request.method == "GET":
        return page(form, {})
    form.update({name: (request.form.get(name) or "").strip()
                 for name in ("email", "name", "role", "merchant_id")})
    form["password"] = request.form.get("password") or ""
    generated = not form["password"]
    password = people.generate_password() if generated else form["password"]
    role = form["role"] or people.MANAGER  # a manager's form has no role: another is refused
    try:
        user = people.create_person(
            db.session, g.principal, email=form["email"], name=form["name"], password=password,
            role=role, merchant_id=(form["merchant_id"] or None) if role == people.MANAGER else None)
    except DomainError as error:
        if error.code != "validation_error":
            raise
        db.session.rollback()
        errors = {name: [i18n.translate(m) for m in messages]
                  for name, messages in error.extra.get("errors", {}).items()}
        form["password"] = ""
        return page(form, errors), 422
    audit("person.create", "person", user.id, user.merchant_id, email=user.email, role=user.role,
          password_generated=generated)
    db.session.commit()
    response = make_response(render_template("admin/users/created.html", person=user,
                                             password=password if generated else None))
    response.headers["Cache-Control"] = "no-store"
    return response


@admin.post("/users/<user_id>/disable")
@signed_in
def disable_user(user_id: str):
    user = people.set_disabled(db.session, g.principal, user_id, True)
    audit("person.disable", "person", user.id, user.merchant_id, email=user.email)
    db.session.commit()
    flash(_("%(email)s is disabled and signed out everywhere.", email=user.email), "info")
    return redirect(_back(user))


@admin.post("/users/<user_id>/enable")
@signed_in
def enable_user(user_id: str):
    user = people.set_disabled(db.session, g.principal, user_id, False)
    audit("person.enable", "person", user.id, user.merchant_id, email=user.email)
    db.session.commit()
    flash(_("%(email)s may sign in again.", email=user.email), "info")
    return redirect(_back(user))


@admin.post("/users/<user_id>/end-sessions")
@signed_in
def end_user_sessions(user_id: str):
    user = people.visible_person(db.session, g.principal, user_id)
    keep = g.admin_session.id if user.id == g.person.id else None
    count = people.end_sessions(db.session, user.id, keep=keep)
    audit("person.end_sessions", "person", user.id, user.merchant_id, email=user.email, count=count)
    db.session.commit()
    flash(_("Sessions of %(email)s ended: %(num)d.", email=user.email, num=count), "info")
    return redirect(_back(user))


def _back(user) -> str:
    if people.is_operator(g.principal) and request.args.get("merchant"):
        return url_for("admin.users", merchant=request.args["merchant"])
    return url_for("admin.users")
