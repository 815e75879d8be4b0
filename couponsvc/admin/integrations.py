"""Integrations: the list, adding one from its adapter's config schema, changing it, a test
ping, enabling and disabling, and the deliveries log with a retry of a dead delivery.

Every change goes through `couponsvc.integration_admin`, the functions behind
`POST /merchants/{id}/integrations`, `PATCH /integrations/{id}`, `POST .../test` and
`POST /deliveries/{id}/retry`, with the signed-in person's principal: another merchant's
integration or delivery is a 404. A webhook's signing secret is shown once, in the answer
to the form that created it; credentials are never filled into a form nor written to the
audit log.
"""

from __future__ import annotations

from flask import current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError
from sqlalchemy import func, select

from .. import integration_admin as manage
from .. import merchants
from ..adapters import adapter_named, descriptions
from ..api.pagination import cursor_page
from ..api.schemas.integrations import DeliveryListArgs, IntegrationIn, IntegrationPatch
from ..data_keys import DataKeyError
from ..domain_error import DomainError
from ..extensions import db
from ..integration_credentials import full_config
from ..integration_overview import attempts_of, attention_counts, events_of, integrations_query
from ..models import Delivery, Integration, Merchant
from ..qr_keys import data_keys
from ..stored_text import storable
from . import adapter_text, admin, schema_form
from .form_errors import form_errors, translated
from .guard import audit, signed_in

PAGE_SIZE = 50
MERCHANTS_IN_FILTER = 500
FILTERED_STATUSES = ("pending", "succeeded", "retrying", "dead", "held")  # `failed` = `retrying`


# The list -------------------------------------------------------------------------------

@admin.get("/integrations")
@signed_in
def integration_list():
    merchant_id = _stored_text(request.args.get("merchant_id"))
    status = request.args.get("status") if request.args.get("status") in Integration.STATUSES else None
    adapter = _stored_text(request.args.get("adapter"))
    merchant = merchants.get_merchant(db.session, g.principal, merchant_id) if merchant_id else None
    query = integrations_query(g.principal, merchant_id=merchant_id, status=status, adapter=adapter)
    page = cursor_page(query, Integration.id, after=request.args.get("after") or None, limit=PAGE_SIZE)
    rows = page["data"]
    owners = _merchants_of(rows)
    next_url = (url_for("admin.integration_list", merchant_id=merchant_id, status=status, adapter=adapter,
                        after=page["next"]) if page["next"] else None)
    return render_template(
        "admin/integrations/list.html", integrations=rows, owners=owners, merchant=merchant,
        counts=attention_counts(db.session, [row.id for row in rows]), next_url=next_url,
        filters={"merchant_id": merchant_id or "", "status": status or "", "adapter": adapter or ""},
        merchant_options=_merchant_options(merchant),
        adapter_options=[(a["name"], a["name"]) for a in descriptions()],
        summary=_summary, text=adapter_text)


def _merchants_of(integrations: list[Integration]) -> dict[str, Merchant]:
    ids = sorted({row.merchant_id for row in integrations})
    if not ids:
        return {}
    return {m.id: m for m in db.session.execute(select(Merchant).where(Merchant.id.in_(ids))).scalars()}


def _merchant_options(chosen: Merchant | None) -> list[tuple[str, str]]:
    """The operator's merchant filter; a manager has one merchant and no filter."""
    if g.principal.role != "platform":
        return []
    found = list(db.session.execute(select(Merchant).order_by(Merchant.name, Merchant.id)
                                    .limit(MERCHANTS_IN_FILTER)).scalars())
    if chosen is not None and chosen not in found:
        found.append(chosen)
    return [(m.id, f"{m.name} · {m.city}") for m in found]


def _summary(integration: Integration) -> str:
    """Where an integration sends, from what of its config may be shown (a URL, a login)."""
    for name in ("url", "instance_url", "base_url", "api_base"):
        if integration.config.get(name):
            return str(integration.config[name])
    return ""


# Adding one -----------------------------------------------------------------------------

def _adapters() -> dict[str, dict]:
    return {a["name"]: a for a in descriptions()}


def _stored_text(value: str | None) -> str | None:
    """A parameter as a column could hold it; None for empty, and for text no column can
    store (a NUL): an id of nothing, as a merchant id of nobody's is."""
    return value if value and storable(value) else None


def _own_merchant_id() -> str | None:
    chosen = request.values.get("merchant_id")
    if chosen:
        return chosen if storable(chosen) else "-"  # names nothing: 404
    return g.principal.merchant_id


