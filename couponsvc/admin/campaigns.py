"""Campaigns: the list (filters, cursor paging), the create and edit forms, publish, pause,
resume and cancel with a confirmation, the campaign's page with its figures, orders and
coupons, the CSV export and the printable sheet of QR coupons of a distribution campaign.

Every view reads and acts through the domain functions the API calls, with the signed-in
person's `Principal`: another merchant's campaign is a 404 page, for a GET as for a POST.
Forms are loaded by the API's schemas (`campaign_form.py`).
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from flask import (
    Response,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import lazyload

from .. import campaigns as lifecycle
from .. import codes
from ..api.pagination import cursor_page
from ..api.schemas.campaigns import CampaignIn, CampaignListArgs, CampaignPatch, CancelIn
from ..api.schemas.coupons import CsvArgs
from ..campaigns.coupon_list import coupons_page, has_bulk
from ..campaigns.export import coupons_csv
from ..campaigns.lifecycle import EDITABLE, OPEN_FIELDS, possible_actions
from ..campaigns.listing import campaigns_query, merchants_named
from ..domain_error import DomainError
from ..extensions import db
from ..i18n import translate
from ..merchants import get_merchant
from ..models import Campaign, Merchant, Order, Store
from ..orders import orders_query
from ..qr import render
from ..qr_keys import keyring, shown_payload
from ..stored_text import storable
from ..timeutil import utcnow
from . import admin
from .bar_chart import bar_chart
from .campaign_form import field_errors, form_input, load, unchanged_dropped, values_of
from .figures import figures, forget
from .guard import audit, polled, signed_in

LIST_PAGE = 50
MERCHANT_OPTIONS = 1000
PAGE = 50
SHOWN_ON_PAGE = 10
PER_SHEET = 12  # coupons on one A4 sheet: 3 columns of 4
MAX_SHEETS = 10
STATUS_NAMES = {  # the words of admin/campaigns/_status.html
    "draft": lambda: _("draft"), "active": lambda: _("on sale"), "paused": lambda: _("paused"),
    "ended": lambda: _("ended"), "failed": lambda: _("did not tip"), "cancelled": lambda: _("cancelled"),
}


@admin.app_template_filter("coupon_code")
def coupon_code(code: str) -> str:
    """A code grouped for people: `K7QM-3XPA-9RT2`."""
    return codes.display(code)


def _campaign(campaign_id: str) -> Campaign:
    return lifecycle.get_campaign(db.session, g.principal, campaign_id)


def _merchant(campaign: Campaign) -> Merchant:
    return db.session.get(Merchant, campaign.merchant_id)


def _stores(merchant_id: str) -> list[Store]:
    return list(db.session.scalars(select(Store).where(Store.merchant_id == merchant_id)
                                   .order_by(Store.name, Store.id)))


# ---------------------------------------------------------------- the list

@admin.get("/campaigns")
@signed_in
def campaign_list():
    scope = g.principal.merchant_scope
    typed = {name: value for name in ("status", "city", "merchant_id", "after")
             if (value := (request.args.get(name) or "").strip())}
    if scope is not None:
        typed.pop("merchant_id", None)
    rows: list[Campaign] = []
    next_after = None
    errors: dict[str, list[str]] = {}
    try:
        args = CampaignListArgs().load({**typed, "limit": LIST_PAGE})
        query = campaigns_query(scope, merchant_id=args.get("merchant_id"), status=args.get("status"),
                                city=args.get("city")).options(lazyload(Campaign.stores))  # not listed
        page = cursor_page(query, Campaign.id, after=args["after"], limit=LIST_PAGE, descending=True)
        rows, next_after = page["data"], page["next"]
    except (ValidationError, DomainError) as error:
        errors = field_errors(error)
    filters = {name: typed[name] for name in ("status", "city", "merchant_id") if name in typed}
    # an operator's filter names every merchant, which also name the rows; a manager's rows
    # are all their own merchant's (its time zone is g.timezone)
    named = merchants_named(db.session, None) if scope is None else {}
    missing = {c.merchant_id for c in rows} - set(named)
    if scope is None and missing:  # more merchants than the filter lists
        named |= merchants_named(db.session, None, ids=missing)
    statuses = {s: STATUS_NAMES[s]() for s in Campaign.STATUSES}
    return render_template(
        "admin/campaigns/list.html", campaigns=rows, merchants=named, filters=filters,
        errors=errors, operator=scope is None, statuses=list(statuses.items()), status_names=statuses,
        merchant_options=[(m.id, m.name) for m in named.values()][:MERCHANT_OPTIONS],
        next_url=url_for("admin.campaign_list", **filters, after=next_after) if next_after else None,
        first_url=url_for("admin.campaign_list", **filters) if typed.get("after") else None,
    ), 422 if errors else 200


# ---------------------------------------------------------------- create and edit

def _suggested(zone: ZoneInfo) -> dict:
    """What a new campaign's form starts with: on sale from the next hour for a week."""
    start = utcnow().astimezone(zone).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    local = "%Y-%m-%dT%H:%M"
    return {"currency": "CNY", "min_group_size": 1, "uses_per_coupon": 1, "store_ids": [],
            "sales_start": start.strftime(local), "valid_from": start.strftime(local),
            "sales_end": (start + timedelta(days=7)).strftime(local),
            "valid_until": (start + timedelta(days=37)).strftime(local)}


