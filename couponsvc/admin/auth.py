"""Signing in and out of the admin, and a person's own sessions (list, end one, end others).

A refused sign-in says the same whether or not the e-mail has an account; a locked
account or address is told how long to wait. Every sign-in, refusal and lock-out is in
the audit log. Signing in opens a new session with a new token and a new CSRF token
(a token planted before signing in is worth nothing after).
"""

from __future__ import annotations

import math

from flask import (
    Response,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import ngettext

from .. import audit as audit_log
from .. import people
from ..extensions import db
from ..ratelimit import client_address
from . import admin
from .guard import (
    COOKIE,
    audit,
    cookie_secure,
    current_person,
    limiter,
    policy,
    safe_next,
    signed_in,
)


def home_url() -> str:
    """Where a signed-in person lands: the dashboard."""
    return url_for("admin.dashboard")


@admin.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    target = safe_next(request.values.get("next"))
    if request.method == "GET":
        if current_person():
            return redirect(target or home_url())
        return render_template("admin/sign_in.html", email="", error=None, next=target)
    email = (request.form.get("email") or "").strip()
    password = request.form.get("password") or ""
    address = client_address()
    if not email or not password:
        return render_template("admin/sign_in.html", email=email, next=target,
                               error=_("Enter your e-mail and password.")), 400
    rules = policy()
    outcome = people.sign_in(db.session, email, password, address=address, limiter=limiter(),
                             policy=rules)
    known = outcome.known
    merchant_id = known.merchant_id if known else None
    if outcome.user is None:
        audit_log.record(db.session, None, "auth.sign_in_failed", target_type="person",
                         target_id=known.id if known else "", merchant_id=merchant_id,
                         address=address, email=people.normalise_email(email),
                         detail={"reason": outcome.reason})
        if outcome.locked_now and known is not None:
            audit_log.record(db.session, None, "auth.account_locked", target_type="person",
                             target_id=known.id, merchant_id=merchant_id, address=address,
                             email=known.email, detail={"seconds": outcome.retry_after})
        db.session.commit()
        return render_template("admin/sign_in.html", email=email, next=target,
                               error=_refusal(outcome)), 429 if outcome.reason in (
                                   "locked", "address_limited") else 401
    user = outcome.user
    old_token = request.cookies.get(COOKIE)
    if old_token:  # whatever session this browser had ends: a fresh one, a fresh token
        previous = people.find_session(db.session, old_token, policy=rules)
        if previous is not None:
            people.end_session(db.session, previous[1].id, previous[0].id)
    opened = people.open_session(db.session, user, address=address,
                                 user_agent=request.user_agent.string, policy=rules)
    audit_log.record(db.session, people.principal_of(user), "auth.sign_in", target_type="session",
                     target_id=opened.record.id, merchant_id=user.merchant_id, address=address,
                     email=user.email)
    db.session.commit()
    session.clear()  # a new CSRF token for the signed-in person
    response = redirect(target or home_url())
    response.set_cookie(COOKIE, opened.token, max_age=rules.absolute_seconds, httponly=True,
                        samesite="Lax", secure=cookie_secure(), path="/")
    return response


_BROWSERS = (("MicroMessenger", "WeChat"), ("DingTalk", "DingTalk"), ("Edg/", "Edge"),
             ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"),
             ("Chromium/", "Chromium"), ("Safari/", "Safari"))
_SYSTEMS = (("Android", "Android"), ("iPhone", "iPhone"), ("iPad", "iPad"), ("Windows", "Windows"),
            ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"), ("Linux", "Linux"))


@admin.app_template_filter("browser")
def browser(user_agent: str | None) -> str:
    """`Chrome · Android` from a User-Agent header (the whole header is in the title)."""
    agent = user_agent or ""
    name = next((label for mark, label in _BROWSERS if mark in agent), "")
    system = next((label for mark, label in _SYSTEMS if mark in agent), "")
    return " · ".join(part for part in (name, system) if part) or agent[:40]


def _refusal(outcome: people.SignIn) -> str:
    if outcome.reason in ("locked", "address_limited"):
        minutes = max(1, math.ceil((outcome.retry_after or 60) / 60))
        if outcome.reason == "address_limited":
            return ngettext("Too many failed sign-ins from this address. Try again in %(num)d minute.",
                            "Too many failed sign-ins from this address. Try again in %(num)d minutes.",
                            minutes)
        return ngettext("Too many failed sign-ins for this e-mail: it is locked. "
                        "Try again in %(num)d minute.",
                        "Too many failed sign-ins for this e-mail: it is locked. "
                        "Try again in %(num)d minutes.", minutes)
    return _("The e-mail or password is not right.")


@admin.post("/sign-out")
@signed_in
def sign_out():
    people.end_session(db.session, g.person.id, g.admin_session.id)
    audit("auth.sign_out", "session", g.admin_session.id, g.person.merchant_id)
    db.session.commit()
    session.clear()
    response = redirect(url_for("admin.sign_in"))
    response.delete_cookie(COOKIE, path="/", secure=cookie_secure(), httponly=True, samesite="Lax")
    flash(_("You have signed out."), "info")
    return response


@admin.get("/sessions")
@signed_in
def sessions():
    live = people.live_sessions(db.session, g.person.id, policy=policy())
    return render_template("admin/sessions.html", sessions=live, current=g.admin_session.id,
                           idle=policy().idle_seconds, absolute=policy().absolute_seconds)


@admin.post("/sessions/<session_id>/end")
@signed_in
def end_session(session_id: str) -> Response:
    ended = people.end_session(db.session, g.person.id, session_id)
    audit("session.end", "session", ended.id, g.person.merchant_id)
    db.session.commit()
    if ended.id == g.admin_session.id:
        return redirect(url_for("admin.sign_in"))
    flash(_("The session has ended."), "info")
    return redirect(url_for("admin.sessions"))


@admin.post("/sessions/end-others")
@signed_in
def end_other_sessions() -> Response:
    count = people.end_sessions(db.session, g.person.id, keep=g.admin_session.id)
    audit("session.end_others", "person", g.person.id, g.person.merchant_id, count=count)
    db.session.commit()
    flash(ngettext("%(num)d other session has ended.", "%(num)d other sessions have ended.", count),
          "info")
    return redirect(url_for("admin.sessions"))
