"""`odoo`: redemptions pushed into an Odoo instance through JSON-RPC `execute_kw`.

Each `coupon.redeemed` and `coupon.redemption_reversed` becomes one record created in
the configured model (default `x_couponsvc.redemption`, a custom model the merchant
adds); a reversal is a record of its own with `x_reversal` true, so the ERP keeps
both and nothing is overwritten. `field_mapping` maps each Odoo field to a source:
a dot path into the event data (`coupon.code`, `redemption.redeemed_at`), or
`event.id`, `event.type`, `event.created_at`, `event.reversal`; a `|datetime` suffix
writes Odoo's "YYYY-MM-DD HH:MM:SS" UTC, `|amount` turns minor units into a decimal
amount. Sources missing from an event are left out.

Calls go to `{url}/jsonrpc` as `{"service": "object", "method": "execute_kw", "args":
[db, uid, api_key, model, method, args]}`; the uid is the config's `uid` or is asked
once from `common.authenticate(db, login, api_key, {})` and kept per (url, db, login)
until a call fails for good (a changed key or login is then noticed).
Delivery is at least once, so with `dedupe_field` (default `x_event_id`) a record
already holding the event id is not created again. A `ping` authenticates and counts
the model's records. JSON-RPC errors about access or validation are permanent; the
others (a serialisation failure, a restart) are retried.
"""

from __future__ import annotations

import itertools
import re
import threading
from datetime import UTC, datetime
from typing import Any

from cachetools import LRUCache
from marshmallow import Schema, ValidationError, fields, validate, validates

from . import http
from .adapter import (
    Context,
    Event,
    Outcome,
    PermanentError,
    RetryableError,
    credential,
    load_config,
)
from .limits import RateLimit, per_minute, per_minute_field
from .money import to_major

DEFAULT_MODEL = "x_couponsvc.redemption"
DEFAULT_MAPPING = {
    "x_name": "redemption.id",
    "x_event_id": "event.id",
    "x_reversal": "event.reversal",
    "x_coupon_code": "coupon.code",
    "x_campaign_id": "coupon.campaign_id",
    "x_campaign_title": "campaign.title",
    "x_order_id": "coupon.order_id",
    "x_store_id": "redemption.store_id",
    "x_uses": "redemption.uses",
    "x_amount": "campaign.price|amount",
    "x_currency": "campaign.currency",
    "x_redeemed_at": "redemption.redeemed_at|datetime",
    "x_reversed_at": "redemption.reversed_at|datetime",
}
PERMANENT_ERRORS = frozenset({
    "odoo.exceptions.AccessDenied", "odoo.exceptions.AccessError",
    "odoo.exceptions.ValidationError", "odoo.exceptions.UserError",
    "odoo.exceptions.MissingError", "builtins.ValueError", "builtins.KeyError",
    "builtins.TypeError",
})
_FIELD = re.compile(r"^[a-z_][a-z0-9_]*$")
_SOURCE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*(\|(datetime|amount))?$")

# (url, database, login) -> uid, asked once; forgotten when Odoo refuses it, and the least
# recently used first beyond _UIDS_MAX (cachetools is not thread-safe: hence the lock).
_UIDS_MAX = 1024
_uids: LRUCache[tuple[str, str, str], int] = LRUCache(maxsize=_UIDS_MAX)
_uids_lock = threading.Lock()
_ids = itertools.count(1)


class OdooConfig(Schema):
    url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False,
                     metadata={"description": "the instance, e.g. https://acme.odoo.com"})
    database = fields.String(required=True, validate=validate.Length(min=1, max=200))
    login = fields.String(required=True, validate=validate.Length(min=1, max=200))
    api_key = credential(fields.String(required=True, validate=validate.Length(min=1, max=500)))
    uid = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=1),
                         metadata={"description": "the login's user id; asked when absent"})
    model = fields.String(load_default=DEFAULT_MODEL,
                          validate=validate.Regexp(r"^[a-z_][a-z0-9_.]*$"))
    field_mapping = fields.Dict(keys=fields.String(), values=fields.String(),
                                load_default=lambda: dict(DEFAULT_MAPPING),
                                metadata={"description": "Odoo field → source path",
                                          "default": DEFAULT_MAPPING})
    dedupe_field = fields.String(load_default="x_event_id", allow_none=True,
                                 metadata={"description": "field holding the event id; "
                                           "null creates without looking"})
    max_per_minute = per_minute_field()

    @validates("field_mapping")
    def _check_mapping(self, value: dict[str, str], **_: Any) -> None:
        if not value:
            raise ValidationError("map at least one field")
        for name, source in value.items():
            if not _FIELD.match(name):
                raise ValidationError(f"{name!r} is not an Odoo field name")
            if not _SOURCE.match(source):
                raise ValidationError(f"{source!r} is not a source path")