@admin.get("/integrations/new")
@signed_in
def new_integration():
    merchant_id = _own_merchant_id()
    merchant = merchants.get_merchant(db.session, g.principal, merchant_id) if merchant_id else None
    adapters = _adapters()
    chosen = adapters.get(request.args.get("adapter", ""))
    if merchant is None or chosen is None:
        return render_template("admin/integrations/choose.html", merchant=merchant, adapters=adapters.values(),
                               merchant_options=_merchant_options(merchant), text=adapter_text)
    fields = schema_form.form_fields(chosen["config_schema"])
    return _integration_form(merchant, chosen, fields, values=schema_form.initial_values(fields, None),
                             events=set(chosen["events"]), timeout="15", errors={})


def _integration_form(merchant: Merchant, adapter: dict, fields, *, values: dict, events: set[str],
                      timeout: str, errors: dict, integration: Integration | None = None,
                      status: int = 200):
    stored = _stored_credentials(integration, fields) if integration is not None else set()
    return render_template(
        "admin/integrations/form.html", merchant=merchant, adapter=adapter, events=events, timeout=timeout,
        errors=errors, integration=integration, text=adapter_text,
        widgets=[_widget(f, values.get(f.name, ""), stored=f.name in stored)
                 for f in fields]), status


def _stored_credentials(integration: Integration, fields) -> set[str]:
    """The credential fields that hold a value (decrypted here to tell, never shown)."""
    secret = {f.name for f in fields if f.secret}
    if not secret or integration.credentials is None:
        return set()
    try:
        config = full_config(integration, data_keys())
    except DataKeyError:  # no configured key opens them: say each may be stored
        return secret
    return {name for name in secret if config.get(name) not in (None, "", {}, [])}


def _widget(f: schema_form.FormField, value: str, *, stored: bool) -> dict:
    """How the form draws one config field (`m.field`'s arguments). A credential is never
    filled in: when one is stored, leaving it empty keeps it."""
    hints = [adapter_text.described(f.description)] if f.description else []
    if f.secret and stored:
        hints.append(_("Stored and hidden. Leave empty to keep it; type a new value to replace it."))
    elif f.secret:
        hints.append(_("Write-only: stored encrypted, never shown again."))
    if f.kind == "lines":
        hints.append(_("One per line."))
    elif f.kind == "pairs":
        hints.append(_("One “name: value” per line."))
    elif f.kind == "json":
        hints.append(_("JSON."))
    attrs: dict = {"data-kind": f.kind}
    if f.max_length:
        attrs["maxlength"] = f.max_length
    if f.kind in ("integer", "number"):
        attrs |= {"inputmode": "numeric" if f.kind == "integer" else "decimal",
                  "step": "1" if f.kind == "integer" else "any"}
        attrs |= {name: limit for name, limit in (("min", f.minimum), ("max", f.maximum)) if limit is not None}
    if f.kind in ("text", "url") or f.secret:
        attrs |= {"spellcheck": "false", "autocapitalize": "none"}
    widget = {"name": f.input_name, "label": adapter_text.field_label(f.name), "value": "" if f.secret else value,
              "required": f.required and not (f.secret and stored), "options": None, "placeholder": None,
              "autocomplete": "off", "attrs": attrs}
    if f.kind == "choice":
        empty = [] if f.required else [("", _("(default)") if f.default is not None else "—")]
        widget |= {"type": "select", "options": empty + [(choice, choice) for choice in f.choices]}
    elif f.kind == "boolean":
        widget |= {"type": "checkbox"}
    elif f.multiline:
        widget |= {"type": "textarea"}
        attrs["rows"] = min(14, max(3, value.count("\n") + 2))
        if f.secret and stored:
            attrs["placeholder"] = _("(stored and hidden)")
    elif f.secret:
        widget |= {"type": "password", "autocomplete": "new-password",
                   "placeholder": "••••••••" if stored else None}
    elif f.kind in ("integer", "number"):
        widget |= {"type": "number"}
    elif f.kind == "url":
        widget |= {"type": "url", "placeholder": "https://"}
        attrs["inputmode"] = "url"
    else:
        widget |= {"type": "text"}
    if f.default not in (None, "", {}, []) and not f.secret and f.kind not in ("boolean", "json", "pairs"):
        hints.append(_("Default: %(value)s", value=f.default))
    widget["hint"] = " · ".join(hints) or None
    return widget


