"""The reference of every operation: what it does, who may call it, which refusals it answers.

Declared once here and written into the OpenAPI document by `OperationsPlugin` as
flask-smorest registers each view, so the document stays generated:

- `summary` and `description` come from `OPERATIONS`;
- the roles (`x-roles`, and a sentence of the description) come from the view's own
  `requires(...)` (`bearer.py`), so they cannot drift from what is enforced; a view
  without it says who may call it in `OPERATIONS` (`access`);
- the refusals are the operation's own codes (`errors`) plus those its kind can answer
  (`common_codes`), each documented under its status from `domain_error.CODES` as a
  `Problem` whose `code` is one of them, with an example of each.

`tests/api/test_openapi.py` fails when an operation lacks any of this, and
`tests/api/test_openapi_answers.py` when an answer is not what the document says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from apispec import BasePlugin
from flask import Flask

from ..domain_error import CODES
from ..principal import ROLES
from ..problems import PAGE_PATH

PREFIX = "/api/v1"
PROBLEM = {"$ref": "#/components/schemas/Problem"}
METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Operation:
    summary: str
    description: str
    errors: tuple[str, ...] = ()
    access: tuple[tuple[str, ...], str] | None = None  # (roles, sentence): views without requires


LOOKUP = ("invalid_code", "coupon_not_found", "rate_limited")  # a coupon found by its code
SCAN = ("invalid_code", "invalid_qr", "coupon_not_found", "rate_limited", "store_not_allowed")
REFUSALS = ("coupon_already_redeemed", "coupon_pending", "coupon_voided", "coupon_expired",
            "coupon_not_yet_valid", "store_not_allowed", "insufficient_uses")
CURSOR = "Cursor-paged: pass `next` back as `?after=` for the following page; `next` is null on the last."

# "METHOD /path" (OpenAPI path without /api/v1) -> the operation's reference.
OPERATIONS: dict[str, Operation] = {
    # Merchants, stores, API keys
    "GET /merchants": Operation("List merchants", f"Every merchant. {CURSOR}"),
    "POST /merchants": Operation(
        "Create a merchant", "A merchant with its time zone and default reversal window; "
        "then add stores and API keys for its managers and scanners."),
    "GET /merchants/{merchant_id}": Operation(
        "Get a merchant", "A manager sees its own merchant only; any other id is 404."),
    "PATCH /merchants/{merchant_id}": Operation(
        "Change a merchant", "Name, time zone, reversal window (at most "
        "COUPONSVC_MAX_REVERSAL_WINDOW seconds) or the deal link template (`deal_url_template`: "
        "where the poster's QR code and the deal page's button point)."),
    "GET /merchants/{merchant_id}/stores": Operation(
        "List a merchant's stores", f"The stores where the merchant's coupons can be redeemed. {CURSOR}"),
    "POST /merchants/{merchant_id}/stores": Operation(
        "Add a store", "A store of the merchant; a campaign may restrict its coupons to some stores, "
        "and a scanner key may be pinned to one."),
    "GET /stores/{store_id}": Operation("Get a store", "One store of the caller's merchant."),
    "GET /merchants/{merchant_id}/api-keys": Operation(
        "List a merchant's API keys", f"Labels, roles, stores and revocations; never a secret. {CURSOR}"),
    "POST /merchants/{merchant_id}/api-keys": Operation(
        "Create an API key", "A manager or scanner key of the merchant (a scanner key may be pinned "
        "to a store). Its `secret` is answered here once and never again."),
    "GET /api-keys/{key_id}": Operation(
        "Get an API key", "A key's label, role, store and revocation; never its secret."),
    "DELETE /api-keys/{key_id}": Operation(
        "Revoke an API key", "The key stops working at once; revoking it again answers the same."),
    # Campaigns
    "GET /campaigns": Operation("List campaigns", f"The caller's campaigns, filtered by status. {CURSOR}"),
    "POST /campaigns": Operation(
        "Create a campaign", "A deal in `draft`: price, tipping point, stock, per-customer limit, "
        "sale and validity windows, stores. Publish it to put it on sale."),
    "GET /campaigns/{campaign_id}": Operation("Get a campaign", "One campaign with its counters."),
    "PATCH /campaigns/{campaign_id}": Operation(
        "Change a campaign", "Anything while `draft`; once published, only the description and a later "
        "`sales_end`.", ("invalid_state",)),
    "POST /campaigns/{campaign_id}/publish": Operation(
        "Publish a campaign", "Puts a draft on sale from `sales_start`.", ("invalid_state",)),
    "POST /campaigns/{campaign_id}/pause": Operation(
        "Pause a campaign", "Stops selling; coupons already sold stay valid.", ("invalid_state",)),
    "POST /campaigns/{campaign_id}/resume": Operation(
        "Resume a campaign", "Sells a paused campaign again.", ("invalid_state",)),
    "POST /campaigns/{campaign_id}/cancel": Operation(
        "Cancel a campaign", "Ends the deal for good: its coupons are voided and revoked, its orders "
        "cancelled (refund them in your payment system).", ("invalid_state",)),
    "GET /campaigns/{campaign_id}/poster.png": Operation(
        "Draw a campaign's share poster (PNG)", "A 1080×1920 poster for WeChat Moments and groups: "
        "title, price against list price, progress to the tipping point, stores, sales end, and a QR "
        "code of the deal link (COUPONSVC_DEAL_URL_TEMPLATE or the merchant's `deal_url_template`, "
        "else the deal page `/d/{campaign_id}`). `?lang=en` draws it in English. Its ETag changes "
        "when what it says changes; `If-None-Match` answers 304.",
        ("not_found", "poster_font_missing"),
        access=(("platform", "manager"), "With the `token` of the campaign's `poster_url` no key is "
                "needed; otherwise a platform or manager key that sees the campaign.")),
    "GET /campaigns/{campaign_id}/stats": Operation(
        "Get a campaign's figures", "Orders, coupons issued, redeemed, voided, and how far from tipping."),
    # Orders and bulk issuance
    "POST /campaigns/{campaign_id}/orders": Operation(
        "Buy coupons", "An order for `quantity` coupons of a campaign on sale, for one customer "
        "(`customer_ref`). Send an Idempotency-Key: a retry answers the same order.",
        ("campaign_not_on_sale", "sold_out", "insufficient_stock", "customer_limit_reached")),
    "GET /orders": Operation(
        "Find orders", "Orders by `campaign_id`, `customer_ref` (matched trimmed, case- and "
        f"width-folded, as orders store it) and `payment_ref`, oldest first. {CURSOR}"),
    "GET /orders/{order_id}": Operation("Get an order", "One order with its coupons."),
    "POST /campaigns/{campaign_id}/coupons/bulk": Operation(
        "Issue coupons in bulk", "Starts a job issuing `count` coupons (at most COUPONSVC_BULK_MAX); "
        "follow it at `/jobs/{id}`, then download `coupons.csv`.",
        ("campaign_not_on_sale", "sold_out", "insufficient_stock")),
    "GET /jobs/{job_id}": Operation("Get a job", "A bulk job's progress: requested, done, status."),
    "GET /campaigns/{campaign_id}/coupons.csv": Operation(
        "Download a campaign's coupons", "Every coupon of the campaign as CSV, optionally by status."),
    # Coupons
    "GET /coupons/{code}": Operation(
        "Get a coupon", "A coupon by its code (dashes, spaces and case ignored), with its redemptions. "
        "Failed look-ups count against the key's guessing budget.", LOOKUP),
    "POST /coupons/{code}/void": Operation(
        "Void a coupon", "The coupon can no longer be redeemed and is revoked for offline scanners.",
        ("invalid_code", "coupon_not_found", "invalid_state")),
    "GET /coupons/{code}/qr.png": Operation(
        "Draw a coupon's QR code (PNG)", "The signed QR the till scans.",
        ("coupon_not_found", "invalid_code", "rate_limited", "invalid_state"),
        access=(ROLES, "With the `token` of the coupon's `qr_url` no key is needed; otherwise "
                       "a key that sees the coupon (platform, manager, scanner).")),
    "GET /coupons/{code}/qr.svg": Operation(
        "Draw a coupon's QR code (SVG)", "The signed QR the till scans.",
        ("coupon_not_found", "invalid_code", "rate_limited", "invalid_state"),
        access=(ROLES, "With the `token` of the coupon's `qr_url` no key is needed; otherwise "
                       "a key that sees the coupon (platform, manager, scanner).")),
    "GET /qr-keys": Operation(
        "Get the QR verification keys", "The public keys (JWKS) that verify coupon QR codes offline.",
        access=((), "Anyone: no key is needed.")),
    "GET /revocations": Operation(
        "List revoked coupons", "Codes voided or refunded, oldest first. Every page answers `next`, "
        "the last one included: ask again later with `?after=<next>` for only what is new."),
    # Redemption at the till
    "POST /redemptions/validate": Operation(
        "Check a coupon at the till", "Would this coupon redeem here, now? A refusal of the coupon "
        "itself is `200` with `ok: false` and its `code`; nothing is written but the attempt.", SCAN),
    "POST /redemptions": Operation(
        "Redeem a coupon", "Uses the coupon (by `code` or scanned `qr`) at a store. Send an "
        "Idempotency-Key: a till that retries after a timeout gets the same answer, never a second use.",
        SCAN + REFUSALS),
    "POST /redemptions/batch": Operation(
        "Upload scans made offline", "Up to 500 scans a till queued offline, each "
        "`{qr | code, store_id, scanned_at, device_id, nonce, uses}`, answered in order: `accepted`, "
        "`duplicate` (this device sent this nonce before: its first outcome), `conflict` (the coupon "
        "was used elsewhere first, or voided after the scan: recorded as an `offline_conflict` "
        "attempt) or `rejected` (with the refusal's code: a forged QR, another store, a scan time in "
        "the future, ...). Judged at each scan's time; a body that is not valid is 422 as a whole.",
        ("rate_limited",)),
    "GET /redemptions": Operation(
        "List redemptions", f"Successful redemptions, newest last; refusals are at "
        f"/redemption-attempts. {CURSOR}"),
    "GET /redemptions/{redemption_id}": Operation(
        "Get a redemption", "One redemption, reversed or not; a pinned scanner sees its own store's only.",
        ("redemption_not_found",)),
    "POST /redemptions/{redemption_id}/reverse": Operation(
        "Reverse a redemption", "Gives the coupon its uses back within the merchant's reversal window.",
        ("redemption_not_found", "redemption_already_reversed", "reversal_window_closed")),
    "GET /whoami": Operation(
        "Tell the caller who it is", "The key, its merchant, the store a scanner key is pinned to (or "
        "every store it may choose from) and the merchant's deals whose coupons can still be used: "
        "what a scanner app shows and checks offline. A platform key has no merchant."),
    "GET /redemption-attempts": Operation(
        "List refused attempts", "Refused validates and redeems, and offline scans uploaded in a "
        "batch that were refused or lost a conflict (`?reason=offline_conflict`, with their "
        f"`scanned_at`): who tried what, where, and why. {CURSOR}"),
    # Events and integrations
    "GET /events": Operation(
        "List events", "Every event the key may see, in commit order; pass `next` back as `after` "
        "to resume, or an event's id (a webhook's `webhook-id` or `webhook-cursor`) to resume after "
        "that event (422 when the key sees no such event)."),
    "GET /adapters": Operation(
        "List adapters", "Installed adapters, with the JSON Schema of each one's config."),
    "GET /merchants/{merchant_id}/integrations": Operation(
        "List a merchant's integrations", f"Webhooks and other adapters the merchant sends events to. {CURSOR}"),
    "POST /merchants/{merchant_id}/integrations": Operation(
        "Create an integration", "A webhook integration answers its signing `secret` here, once.",
        ("too_many_integrations",)),
    "GET /integrations/{integration_id}": Operation(
        "Get an integration", "Its adapter, events, status and config without credentials."),
    "PATCH /integrations/{integration_id}": Operation(
        "Change an integration", "Config, events, timeout; `status: active` re-enables a disabled one."),
    "POST /integrations/{integration_id}/test": Operation(
        "Send a test event", "Sends a `ping` to this integration; follow the delivery it answers.",
        ("invalid_state",)),
    "GET /integrations/{integration_id}/deliveries": Operation(
        "List an integration's deliveries", "Newest first, optionally by status (`failed` finds the "
        f"`retrying` ones, its former name). {CURSOR}"),
    "GET /deliveries/{delivery_id}": Operation("Get a delivery", "One delivery with its attempts."),
    "POST /deliveries/{delivery_id}/retry": Operation(
        "Send a delivery again", "Now: a dead or retrying delivery for one more attempt, a succeeded "
        "one once more (same `webhook-id`); a held one is 409 until its integration is enabled.",
        ("invalid_state",)),
}

# Request bodies as a client would send them ("METHOD /path" as in OPERATIONS); a body not
# listed gets an example built from its schema.
REQUEST_EXAMPLES: dict[str, dict[str, Any]] = {
    "POST /merchants": {"name": "老街牛肉面", "city": "赣州", "timezone": "Asia/Shanghai",
                        "reversal_window": 900},
    "PATCH /merchants/{merchant_id}": {"reversal_window": 1800},
    "POST /merchants/{merchant_id}/stores": {"name": "文清路店", "city": "赣州", "address": "文清路 1 号"},
    "POST /merchants/{merchant_id}/api-keys": {"role": "scanner", "store_id": "sto_01JD7QA2M4",
                                              "label": "till 1"},
    "POST /campaigns": {"merchant_id": "mer_01JD7Q8ZK3", "title": "双人牛肉面套餐", "price": 3990,
                        "list_price": 6800, "min_group_size": 10, "max_coupons": 500,
                        "per_customer_limit": 2, "sales_start": "2026-05-01T10:00:00+08:00",
                        "sales_end": "2026-05-08T22:00:00+08:00", "valid_from": "2026-05-01T10:00:00+08:00",
                        "valid_until": "2026-06-30T22:00:00+08:00"},
    "PATCH /campaigns/{campaign_id}": {"sales_end": "2026-05-15T22:00:00+08:00"},
    "POST /campaigns/{campaign_id}/cancel": {"reason": "the restaurant closes for renovation"},
    "POST /campaigns/{campaign_id}/orders": {"customer_ref": "wx-oQ3k9", "quantity": 2,
                                            "payment_ref": "alipay-2026050112345"},
    "POST /campaigns/{campaign_id}/coupons/bulk": {"count": 1000},
    "POST /coupons/{code}/void": {"reason": "refunded"},
    "POST /redemptions/validate": {"code": "K7QM-3XPA-9RTM"},
    "POST /redemptions": {"code": "K7QM-3XPA-9RTM", "uses": 1, "device_id": "till-1"},
    "POST /redemptions/{redemption_id}/reverse": {"reason": "scanned the wrong coupon"},
    "POST /redemptions/batch": {"items": [
        {"qr": "CPN1.K7QM3XPA9RTM.cmp_01JD7QB1X2.1782828000.9vXk3-signature-base64url",
         "scanned_at": "2026-05-01T12:31:07+08:00", "device_id": "till-1",
         "nonce": "2f0c6c1e-7d1f-4f59-9f1c-6d0e3c1b2a90", "uses": 1}]},
    "POST /merchants/{merchant_id}/integrations": {
        "adapter": "webhook", "config": {"url": "https://shop.example/couponsvc/hook"},
        "events": ["coupon.redeemed", "campaign.tipped"], "timeout": 10},
    "PATCH /integrations/{integration_id}": {"status": "active"},
}

# Members a refusal may carry besides the RFC 9457 ones, for the examples.
_EXAMPLE_MEMBERS: dict[str, dict[str, Any]] = {
    "validation_error": {"errors": {"quantity": ["Must be greater than or equal to 1."]}},
    "forbidden": {"roles": ["platform", "manager"]},
    "customer_limit_reached": {"bought": 2, "limit": 2},
    "insufficient_stock": {"remaining": 3},
    "coupon_already_redeemed": {"redeemed_at": "2026-05-01T04:30:00+00:00", "store_id": "sto_01"},
    "coupon_expired": {"valid_until": "2026-04-30T15:59:59+00:00"},
    "insufficient_uses": {"uses_left": 1},
    "reversal_window_closed": {"window": 900},
    "rate_limited": {"retry_after": 60},
}


def common_codes(operation: dict, path: str, authenticated: bool) -> list[str]:
    """The codes every operation of this kind can answer (key, body, query, path ids)."""
    found = []
    if authenticated:
        found += ["unauthenticated", "forbidden"]
    parameters = operation.get("parameters", [])
    if "requestBody" in operation:
        found += ["malformed_json", "unsupported_media_type", "payload_too_large", "validation_error"]
    if any(p.get("in") == "query" for p in parameters):
        found.append("validation_error")
    if "{" in path:
        found.append("not_found")
    if any(p.get("in") == "header" and p.get("name") == "Idempotency-Key" for p in parameters):
        found += ["bad_request", "idempotency_key_reused", "idempotency_key_in_use"]
    return found


def error_responses(codes: list[str]) -> dict[str, dict]:
    """One response per status: a `Problem` whose `code` is one of that status's codes."""
    by_status: dict[int, list[str]] = {}
    for code in dict.fromkeys(codes):
        by_status.setdefault(CODES[code][0], []).append(code)
    responses = {}
    for status, group in sorted(by_status.items()):
        responses[str(status)] = {
            "description": "; ".join(f"`{code}`: {CODES[code][1]}" for code in group),
            "content": {"application/problem+json": {
                "schema": {"allOf": [PROBLEM, {"properties": {"code": {"enum": group}}}]},
                "examples": {code: {"summary": CODES[code][1], "value": problem_example(code)}
                             for code in group},
            }},
        }
    return responses