def record_values(event: Event, mapping: dict[str, str]) -> dict[str, Any]:
    """The record to create for `event` under `mapping`."""
    root = {**event.data, "event": {
        "id": event.id, "type": event.type, "created_at": event.created_at.isoformat(),
        "reversal": event.type == "coupon.redemption_reversed"}}
    currency = (event.data.get("campaign") or {}).get("currency") or "CNY"
    values = {}
    for name, source in mapping.items():
        path, _, convert = source.partition("|")
        value: Any = root
        for key in path.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if value is None:
            continue
        if convert == "datetime":
            value = _odoo_datetime(value)
        elif convert == "amount":
            value = float(to_major(value, currency))
        values[name] = value
    return values


def _odoo_datetime(value: str) -> str:
    """An RFC 3339 time as Odoo stores datetimes: naive UTC, "YYYY-MM-DD HH:MM:SS"."""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


class OdooAdapter:
    name = "odoo"
    kind = "erp"
    events = frozenset({"coupon.redeemed", "coupon.redemption_reversed", "ping"})

    config_schema = OdooConfig

    def rate_limits(self, settings: dict[str, Any]) -> tuple[RateLimit, ...]:
        return per_minute(settings)

    def deliver(self, event: Event, config: dict[str, Any], context: Context) -> Outcome:
        settings = load_config(self, config)
        model = settings["model"]
        if event.type == "ping":
            count = self._execute(context, settings, "search_count", [[]])
            return Outcome(200, f"authenticated; {model} holds {count} records")
        if event.type not in self.events:
            return Outcome(None, f"skipped: {event.type} is not sent to Odoo")
        try:
            values = record_values(event, settings["field_mapping"])
        except (TypeError, ValueError) as error:
            raise PermanentError(f"the event does not fit the field mapping: {error}") from error
        dedupe = settings["dedupe_field"]
        if dedupe and dedupe in values:
            found = self._execute(context, settings, "search",
                                  [[[dedupe, "=", values[dedupe]]]], {"limit": 1})
            if not isinstance(found, list):
                raise RetryableError(f"Odoo answered search with {found!r}", status_code=200)
            if found:
                return Outcome(200, f"already recorded as {model} {found[0]}")
        created = self._execute(context, settings, "create", [values])
        return Outcome(200, f"created {model} {created}")

    def _execute(self, context: Context, settings: dict[str, Any], method: str,
                 args: list[Any], kwargs: dict[str, Any] | None = None) -> Any:
        uid = settings["uid"] or self._uid(context, settings)
        call = [settings["database"], uid, settings["api_key"], settings["model"], method, args]
        try:
            return _call(context, settings["url"], "object", "execute_kw",
                         call + ([kwargs] if kwargs else []))
        except PermanentError:
            if not settings["uid"]:
                with _uids_lock:
                    _uids.pop(_uid_key(settings), None)
            raise

    def _uid(self, context: Context, settings: dict[str, Any]) -> int:
        key = _uid_key(settings)
        with _uids_lock:
            if key in _uids:
                return _uids[key]
        uid = _call(context, settings["url"], "common", "authenticate",
                    [settings["database"], settings["login"], settings["api_key"], {}])
        if not isinstance(uid, int) or isinstance(uid, bool):
            raise PermanentError(f"Odoo refused the login {settings['login']!r} to database "
                                 f"{settings['database']!r}")
        with _uids_lock:
            _uids[key] = uid
        return uid


def _uid_key(settings: dict[str, Any]) -> tuple[str, str, str]:
    return (settings["url"].rstrip("/"), settings["database"], settings["login"])


def _call(context: Context, url: str, service: str, method: str, args: list[Any]) -> Any:
    """One JSON-RPC 2.0 call to `{url}/jsonrpc`; its `result`, or the classified error."""
    reply = http.request(context, "POST", url.rstrip("/") + "/jsonrpc", json={
        "jsonrpc": "2.0", "method": "call",
        "params": {"service": service, "method": method, "args": args}, "id": next(_ids)})
    http.raise_for_status(reply)
    try:
        answer = reply.json()
    except ValueError as error:
        raise RetryableError("Odoo answered something that is not JSON",
                             status_code=reply.status_code, excerpt=reply.excerpt) from error
    if not isinstance(answer, dict):
        raise RetryableError("Odoo answered an unexpected document",
                             status_code=reply.status_code, excerpt=reply.excerpt)
    error = answer.get("error")
    if error is None:
        return answer.get("result")
    error = error if isinstance(error, dict) else {"message": str(error)}
    data = error.get("data") if isinstance(error.get("data"), dict) else {}
    name = str(data.get("name") or "")
    text = f"{name or 'error'}: {data.get('message') or error.get('message')}"
    kind = PermanentError if name in PERMANENT_ERRORS else RetryableError
    raise kind(f"Odoo {service}.{method} failed: {text}", status_code=reply.status_code,
               excerpt=text)