@admin.post("/integrations/new")
@signed_in
def create_integration():
    merchant = merchants.get_merchant(db.session, g.principal, _own_merchant_id())
    adapter = _adapters().get(request.form.get("adapter", ""))
    if adapter is None:
        raise DomainError("validation_error", _("Choose an adapter."))
    fields = schema_form.form_fields(adapter["config_schema"])
    config, read_errors = schema_form.read_config(fields, request.form, editing=False)
    chosen_events = request.form.getlist("events")
    timeout = request.form.get("timeout", "").strip() or "15"

    def refused(errors: dict):
        db.session.rollback()
        return _integration_form(merchant, adapter, fields, values=schema_form.posted_values(fields, request.form),
                                 events=set(chosen_events), timeout=timeout, errors=errors, status=422)

    if not chosen_events:
        read_errors["events"] = [_("Choose at least one event.")]
    if read_errors:
        return refused(translated(read_errors))
    try:
        body = IntegrationIn().load({"adapter": adapter["name"], "config": config, "events": chosen_events,
                                     "timeout": timeout})
        integration = manage.create_integration(
            db.session, merchant, keys=data_keys(),
            max_integrations=current_app.config["MAX_INTEGRATIONS_PER_MERCHANT"],
            allow_private_targets=current_app.config["ALLOW_PRIVATE_WEBHOOK_TARGETS"], **body)
    except (ValidationError, DomainError) as error:
        if isinstance(error, DomainError) and error.code not in ("validation_error", "too_many_integrations"):
            raise
        return refused(schema_form.field_errors(form_errors(error)))
    audit("integration.create", "integration", integration.id, merchant.id, adapter=integration.adapter,
          events=integration.events, config=integration.config, timeout=integration.timeout)
    secret = full_config(integration, data_keys()).get("secret") if integration.adapter == "webhook" else None
    db.session.commit()
    page = render_template("admin/integrations/created.html", integration=integration, merchant=merchant,
                           secret=secret, text=adapter_text)
    return page, 201, {"Cache-Control": "no-store"}


# One integration ------------------------------------------------------------------------

@admin.get("/integrations/<integration_id>")
@signed_in
def integration_page(integration_id: str):
    integration = manage.get_integration(db.session, g.principal, integration_id)
    merchant = db.session.get(Merchant, integration.merchant_id)
    adapter = _adapters().get(integration.adapter)
    fields = schema_form.form_fields(adapter["config_schema"]) if adapter else []
    return render_template(
        "admin/integrations/page.html", integration=integration, merchant=merchant, adapter=adapter,
        fields=fields, stored=_stored_credentials(integration, fields), counts=attention_counts(db.session, [integration.id]).get(integration.id, {}),
        shown=schema_form.shown, text=adapter_text)


@admin.route("/integrations/<integration_id>/edit", methods=["GET", "POST"])
@signed_in
def edit_integration(integration_id: str):
    integration = manage.get_integration(db.session, g.principal, integration_id)
    merchant = db.session.get(Merchant, integration.merchant_id)
    adapter = _adapters().get(integration.adapter)
    if adapter is None:
        raise DomainError("invalid_state", _("The adapter %(name)s is not installed here.", name=integration.adapter))
    fields = schema_form.form_fields(adapter["config_schema"])
    if request.method == "GET":
        return _integration_form(merchant, adapter, fields, integration=integration,
                                 values=schema_form.initial_values(fields, _shown_config(integration)),
                                 events=set(integration.events), timeout=f"{integration.timeout:g}", errors={})
    config, read_errors = schema_form.read_config(fields, request.form, editing=True)
    chosen_events = request.form.getlist("events")
    timeout = request.form.get("timeout", "").strip() or "15"

    def refused(errors: dict):
        db.session.rollback()
        again = manage.get_integration(db.session, g.principal, integration_id)
        return _integration_form(merchant, adapter, fields, integration=again,
                                 values=schema_form.posted_values(fields, request.form),
                                 events=set(chosen_events), timeout=timeout, errors=errors, status=422)

    if not chosen_events:
        read_errors["events"] = [_("Choose at least one event.")]
    if read_errors:
        return refused(translated(read_errors))
    try:
        changes = IntegrationPatch().load({"config": config, "events": chosen_events, "timeout": timeout})
        manage.update_integration(db.session, integration, changes, data_keys(),
                                  allow_private_targets=current_app.config["ALLOW_PRIVATE_WEBHOOK_TARGETS"])
    except (ValidationError, DomainError) as error:
        if isinstance(error, DomainError) and error.code != "validation_error":
            raise
        return refused(schema_form.field_errors(form_errors(error)))
    changed_secrets = sorted(f.name for f in fields if f.secret and f.name in config)
    audit("integration.update", "integration", integration.id, integration.merchant_id,
          events=integration.events, config=integration.config, timeout=integration.timeout,
          credentials_changed=changed_secrets)
    db.session.commit()
    flash(_("Integration saved."), "success")
    return redirect(url_for("admin.integration_page", integration_id=integration.id))


