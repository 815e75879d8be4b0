"""Coupons: look one up by its code, read its history and refused attempts, void it.

A typed code is checked (its check character) by `couponsvc.coupons.find_coupon` before the
database is asked, so a typo is told at once; another merchant's coupon is as absent as one
that never was. Failed look-ups count against the client address's budget, as the API's do.
"""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError

from .. import codes
from ..api.schemas.coupons import VoidIn
from ..coupon_history import coupon_record
from ..coupons import find_coupon, void_coupon
from ..domain_error import CODES, DomainError
from ..extensions import db
from ..i18n import translate
from ..ratelimit import guarded_lookup
from ..timeutil import utcnow
from . import admin
from .guard import audit, signed_in

_LOOKUP_FAILURES = {"invalid_code", "coupon_not_found", "rate_limited"}


def refusal_title(reason: str) -> str:
    """A refused attempt's reason code, said for people (the title the API gives it)."""
    known = CODES.get(reason)
    return translate(known[1]) if known else reason


@admin.get("/coupons")
@signed_in
def coupon_lookup():
    """The look-up form; with `?code=`, the coupon's page (its canonical address) or why not."""
    typed = request.args.get("code", "")
    if not typed.strip():
        return render_template("admin/coupons/lookup.html", typed="", error=None)
    try:
        with guarded_lookup(None):
            coupon = find_coupon(db.session, g.principal, typed)
    except DomainError as error:
        if error.code not in _LOOKUP_FAILURES:
            raise
        return render_template("admin/coupons/lookup.html", typed=typed,
                               error=_lookup_message(error)), error.status
    return redirect(url_for("admin.coupon_page", code=coupon.code))


def _lookup_message(error: DomainError) -> str:
    if error.code == "invalid_code":
        return _("Invalid code (typo?): its check character does not match. Check each character.")
    if error.code == "coupon_not_found":
        return _("No coupon has this code.")
    return translate(error.detail)


@admin.get("/coupons/<code>")
@signed_in
def coupon_page(code: str):
    with guarded_lookup(None):
        record = coupon_record(db.session, g.principal, code, utcnow())
    if record.coupon.code != code:  # typed in another form: the canonical address
        return redirect(url_for("admin.coupon_page", code=record.coupon.code))
    return _page(record, errors={}, reason="")


def _page(record, *, errors: dict, reason: str):
    return render_template("admin/coupons/page.html", record=record, errors=errors, reason=reason,
                           display=codes.display(record.coupon.code), refusal_title=refusal_title)


@admin.post("/coupons/<code>/void")
@signed_in
def void(code: str):
    try:
        data = VoidIn().load({"reason": request.form.get("reason", "")})
    except ValidationError as error:
        record = coupon_record(db.session, g.principal, code, utcnow())
        return _page(record, errors=error.messages, reason=request.form.get("reason", "")), 422
    try:
        coupon = void_coupon(db.session, g.principal, code, data["reason"])
    except DomainError as error:
        if error.code != "invalid_state":
            raise
        db.session.rollback()
        flash(translate(error.detail), "error")
        return redirect(url_for("admin.coupon_page", code=codes.canonical(code)))
    audit("coupon.void", "coupon", coupon.code, coupon.merchant_id, reason=data["reason"])
    db.session.commit()
    flash(_("Coupon %(code)s voided.", code=codes.display(coupon.code)), "success")
    return redirect(url_for("admin.coupon_page", code=coupon.code))
