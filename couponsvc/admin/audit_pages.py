"""The audit log page: every admin action, newest first, a page at a time; an operator
filters by merchant, anyone by action; a manager sees their merchant's entries only
(`couponsvc.audit.entries` with `g.principal`)."""

from __future__ import annotations

from flask import g, render_template, request, url_for

from .. import audit as audit_log
from .. import people
from ..extensions import db
from . import admin
from .guard import signed_in

PAGE_SIZE = 50


@admin.get("/audit")
@signed_in
def audit():
    operator = people.is_operator(g.principal)
    merchant_id = (request.args.get("merchant") or None) if operator else None
    action = (request.args.get("action") or "").strip()[:64] or None
    page = audit_log.entries(db.session, g.principal, merchant_id=merchant_id, action=action,
                             after=request.args.get("after") or None, limit=PAGE_SIZE)
    merchants = {m.id: m for m in people.merchant_choices(db.session, g.principal)}
    next_url = None
    if page.next:
        next_url = url_for("admin.audit", after=page.next,
                           **{k: v for k, v in (("merchant", merchant_id), ("action", action)) if v})
    return render_template("admin/audit.html", entries=page.entries, next_url=next_url,
                           merchants=merchants, merchant_id=merchant_id, action=action,
                           actions=audit_log.actions(db.session, g.principal), operator=operator)
