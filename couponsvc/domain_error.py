"""The one domain error type and its stable reason codes, declared once; no Flask.

Domain functions raise `DomainError(code, detail)`; `errors.py` renders it as
problem+json. A code names its HTTP status here so that the API documentation and
the renderer read one table. Tests assert `code`, never the text.
"""

from __future__ import annotations

from typing import Any


def N_(title: str) -> str:
    """Marks a title for the translation catalogue (`pybabel extract`); returns it unchanged.
    `errors.py` translates it when an answer is rendered."""
    return title


class Sentence(str):
    """A detail for people: its English text, plus what `errors.py` needs to say it in the
    caller's language from the gettext catalogue (`couponsvc/translations/`). Being a `str`,
    it goes wherever a detail went before (logs, the CLI)."""

    msgid: str
    plural: str | None
    n: int | None
    params: dict[str, Any]

    def __new__(cls, msgid: str, plural: str | None = None, n: int | None = None,
                **params: Any) -> Sentence:
        values = {"num": n, **params} if plural is not None else params
        english = (msgid if plural is None or n == 1 else plural) % values
        self = super().__new__(cls, english)
        self.msgid, self.plural, self.n, self.params = msgid, plural, n, params
        return self


def say(msgid: str, **params: Any) -> Sentence:
    """A detail in English with `%(name)s` placeholders, translated when rendered."""
    return Sentence(msgid, **params)


def say_n(singular: str, plural: str, n: int, **params: Any) -> Sentence:
    """A detail whose wording depends on the number `n` (`%(num)d`): gettext's ngettext."""
    return Sentence(singular, plural, n, **params)


# code -> (HTTP status, title). Declared once; the API documentation lists them.
# Titles are English; `N_` marks them for the catalogue, which says them in Chinese too.
CODES: dict[str, tuple[int, str]] = {
    "validation_error": (422, N_("The request body or query is not valid")),
    "malformed_json": (400, N_("The request body is not valid JSON")),
    "bad_request": (400, N_("Bad request")),
    "unauthenticated": (401, N_("Missing or invalid API key")),
    "forbidden": (403, N_("This key may not do that")),
    "not_found": (404, N_("Not found")),
    "method_not_allowed": (405, N_("Method not allowed")),
    "unsupported_media_type": (415, N_("Send JSON with Content-Type: application/json")),
    "payload_too_large": (413, N_("Request body too large")),
    "conflict": (409, N_("Conflict")),
    "invalid_state": (409, N_("The object is not in a state that allows this")),
    "idempotency_key_reused": (409, N_("Idempotency-Key was used with another request")),
    "idempotency_key_in_use": (409, N_("A request with this Idempotency-Key is still running")),
    "rate_limited": (429, N_("Too many failed look-ups")),
    "internal_error": (500, N_("Internal error")),
    # Orders
    "sold_out": (409, N_("The deal is sold out")),
    "insufficient_stock": (409, N_("Fewer coupons are left than asked")),
    "customer_limit_reached": (409, N_("This customer has bought the most allowed")),
    "campaign_not_on_sale": (422, N_("The deal is not on sale")),
    # Coupons and redemption
    "coupon_not_found": (404, N_("No such coupon")),
    "invalid_code": (400, N_("The code is mistyped (its check character does not match)")),
    "invalid_qr": (400, N_("The QR code is not a valid couponsvc QR")),
    "coupon_already_redeemed": (409, N_("The coupon has already been used")),
    "coupon_pending": (422, N_("The deal has not tipped yet")),
    "coupon_voided": (422, N_("The coupon was voided")),
    "coupon_expired": (422, N_("The coupon has expired")),
    "coupon_not_yet_valid": (422, N_("The coupon is not valid yet")),
    "store_not_allowed": (422, N_("The coupon is not honoured at this store")),
    "insufficient_uses": (422, N_("The coupon has fewer uses left than asked")),
    "redemption_not_found": (404, N_("No such redemption")),
    "redemption_already_reversed": (409, N_("The redemption was already reversed")),
    "reversal_window_closed": (409, N_("The reversal window has closed")),
    # Offline scans uploaded in a batch (the reasons of its items)
    "scanned_in_future": (422, N_("The scan time is in the future")),
    "offline_conflict": (409, N_("The coupon was used or voided before this offline scan was uploaded")),
    # Integrations
    "too_many_integrations": (409, N_("The merchant has as many integrations as allowed")),
    # Promotion
    "poster_font_missing": (503, N_("No font that draws Chinese is installed for the poster")),
}


