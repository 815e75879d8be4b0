"""The campaign form: what a person types, made into what the API's schemas load.

A person types money in yuan (`39.90`) and times as the merchant's local time (a
`datetime-local` input); the API takes cents and RFC 3339 times. `form_input` converts
the one into the other and nothing else: the values then go through the API's own
`CampaignIn` / `CampaignPatch` and the same domain functions, so a field is refused for
exactly the reasons the API gives, shown next to it in the page's language.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from marshmallow import Schema, ValidationError
from werkzeug.datastructures import MultiDict

from ..domain_error import N_, DomainError
from ..i18n import translate
from ..models import Campaign

MONEY = ("price", "list_price")
TIMES = ("sales_start", "sales_end", "valid_from", "valid_until")
COUNTS = ("min_group_size", "max_coupons", "per_customer_limit", "uses_per_coupon")
OPTIONAL = ("list_price", "max_coupons", "per_customer_limit")  # empty: none
TEXTS = ("title", "description", "city", "currency")
FIELDS = (*TEXTS[:3], *MONEY, "currency", *TIMES, *COUNTS, "store_ids")
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"

NOT_MONEY = N_("Enter an amount in yuan, such as 39.90.")
NOT_A_TIME = N_("Enter a date and a time.")

# What the API's schemas and the campaign rules say about these fields, marked here for the
# catalogue (marshmallow's own messages and the domain's are not marked where they are written).
SAID_ELSEWHERE = (
    N_("Missing data for required field."), N_("Not a valid integer."), N_("Field may not be null."),
    N_("Not a valid string."), N_("Unknown field."),
    N_("Length must be between 1 and 300."), N_("Length must be between 1 and 40."),
    N_("Longer than maximum length 100."),
    N_("Longer than maximum length 20000."), N_("Longer than maximum length 500."),
    N_("Must be greater than or equal to 0 and less than or equal to 1000000000000."),
    N_("Must be greater than or equal to 1 and less than or equal to 1000000000."),
    N_("Must be greater than or equal to 1 and less than or equal to 1000."),
    N_("Must be an ISO 4217 code such as CNY."), N_("No such merchant."),
    N_("Must not be lower than price."), N_("Must be after sales_start."),
    N_("Must be after valid_from."),
    N_("Must be at least min_group_size, or the deal could never tip."),
    N_("Must be later than the current sales_end."),
    N_("Contains a character that cannot be stored (NUL or a lone surrogate)."),
)

_AMOUNT = re.compile(r"[0-9]+(\.[0-9]{1,2})?|\.[0-9]{1,2}")


def yuan(cents: int | None) -> str:
    """Cents as the form shows them: `39.90`."""
    return "" if cents is None else f"{Decimal(cents) / 100:.2f}"


def local_input(moment: datetime | None, zone: ZoneInfo) -> str:
    """An aware time as a `datetime-local` value in the merchant's zone."""
    return "" if moment is None else moment.astimezone(zone).strftime(LOCAL_FORMAT)


def values_of(campaign: Campaign, zone: ZoneInfo) -> dict[str, Any]:
    """A campaign's fields as the form shows them."""
    values: dict[str, Any] = {name: getattr(campaign, name) for name in (*TEXTS, *COUNTS)}
    values |= {name: yuan(getattr(campaign, name)) for name in MONEY}
    values |= {name: local_input(getattr(campaign, name), zone) for name in TIMES}
    values["store_ids"] = campaign.store_ids
    return values


def form_input(form: MultiDict, zone: ZoneInfo, *, creating: bool) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """(what the schema is to load, the fields that could not even be converted). Only the
    fields the form sent are given, text as typed; another empty field is left out when
    creating (the schema's default applies, or it says the field is required), and is
    `None` when editing an optional one."""
    data: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name in TEXTS:
        if name in form:
            value = form.get(name, "")
            value = value if name == "description" else value.strip()
            if value or not (creating and name in ("city", "currency")):  # empty: the defaults
                data[name] = value.upper() if name == "currency" else value
    for name in MONEY:
        raw = _normalised(form.get(name))
        if raw is None:
            continue
        if not raw:
            if not creating and name in OPTIONAL:
                data[name] = None
            continue
        cents = _cents(raw)
        if cents is None:
            errors[name] = [NOT_MONEY]
        else:
            data[name] = cents
    for name in COUNTS:
        raw = _normalised(form.get(name))
        if raw is None:
            continue
        if not raw:
            if not creating and name in OPTIONAL:
                data[name] = None
            continue
        # the schema refuses text, and digits past what int() reads (4300) or any limit allows
        data[name] = int(raw) if raw.isdigit() and raw.isascii() and len(raw) <= 18 else raw
    for name in TIMES:
        raw = _normalised(form.get(name))
        if not raw:
            continue
        try:
            moment = datetime.fromisoformat(raw).replace(tzinfo=zone)
            moment.astimezone(UTC)  # year 1 or 9999 can have no UTC time
        except (ValueError, OverflowError):
            errors[name] = [NOT_A_TIME]
        else:
            data[name] = moment.isoformat()
    if creating or "stores_shown" in form:
        data["store_ids"] = [value for value in form.getlist("store_ids") if value]
    return data, errors


def load(schema: Schema, data: dict[str, Any], errors: dict[str, list[str]]) -> dict[str, Any]:
    """The schema's result; ValidationError with its messages and the conversion errors."""
    try:
        loaded = schema.load(data)
    except ValidationError as error:
        messages = error.messages if isinstance(error.messages, dict) else {"_schema": error.messages}
        raise ValidationError({**messages, **errors}) from None
    if errors:
        raise ValidationError(errors)
    return loaded


def unchanged_dropped(campaign: Campaign, changes: dict[str, Any]) -> dict[str, Any]:
    """The changes that change something: a form sends every field it shows, and a time
    is shown to the minute."""
    kept = {}
    for name, value in changes.items():
        current = getattr(campaign, name)
        if name in TIMES:
            if current is not None and value.replace(second=0, microsecond=0) == \
                    current.replace(second=0, microsecond=0):
                continue
        elif name == "store_ids":
            if sorted(value) == sorted(current):
                continue
        elif value == current:
            continue
        kept[name] = value
    return kept


def field_errors(error: ValidationError | DomainError) -> dict[str, list[str]]:
    """Messages by field in the page's language; `_form` holds those of the whole form."""
    if isinstance(error, ValidationError):
        messages = error.messages if isinstance(error.messages, dict) else {"_form": error.messages}
    elif error.code == "validation_error" and error.extra.get("errors"):
        messages = error.extra["errors"]
    else:
        messages = {"_form": [error.detail or error.title]}
    shown: dict[str, list[str]] = {}
    for name, value in messages.items():
        shown["_form" if name == "_schema" else name] = [translate(text) for text in _flat(value)]
    return shown


def _flat(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _flat(item)]
    if isinstance(value, list | tuple):
        return [text for item in value for text in _flat(item)]
    return [str(value)]


def _normalised(value: str | None) -> str | None:
    if value is None:
        return None
    return unicodedata.normalize("NFKC", value).strip()


def _cents(raw: str) -> int | None:
    text = raw.replace(",", "").replace("¥", "").replace("￥", "").strip()
    if not _AMOUNT.fullmatch(text):
        return None
    try:
        return int(Decimal(text) * 100)
    except InvalidOperation:
        return None