def problem_example(code: str) -> dict[str, Any]:
    status, title = CODES[code]
    # relative (RFC 9457 allows it): the document is written without a public URL
    return {"type": PAGE_PATH + code, "title": title, "status": status, "detail": title,
            "code": code, **_EXAMPLE_MEMBERS.get(code, {})}


def roles_of(view) -> tuple[str, ...] | None:
    """The roles of the view's `requires(...)`, or None for a view without it."""
    return getattr(view, "roles", None)


class OperationsPlugin(BasePlugin):
    """Completes each operation flask-smorest documents with its reference (see the module)."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def operation_helper(self, path=None, operations=None, **kwargs) -> None:
        rule = kwargs.get("rule")
        if rule is None or not path.startswith(PREFIX):
            return
        view_class = getattr(self.app.view_functions.get(rule.endpoint), "view_class", None)
        for method, operation in operations.items():
            if method not in METHODS:
                continue
            reference = OPERATIONS.get(f"{method.upper()} {path[len(PREFIX):]}")
            if reference is None:
                continue  # tests/api/test_openapi.py names it
            self._complete(operation, path, reference, roles_of(getattr(view_class, method, None)))
            request = REQUEST_EXAMPLES.get(f"{method.upper()} {path[len(PREFIX):]}")
            for media in _json_media(operation.get("requestBody", {})):
                if request is not None:
                    media["example"] = request

    def _complete(self, operation: dict, path: str, reference: Operation,
                  roles: tuple[str, ...] | None) -> None:
        if roles is not None and reference.access is not None:
            raise ValueError(f"{path}: roles come from requires(...), not from OPERATIONS")
        if roles is not None:
            sentence = f"Roles: {', '.join(roles)}."
        elif reference.access is not None:
            roles, sentence = reference.access
        else:
            return  # no roles: tests/api/test_openapi.py names it
        operation["summary"] = reference.summary
        operation["description"] = f"{reference.description}\n\n{sentence}"
        operation["x-roles"] = list(roles)
        codes = common_codes(operation, path, authenticated=bool(roles)) + list(reference.errors)
        responses = operation.setdefault("responses", {})
        for status in [s for s in responses if str(s).isdigit() and int(s) >= 400]:
            del responses[status]  # flask-smorest's generic ones, replaced by the declared codes
        responses.update(error_responses(codes))


def add_examples(spec) -> None:
    """Give every JSON request and success answer without an example one built from its schema.

    Run once the document is whole (after `webhooks_doc` types the events), on the paths
    `to_dict()` hands out, which are the document's own.
    """
    document = spec.to_dict()
    for item in document["paths"].values():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            for media in _json_media(operation.get("requestBody", {})):
                media.setdefault("example", example_of(media.get("schema", {}), spec.components.schemas))
            for status, response in operation.get("responses", {}).items():
                if str(status).isdigit() and int(status) < 400:
                    for media in _json_media(response):
                        media.setdefault("example", example_of(media.get("schema", {}),
                                                               spec.components.schemas))


def _json_media(holder: dict) -> list[dict]:
    return [media for kind, media in holder.get("content", {}).items() if kind == "application/json"]


_STRING_EXAMPLES = {"date-time": "2026-05-01T12:00:00+08:00", "date": "2026-05-01", "uri": "https://shop.example/hook",
                    "email": "ops@shop.example", "uuid": "4f1c2b9e-5d0a-4c1e-9d6f-0a1b2c3d4e5f"}


def example_of(schema: dict, components: dict, depth: int = 0) -> Any:
    """An example value built from a JSON Schema (field `example`s first), for the reference."""
    if depth > 20:
        return None
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return example_of(components.get(name, {}), components, depth + 1)
    if "example" in schema:
        return schema["example"]
    if "const" in schema:
        return schema["const"]
    for choice in ("oneOf", "anyOf"):
        if schema.get(choice):
            branch = example_of(schema[choice][0], components, depth + 1)
            rest = {key: value for key, value in schema.items() if key not in (choice, "discriminator")}
            base = example_of(rest, components, depth + 1) if "properties" in rest else None
            return {**base, **branch} if isinstance(base, dict) and isinstance(branch, dict) else branch
    if schema.get("allOf"):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            value = example_of(part, components, depth + 1)
            if isinstance(value, dict):
                merged.update(value)
        return merged
    if schema.get("enum"):
        return next((value for value in schema["enum"] if value is not None), None)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "object" or "properties" in schema:
        return {name: example_of(sub, components, depth + 1)
                for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [example_of(schema.get("items", {}), components, depth + 1)]
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return True
    if kind == "string":
        return _STRING_EXAMPLES.get(schema.get("format"), "string")
    return None