def _shown_config(integration: Integration) -> dict:
    adapter = adapter_named(integration.adapter)
    return adapter.config_schema().dump(integration.config) if adapter else dict(integration.config)


@admin.post("/integrations/<integration_id>/test")
@signed_in
def test_integration(integration_id: str):
    integration = manage.get_integration(db.session, g.principal, integration_id)
    try:
        delivery = manage.send_test(db.session, integration)
    except DomainError as error:
        if error.code != "invalid_state":
            raise
        db.session.rollback()
        flash(_("A disabled integration cannot be tested; enable it first."), "error")
        return redirect(url_for("admin.integration_page", integration_id=integration_id))
    audit("integration.test", "integration", integration.id, integration.merchant_id, delivery=delivery.public_id)
    db.session.commit()
    flash(_("Test ping sent; its delivery is at the top of the log."), "success")
    return redirect(url_for("admin.deliveries", integration_id=integration.id))


@admin.post("/integrations/<integration_id>/enable")
@signed_in
def enable_integration(integration_id: str):
    return _switch(integration_id, "active")


@admin.post("/integrations/<integration_id>/disable")
@signed_in
def disable_integration(integration_id: str):
    return _switch(integration_id, "disabled")


def _switch(integration_id: str, status: str):
    integration = manage.get_integration(db.session, g.principal, integration_id)
    held = 0
    if status == "active":
        held = db.session.scalar(select(func.count()).select_from(Delivery).where(
            Delivery.integration_id == integration.id, Delivery.status == "held"))
    was = integration.status
    manage.update_integration(db.session, integration, {"status": status}, data_keys(),
                              allow_private_targets=current_app.config["ALLOW_PRIVATE_WEBHOOK_TARGETS"])
    if was != status:
        audit("integration.enable" if status == "active" else "integration.disable", "integration",
              integration.id, integration.merchant_id, **({"released": held} if status == "active" else {}))
    db.session.commit()
    if status == "active" and held:
        flash(_("Integration enabled: %(num)d held deliveries are being sent, in order.", num=held), "success")
    elif status == "active":
        flash(_("Integration enabled."), "success")
    else:
        flash(_("Integration disabled: new events are held and sent, in order, when it is enabled again."),
              "success")
    return redirect(url_for("admin.integration_page", integration_id=integration.id))


# Deliveries -----------------------------------------------------------------------------

@admin.get("/integrations/<integration_id>/deliveries")
@signed_in
def deliveries(integration_id: str):
    integration = manage.get_integration(db.session, g.principal, integration_id)
    merchant = db.session.get(Merchant, integration.merchant_id)
    try:
        args = DeliveryListArgs().load({k: v for k, v in request.args.items() if k in ("status", "after") and v})
    except ValidationError as error:
        args, error_messages = {"after": None}, form_errors(error)
    else:
        error_messages = {}
    status = args.get("status")
    page = cursor_page(manage.deliveries_query(integration, status), Delivery.id, after=args.get("after"),
                       limit=PAGE_SIZE, integer=True, descending=True)
    rows = page["data"]
    next_url = (url_for("admin.deliveries", integration_id=integration.id, status=status, after=page["next"])
                if page["next"] else None)
    return render_template(
        "admin/integrations/deliveries.html", integration=integration, merchant=merchant, deliveries=rows,
        events=events_of(db.session, rows), attempts=attempts_of(db.session, rows), status=status,
        statuses=FILTERED_STATUSES, next_url=next_url, errors=error_messages, text=adapter_text,
        retryable=("dead", "failed")), 400 if error_messages else 200


@admin.post("/deliveries/<delivery_id>/retry")
@signed_in
def retry_delivery(delivery_id: str):
    delivery = manage.get_delivery(db.session, g.principal, delivery_id)
    back = request.form.get("status") or None
    try:
        manage.retry_delivery(db.session, delivery)
    except DomainError as error:
        if error.code != "invalid_state":
            raise
        db.session.rollback()
        flash(_("A held delivery is sent when its integration is enabled."), "error")
    else:
        audit("delivery.retry", "delivery", delivery.public_id, delivery.merchant_id,
              integration=delivery.integration_id)
        db.session.commit()
        flash(_("Delivery sent again."), "success")
    return redirect(url_for("admin.deliveries", integration_id=delivery.integration_id,
                            status=back if back in Delivery.SHOWN_STATUSES else None))