def _typed(form) -> dict:
    """The values as typed, to show again with their errors."""
    values = {name: form.get(name, "") for name in form if name != "csrf_token"}
    values["store_ids"] = form.getlist("store_ids")
    return values


@admin.route("/campaigns/new", methods=["GET", "POST"])
@signed_in
def campaign_new():
    scope = g.principal.merchant_scope
    chosen = scope or (request.values.get("merchant_id") or "").strip()
    if not chosen:
        return render_template("admin/campaigns/choose_merchant.html", merchants=[
            (m.id, m.name) for m in merchants_named(db.session, None).values()])
    merchant = get_merchant(db.session, g.principal, chosen if storable(chosen) else None)
    zone = ZoneInfo(merchant.timezone)
    if request.method == "GET":
        return _form(merchant, None, _suggested(zone) | {"city": merchant.city}, {})
    data, unconverted = form_input(request.form, zone, creating=True)
    data["merchant_id"] = merchant.id
    try:
        campaign = lifecycle.create_campaign(db.session, g.principal,
                                             load(CampaignIn(), data, unconverted))
    except (ValidationError, DomainError) as error:
        db.session.rollback()
        return _form(merchant, None, _typed(request.form), field_errors(error)), 422
    audit("campaign.created", "campaign", campaign.id, campaign.merchant_id, title=campaign.title)
    db.session.commit()
    flash(_("Campaign “%(title)s” created as a draft.", title=campaign.title), "success")
    return redirect(url_for("admin.campaign_page", campaign_id=campaign.id))


@admin.route("/campaigns/<campaign_id>/edit", methods=["GET", "POST"])
@signed_in
def campaign_edit(campaign_id: str):
    campaign = _campaign(campaign_id)
    merchant = _merchant(campaign)
    zone = ZoneInfo(merchant.timezone)
    if request.method == "GET":
        return _form(merchant, campaign, values_of(campaign, zone), {})
    data, unconverted = form_input(request.form, zone, creating=False)
    try:
        changes = unchanged_dropped(campaign, load(CampaignPatch(), data, unconverted))
        if changes:
            campaign = lifecycle.update_campaign(db.session, campaign, changes)
    except (ValidationError, DomainError) as error:
        db.session.rollback()
        campaign = _campaign(campaign_id)
        return _form(merchant, campaign, values_of(campaign, zone) | _typed(request.form),
                     field_errors(error)), 422
    if changes:
        audit("campaign.updated", "campaign", campaign.id, campaign.merchant_id,
              fields=sorted(changes))
        db.session.commit()
        flash(_("Campaign saved."), "success")
    else:
        flash(_("Nothing was changed."), "info")
    return redirect(url_for("admin.campaign_page", campaign_id=campaign.id))


def _form(merchant: Merchant, campaign: Campaign | None, values: dict, errors: dict):
    editable = None
    if campaign is not None and campaign.status != "draft":
        editable = OPEN_FIELDS if campaign.status in EDITABLE else frozenset()
    return render_template("admin/campaigns/form.html", merchant=merchant, campaign=campaign,
                           values=values, errors=errors, stores=_stores(merchant.id),
                           editable=editable, operator=g.principal.merchant_scope is None)


# ---------------------------------------------------------------- publish, pause, resume, cancel