# code -> (what it means, what a client should do): the page `/problems/<code>` (the
# problem's `type`) says both. Every code of `CODES` has its entry (tests/test_problem_pages.py).
GUIDANCE: dict[str, tuple[str, str]] = {
    "validation_error": (
        N_("A field of the body or the query is missing, of the wrong type or out of range. "
           "The `errors` member names each field with its messages."),
        N_("Correct the fields named in `errors` and send the request again.")),
    "malformed_json": (
        N_("The body could not be parsed as JSON."),
        N_("Send a valid JSON document (UTF-8) with Content-Type: application/json.")),
    "bad_request": (
        N_("The request cannot be understood as sent (a header or a parameter is malformed)."),
        N_("Read `detail`, correct the request and send it again; do not retry it unchanged.")),
    "unauthenticated": (
        N_("No API key was sent, or the key is unknown or revoked."),
        N_("Send `Authorization: Bearer <key>` with a valid key; ask a manager for a new key if "
           "yours was revoked.")),
    "forbidden": (
        N_("The key is valid but its role or its merchant may not do this."),
        N_("Use a key of a role that may (the operation's description lists them), or of the "
           "object's merchant. Retrying with the same key will not help.")),
    "not_found": (
        N_("No such object, or it belongs to another merchant."),
        N_("Check the id in the path. Do not retry unchanged.")),
    "method_not_allowed": (
        N_("This path does not take this HTTP method."),
        N_("Use a method named in the `Allow` header.")),
    "unsupported_media_type": (
        N_("The body is not JSON."),
        N_("Send the body as JSON with Content-Type: application/json.")),
    "payload_too_large": (
        N_("The body is larger than the service accepts."),
        N_("Send a smaller body (split a batch into several requests).")),
    "conflict": (
        N_("The request conflicts with the current state of the object."),
        N_("Fetch the object again, then decide whether to send the request again.")),
    "invalid_state": (
        N_("The object's status does not allow this action (for example publishing a cancelled deal)."),
        N_("Fetch the object and check its `status`; `detail` says which states allow the action.")),
    "idempotency_key_reused": (
        N_("This Idempotency-Key was already used with another request body."),
        N_("Use a new key for a new request; reuse a key only to repeat exactly the same request.")),
    "idempotency_key_in_use": (
        N_("A request with this Idempotency-Key is still being processed."),
        N_("Wait a moment and send the same request again with the same key: it will answer "
           "what the first one did.")),
    "rate_limited": (
        N_("Too many failed look-ups (unknown codes) from this key or address in a short time."),
        N_("Wait the seconds in `Retry-After` before trying again; check the codes you send.")),
    "internal_error": (
        N_("Something went wrong on the service's side; it has been logged."),
        N_("Retry later with the same Idempotency-Key; if it persists, tell the operator the time "
           "of the request.")),
    "sold_out": (
        N_("The deal has no coupons left."),
        N_("Tell the buyer the deal is sold out; do not retry.")),
    "insufficient_stock": (
        N_("Fewer coupons are left than the order asked for; `remaining` says how many."),
        N_("Offer the buyer at most `remaining` coupons and place the order again.")),
    "customer_limit_reached": (
        N_("This customer would have more coupons of the deal than its per-customer limit; "
           "`bought` and `limit` say how many."),
        N_("Offer at most `limit` minus `bought` coupons, or none.")),
    "campaign_not_on_sale": (
        N_("The deal is not on sale now (not published yet, paused, or its sales have ended)."),
        N_("Do not offer the deal; `detail` says why it is not on sale.")),
    "coupon_not_found": (
        N_("No coupon has this code (or it belongs to another merchant)."),
        N_("Check the code with the customer; a till should scan again rather than retype.")),
    "invalid_code": (
        N_("The code is mistyped: its check character does not match."),
        N_("Ask for the code again and retype it; nothing was looked up.")),
    "invalid_qr": (
        N_("The scanned QR code is not a couponsvc coupon QR, or its signature does not verify."),
        N_("Scan again, or type the code printed under the QR.")),
    "coupon_already_redeemed": (
        N_("The coupon has no uses left: it was used already (`redeemed_at` and the store say "
           "when and where)."),
        N_("Do not hand over the goods; show the customer when and where the coupon was used.")),
    "coupon_pending": (
        N_("The deal has not reached its group threshold yet, so its coupons are not valid yet."),
        N_("Tell the customer the deal has not tipped yet; the coupon becomes valid if it does.")),
    "coupon_voided": (
        N_("The coupon was voided (its deal was cancelled or failed, or a manager voided it)."),
        N_("Do not accept it; the customer's order is refunded or being refunded.")),
    "coupon_expired": (
        N_("The coupon's validity period has ended."),
        N_("Do not accept it.")),
    "coupon_not_yet_valid": (
        N_("The coupon's validity period has not started yet."),
        N_("Ask the customer to come back from the date the coupon is valid.")),
    "store_not_allowed": (
        N_("The coupon's deal is not honoured at this store."),
        N_("Tell the customer which stores honour the deal.")),
    "insufficient_uses": (
        N_("The coupon has fewer uses left than asked for; `uses_left` says how many."),
        N_("Redeem at most `uses_left` uses.")),
    "redemption_not_found": (
        N_("No redemption has this id (or it belongs to another merchant)."),
        N_("Check the redemption id.")),
    "redemption_already_reversed": (
        N_("This redemption was reversed already; its uses are back on the coupon."),
        N_("Nothing to do: do not reverse it again.")),
    "reversal_window_closed": (
        N_("A redemption can be reversed only for a while after it was made; that time has passed."),
        N_("Ask a manager to handle it another way (for example a refund outside couponsvc).")),
    "scanned_in_future": (
        N_("An offline scan says it was made later than the service's clock, by more than the clock "
           "skew allowed (5 minutes): the device's clock is wrong."),
        N_("Set the device's clock right (automatic time); the scan is not redeemed. Redeem the coupon "
           "online if the customer is still there.")),
    "offline_conflict": (
        N_("A scan made offline reached the service after the coupon had been used elsewhere (or voided, "
           "after the scan): the goods were handed over twice, or for a coupon being refunded. The scan "
           "is recorded as a redemption attempt with its store, device and scan time."),
        N_("Nothing to retry. A manager settles it: `GET /redemption-attempts?reason=offline_conflict` "
           "lists these scans beside the redemption that came first.")),
    "too_many_integrations": (
        N_("The merchant already has as many integrations as allowed."),
        N_("Delete or reuse an existing integration before adding another.")),
    "poster_font_missing": (
        N_("The service found no font that draws Chinese, so it cannot draw the share poster (it "
           "would show empty boxes instead of characters)."),
        N_("Ask the operator to install a CJK font (Debian: `apt-get install fonts-noto-cjk`) or to "
           "name one in COUPONSVC_POSTER_FONT, then restart the service.")),
}


class DomainError(Exception):
    """A refusal with a stable machine code from `CODES`."""

    def __init__(self, code: str, detail: str | None = None, **extra: Any) -> None:
        if code not in CODES:
            raise ValueError(f"unknown error code {code!r}")
        self.code = code
        self.status, self.title = CODES[code]
        self.detail = detail or self.title
        self.extra = extra
        super().__init__(f"{code}: {self.detail}")
