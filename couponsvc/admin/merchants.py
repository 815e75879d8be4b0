"""Merchants, their stores and API keys.

Operators list and create merchants; a manager has one merchant, theirs, and its page is
where `/admin/merchants` takes them. A new API key is shown once, in the answer to the
form that made it, and never again: not in the audit log, not on a later page. Every
object is found through `visible` with the person's principal, so another merchant's id
is a 404, whatever the method.
"""

from __future__ import annotations

from flask import current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .. import merchants
from ..api.pagination import cursor_page
from ..api.schemas.merchants import ApiKeyIn, MerchantIn, StoreIn
from ..domain_error import DomainError
from ..extensions import db
from ..models import ApiKey, Merchant, Store
from ..principal import MANAGER, PLATFORM, SCANNER, create_key, revoke_key, visible
from . import admin
from .form_errors import form_errors
from .guard import audit, operator_only, signed_in
from .key_form_token import FormExpired, key_id_of, new_token

PAGE_SIZE = 50
MERCHANT_FIELDS = ("name", "city", "timezone", "reversal_window", "deal_url_template")
TIMEZONES = ("Asia/Shanghai", "Asia/Urumqi", "Asia/Hong_Kong", "Asia/Macau", "Asia/Taipei")


def _form(*names: str, prefix: str = "") -> dict[str, str]:
    """The posted fields; on the merchant page, whose three forms share field names, each
    form's inputs are named `<form>.<field>` (so their ids differ too)."""
    return {name: request.form.get(prefix + name, "") for name in names}


def _prefixed(errors: dict, prefix: str) -> dict:
    return {prefix + str(name): messages for name, messages in errors.items()}


def _merchant_input(form: dict[str, str]) -> dict:
    """The merchant form as the API's body: an empty reversal window is the default (null)."""
    body: dict = {"name": form["name"], "city": form["city"], "timezone": form["timezone"] or "Asia/Shanghai"}
    window = form["reversal_window"].strip()
    whole = window.isdigit() and len(window) <= 18  # more digits: int() refuses them, as the schema does
    body["reversal_window"] = None if not window else int(window) if whole else window
    body["deal_url_template"] = form["deal_url_template"]  # empty: none, the platform's links
    return body


@admin.get("/merchants")
@signed_in
def merchant_list():
    if g.principal.role != "platform":  # a manager has one merchant: theirs
        return redirect(url_for("admin.merchant_page", merchant_id=g.principal.merchant_id))
    return _merchant_list(errors={}, form={"name": "", "city": "", "timezone": "Asia/Shanghai",
                                           "reversal_window": "", "deal_url_template": ""})


def _merchant_list(*, errors: dict, form: dict, status: int = 200):
    page = cursor_page(select(Merchant), Merchant.id, after=request.args.get("after") or None,
                       limit=PAGE_SIZE)
    next_url = url_for("admin.merchant_list", after=page["next"]) if page["next"] else None
    return render_template("admin/merchants/list.html", merchants=page["data"], next_url=next_url,
                           errors=errors, form=form, timezones=TIMEZONES), status


@admin.post("/merchants")
@signed_in
@operator_only
def create_merchant():
    form = _form(*MERCHANT_FIELDS)
    try:
        merchant = merchants.create_merchant(db.session, **MerchantIn().load(_merchant_input(form)),
                                             max_window=current_app.config["MAX_REVERSAL_WINDOW"])
    except (ValidationError, DomainError) as error:
        db.session.rollback()
        return _merchant_list(errors=form_errors(error), form=form, status=422)
    audit("merchant.create", "merchant", merchant.id, merchant.id, name=merchant.name, city=merchant.city)
    db.session.commit()
    flash(_("Merchant %(name)s created.", name=merchant.name), "success")
    return redirect(url_for("admin.merchant_page", merchant_id=merchant.id))


@admin.get("/merchants/<merchant_id>")
@signed_in
def merchant_page(merchant_id: str):
    merchant = merchants.get_merchant(db.session, g.principal, merchant_id)
    return _merchant_page(merchant)