@admin.route("/campaigns/<campaign_id>/<any(publish, pause, resume, cancel):action>",
             methods=["GET", "POST"])
@signed_in
def campaign_action(campaign_id: str, action: str):
    """GET, or a POST without `confirm=yes`: the question. A confirmed POST: the action."""
    campaign = _campaign(campaign_id)
    if request.method == "GET" or request.form.get("confirm") != "yes":
        return render_template("admin/campaigns/confirm.html", campaign=campaign, action=action,
                               errors={}, reason="")
    detail = {}
    try:
        if action == "publish":
            lifecycle.publish(db.session, campaign, keyring().current_kid)
        elif action == "pause":
            lifecycle.pause(db.session, campaign)
        elif action == "resume":
            lifecycle.resume(db.session, campaign)
        else:
            reason = CancelIn().load({"reason": request.form.get("reason", "")})["reason"]
            lifecycle.cancel(db.session, campaign, reason)
            detail = {"reason": reason} if reason else {}
    except ValidationError as error:
        db.session.rollback()
        return render_template("admin/campaigns/confirm.html", campaign=_campaign(campaign_id),
                               action=action, errors=field_errors(error),
                               reason=request.form.get("reason", "")), 422
    except DomainError as error:
        db.session.rollback()
        if error.code == "not_found":
            raise
        flash(translate(error.detail), "error")
        return redirect(url_for("admin.campaign_page", campaign_id=campaign_id))
    audit(f"campaign.{action}", "campaign", campaign.id, campaign.merchant_id, **detail)
    db.session.commit()
    forget(("campaign", campaign.id))
    flash(DONE[action](), "success")
    return redirect(url_for("admin.campaign_page", campaign_id=campaign.id))


DONE = {
    "publish": lambda: _("Published: the deal is on sale."),
    "pause": lambda: _("Paused: nothing is sold until it is resumed."),
    "resume": lambda: _("Resumed: the deal is on sale again."),
    "cancel": lambda: _("Cancelled: its unused coupons are voided and its orders marked for refund."),
}


# ---------------------------------------------------------------- the campaign's page

def _days(by_day: list[dict], zone: ZoneInfo, days: int = 30) -> list[tuple[str, int]]:
    """The last `days` local days (to today) with their redemptions."""
    counts = {row["date"]: row["redemptions"] for row in by_day}
    today = utcnow().astimezone(zone).date()
    axis = [(today - timedelta(days=back)).isoformat() for back in range(days - 1, -1, -1)]
    return [(day[5:], counts.get(day, 0)) for day in axis]


@admin.get("/campaigns/<campaign_id>")
@signed_in
def campaign_page(campaign_id: str):
    campaign = _campaign(campaign_id)
    merchant = _merchant(campaign)
    zone = ZoneInfo(merchant.timezone)
    counted = _figures(campaign)
    stats = counted.value
    orders = cursor_page(orders_query(g.principal.merchant_scope, campaign_id=campaign.id), Order.id,
                         after=None, limit=SHOWN_ON_PAGE, descending=True)
    coupons, more_coupons = coupons_page(db.session, campaign, after=None, limit=SHOWN_ON_PAGE)
    return render_template(
        "admin/campaigns/page.html", campaign=campaign, merchant=merchant, stats=stats,
        as_of=counted.as_of, stores={s.id: s.name for s in _stores(merchant.id)},
        chart=bar_chart(_days(stats["by_day"], zone)), orders=orders["data"],
        more_orders=orders["next"] is not None, coupons=coupons, more_coupons=more_coupons is not None,
        bulk=has_bulk(db.session, campaign), actions=possible_actions(campaign),
        editable=campaign.status in EDITABLE, now=utcnow(), operator=g.principal.merchant_scope is None,
        refresh=_refresh(campaign))


@admin.get("/campaigns/<campaign_id>/figures")
@polled
def campaign_figures(campaign_id: str):
    """The page's four figures alone, which the open page asks for again (htmx) every
    `ADMIN_FIGURES_EVERY` seconds while they can still change."""
    campaign = _campaign(campaign_id)
    return render_template("admin/campaigns/figures.html", campaign=campaign, stats=_figures(campaign).value,
                           tz=_merchant(campaign).timezone, refresh=_refresh(campaign))


def _figures(campaign: Campaign):
    return figures(("campaign", campaign.id), lambda: lifecycle.campaign_stats(db.session, campaign))


