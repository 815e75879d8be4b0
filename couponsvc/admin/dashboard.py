"""The dashboard (`/admin/`): live deals and how close each is to tipping, sold and redeemed
today, redemptions per day over thirty days, deliveries that need a person.

An operator sees every merchant, or one (`?merchant_id=`); a manager their own. The
figures come from `couponsvc.campaigns.dashboard`; slow ones are kept a minute (`figures`).
"""

from __future__ import annotations

from flask import g, render_template, request

from ..campaigns import dashboard as figures_of
from ..campaigns.listing import merchants_named
from ..extensions import db
from ..merchants import get_merchant
from ..stored_text import storable
from . import admin
from .bar_chart import bar_chart
from .figures import figures
from .guard import signed_in


@admin.route("/", endpoint="dashboard")
@signed_in
def dashboard():
    principal = g.principal
    scope = principal.merchant_scope
    merchant = None
    wanted = (request.args.get("merchant_id") or "").strip() or None
    if wanted and scope is None:  # an unknown one is a 404 page
        merchant = get_merchant(db.session, principal, wanted if storable(wanted) else None)
    elif scope is not None:
        merchant = get_merchant(db.session, principal, scope)
    chosen = merchant.id if merchant is not None and scope is None else None
    deals, live = figures_of.live_deals(db.session, scope, merchant_id=chosen)
    counted = figures(("activity", scope, chosen),
                      lambda: figures_of.activity(db.session, scope, merchant_id=chosen))
    activity = counted.value
    deliveries = figures_of.deliveries_needing_attention(db.session, scope, merchant_id=chosen)
    return render_template(
        "admin/dashboard.html", merchant=merchant, deals=deals, live=live, activity=activity,
        as_of=counted.as_of, chart=bar_chart([(day[5:], n) for day, n in activity.days]),
        deliveries=deliveries, operator=scope is None,
        merchants=[(m.id, m.name) for m in merchants_named(db.session, scope).values()] if scope is None else [],
        timezone=merchant.timezone if merchant is not None else None)


admin.add_url_rule("/", endpoint="home", view_func=dashboard)