def _merchant_page(merchant: Merchant, *, status: int = 200, new_key=None, **forms):
    stores = list(db.session.execute(select(Store).where(Store.merchant_id == merchant.id)
                                     .order_by(Store.created_at, Store.id)).scalars())
    keys = list(db.session.execute(select(ApiKey).where(ApiKey.merchant_id == merchant.id)
                                   .order_by(ApiKey.created_at.desc(), ApiKey.id)).scalars())
    defaults = {
        "merchant_form": {"name": merchant.name, "city": merchant.city, "timezone": merchant.timezone,
                          "reversal_window": "" if merchant.reversal_window is None else str(merchant.reversal_window),
                          "deal_url_template": merchant.deal_url_template or ""},
        "merchant_errors": {},
        "store_form": {"name": "", "city": "", "address": ""}, "store_errors": {},
        "key_form": {"role": SCANNER, "store_id": "", "label": "", "token": new_token(merchant.id)},
        "key_errors": {},
    }
    return render_template(
        "admin/merchants/page.html", merchant=merchant, stores=stores, keys=keys, new_key=new_key,
        role_names=role_names(), role_options=[(role, role_names()[role]) for role in (MANAGER, SCANNER)],
        timezones=TIMEZONES,
        stores_by_id={store.id: store for store in stores},
        store_options=[("", _("Any store"))] + [(store.id, store.name) for store in stores],
        effective_window=merchants.reversal_window(
            merchant, default=current_app.config["DEFAULT_REVERSAL_WINDOW"],
            ceiling=current_app.config["MAX_REVERSAL_WINDOW"]),
        people_url=url_for("admin.users", merchant=merchant.id), **(defaults | forms)), status


def role_names() -> dict[str, str]:
    return {PLATFORM: _("platform"), MANAGER: _("manager"), SCANNER: _("scanner")}


@admin.post("/merchants/<merchant_id>")
@signed_in
def update_merchant(merchant_id: str):
    merchant = merchants.get_merchant(db.session, g.principal, merchant_id)
    form = _form(*MERCHANT_FIELDS, prefix="merchant.")
    before = {name: getattr(merchant, name) for name in MERCHANT_FIELDS}
    try:
        loaded = MerchantIn().load(_merchant_input(form))
        changes = {name: loaded[name] for name in MERCHANT_FIELDS}  # what this form shows, no more
        merchants.update_merchant(db.session, merchant, changes,
                                  max_window=current_app.config["MAX_REVERSAL_WINDOW"])
    except (ValidationError, DomainError) as error:
        db.session.rollback()
        merchant = merchants.get_merchant(db.session, g.principal, merchant_id)
        return _merchant_page(merchant, status=422, merchant_form=form,
                              merchant_errors=_prefixed(form_errors(error), "merchant."))
    changed = {name: changes[name] for name in before if before[name] != changes[name]}
    audit("merchant.update", "merchant", merchant.id, merchant.id, **changed)
    db.session.commit()
    flash(_("Merchant saved."), "success")
    return redirect(url_for("admin.merchant_page", merchant_id=merchant.id))


@admin.post("/merchants/<merchant_id>/stores")
@signed_in
def create_store(merchant_id: str):
    merchant = merchants.get_merchant(db.session, g.principal, merchant_id)
    form = _form("name", "city", "address", prefix="store.")
    try:
        store = merchants.create_store(db.session, merchant, **StoreIn().load(form))
    except ValidationError as error:
        return _merchant_page(merchant, status=422, store_form=form,
                              store_errors=_prefixed(form_errors(error), "store."))
    audit("store.create", "store", store.id, merchant.id, name=store.name, city=store.city,
          address=store.address)
    db.session.commit()
    flash(_("Store %(name)s added.", name=store.name), "success")
    return redirect(url_for("admin.merchant_page", merchant_id=merchant.id, _anchor="stores"))