def _refresh(campaign: Campaign) -> int | None:
    """Seconds until the page asks for the figures again; None: they are final."""
    every = current_app.config["ADMIN_FIGURES_EVERY"]
    return every if every and lifecycle.figures_can_change(campaign, utcnow()) else None


@admin.get("/campaigns/<campaign_id>/orders")
@signed_in
def campaign_orders(campaign_id: str):
    campaign = _campaign(campaign_id)
    after = (request.args.get("after") or "").strip() or None
    page = cursor_page(orders_query(g.principal.merchant_scope, campaign_id=campaign.id), Order.id,
                       after=after, limit=PAGE, descending=True)
    return render_template(
        "admin/campaigns/orders.html", campaign=campaign, merchant=_merchant(campaign),
        orders=page["data"], first_url=url_for("admin.campaign_orders", campaign_id=campaign.id) if after else None,
        next_url=url_for("admin.campaign_orders", campaign_id=campaign.id, after=page["next"])
        if page["next"] else None)


@admin.get("/campaigns/<campaign_id>/coupons")
@signed_in
def campaign_coupons(campaign_id: str):
    campaign = _campaign(campaign_id)
    after = (request.args.get("after") or "").strip() or None
    rows, next_code = coupons_page(db.session, campaign, after=after, limit=PAGE)
    return render_template(
        "admin/campaigns/coupons.html", campaign=campaign, merchant=_merchant(campaign), coupons=rows,
        now=utcnow(), first_url=url_for("admin.campaign_coupons", campaign_id=campaign.id) if after else None,
        next_url=url_for("admin.campaign_coupons", campaign_id=campaign.id, after=next_code)
        if next_code else None)


@admin.get("/campaigns/<campaign_id>/coupons.csv")
@signed_in
def campaign_csv(campaign_id: str):
    campaign = _campaign(campaign_id)
    try:
        status = CsvArgs().load({k: v for k, v in request.args.items() if k == "status" and v}).get("status")
    except ValidationError as error:
        raise DomainError("validation_error", "; ".join(field_errors(error).get("status", []))) from None
    audit("campaign.coupons_exported", "campaign", campaign.id, campaign.merchant_id,
          **({"status": status} if status else {}))
    db.session.commit()
    headers = {"Content-Disposition": f'attachment; filename="{campaign.id}-coupons.csv"'}
    return Response(stream_with_context(coupons_csv(db.session, campaign, status)),
                    mimetype="text/csv", headers=headers)


# ---------------------------------------------------------------- the print sheet

def _inline_qr(payload: str | None) -> str | None:
    """The payload's QR as an SVG element to put in the page (no XML prolog, no id)."""
    if payload is None:
        return None
    text = render.svg(payload, scale=4).decode()
    return text[text.index("<svg"):].replace(' id="qr-path"', "")


@admin.get("/campaigns/<campaign_id>/print")
@signed_in
def campaign_print(campaign_id: str):
    """Unused bulk-issued codes on A4 sheets of PER_SHEET, `sheets` sheets a page."""
    campaign = _campaign(campaign_id)
    merchant = _merchant(campaign)
    after = (request.args.get("after") or "").strip() or None
    try:
        sheets = min(MAX_SHEETS, max(1, int(request.args.get("sheets") or 1)))
    except ValueError:
        sheets = 1
    rows, next_code = coupons_page(db.session, campaign, after=after, limit=PER_SHEET * sheets,
                                   bulk_only=True)
    coupons = [{"code": c.code, "valid_until": c.valid_until,
                "svg": _inline_qr(shown_payload(c.code, c.campaign_id, c.valid_until, campaign.qr_kid))}
               for c in rows]
    if rows:
        audit("campaign.coupons_printed", "campaign", campaign.id, campaign.merchant_id,
              count=len(rows), first=rows[0].code, last=rows[-1].code)
        db.session.commit()
    pages = [coupons[i:i + PER_SHEET] for i in range(0, len(coupons), PER_SHEET)]
    return render_template(
        "admin/campaigns/print.html", campaign=campaign, merchant=merchant, pages=pages,
        sheets=sheets, count=len(coupons), per_sheet=PER_SHEET,
        next_url=url_for("admin.campaign_print", campaign_id=campaign.id, after=next_code, sheets=sheets)
        if next_code else None)