@admin.route("/stores/<store_id>", methods=["GET", "POST"])
@signed_in
def edit_store(store_id: str):
    store = visible(db.session, g.principal, Store, store_id, name="store")
    merchant = db.session.get(Merchant, store.merchant_id)
    if request.method == "GET":
        form = {"name": store.name, "city": store.city, "address": store.address}
        return render_template("admin/merchants/store.html", store=store, merchant=merchant, form=form,
                               errors={})
    form = _form("name", "city", "address")
    try:
        data = StoreIn().load(form)
    except ValidationError as error:
        return render_template("admin/merchants/store.html", store=store, merchant=merchant, form=form,
                               errors=form_errors(error)), 422
    merchants.update_store(db.session, store, **data)
    audit("store.update", "store", store.id, store.merchant_id, name=store.name, city=store.city,
          address=store.address)
    db.session.commit()
    flash(_("Store %(name)s saved.", name=store.name), "success")
    return redirect(url_for("admin.merchant_page", merchant_id=store.merchant_id, _anchor="stores"))


@admin.post("/merchants/<merchant_id>/api-keys")
@signed_in
def create_api_key(merchant_id: str):
    """The new key, shown on this answer alone: it is not stored, only its hash. The form
    makes one key, once (`key_form_token.py`): sent again, by a reload of this answer, it
    says the key was made and shows it no more."""
    merchant = merchants.get_merchant(db.session, g.principal, merchant_id)
    form = _form("role", "store_id", "label", "token", prefix="key.")
    try:
        key_id = key_id_of(form["token"], merchant.id)
    except FormExpired:
        return _merchant_page(merchant, status=422, key_form=form | {"token": new_token(merchant.id)},
                              key_errors={"key._schema": [_("This form is out of date: check it and "
                                                            "create the key again.")]})
    body = {"role": form["role"], "label": form["label"], "store_id": form["store_id"] or None}
    try:
        new = create_key(db.session, merchant_id=merchant.id, key_id=key_id, **ApiKeyIn().load(body))
        key = new.key
        audit("api_key.create", "api_key", key.id, merchant.id, role=key.role, store_id=key.store_id,
              label=key.label, prefix=key.prefix)
        db.session.commit()
    except (ValidationError, DomainError) as error:
        db.session.rollback()
        merchant = merchants.get_merchant(db.session, g.principal, merchant_id)
        return _merchant_page(merchant, status=422, key_form=form,
                              key_errors=_prefixed(form_errors(error), "key."))
    except IntegrityError:  # the form was sent before (a reload, or two sends at once): its key exists
        db.session.rollback()
        if db.session.get(ApiKey, key_id) is None:
            raise
        return _made_already(merchants.get_merchant(db.session, g.principal, merchant_id))
    response = _merchant_page(merchant, new_key=new)
    return response[0], 201, {"Cache-Control": "no-store"}


def _made_already(merchant: Merchant):
    flash(_("This form has made its key already; a key is shown only once. If it was not "
            "copied, revoke it below and create another."), "warning")
    return redirect(url_for("admin.merchant_page", merchant_id=merchant.id, _anchor="keys"), 303)


@admin.get("/merchants/<merchant_id>/api-keys")
@signed_in
def api_keys(merchant_id: str):
    """Where the answer that showed a new key was: its merchant's keys (the key is not shown again)."""
    merchant = merchants.get_merchant(db.session, g.principal, merchant_id)
    return redirect(url_for("admin.merchant_page", merchant_id=merchant.id, _anchor="keys"))


@admin.post("/api-keys/<key_id>/revoke")
@signed_in
def revoke_api_key(key_id: str):
    key = revoke_key(db.session, g.principal, key_id)
    audit("api_key.revoke", "api_key", key.id, key.merchant_id, prefix=key.prefix, label=key.label)
    db.session.commit()
    flash(_("Key %(prefix)s… revoked: it no longer works.", prefix=key.prefix), "success")
    if key.merchant_id is None:  # a platform key (an operator's): it has no merchant page
        return redirect(url_for("admin.merchant_list"))
    return redirect(url_for("admin.merchant_page", merchant_id=key.merchant_id, _anchor="keys"))

