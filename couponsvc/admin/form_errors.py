"""A refused form's messages by field, in the page's language: from marshmallow (the API's
schemas) or from a domain refusal (`validation_error` with its `errors`, or any other code,
told for the whole form under `_schema`)."""

from __future__ import annotations

import re
from typing import Any

from marshmallow import ValidationError

from ..domain_error import N_, DomainError, say
from ..i18n import translate

# What the API's schemas, the adapters' schemas and the domain say about the fields of the
# merchant, store, key and integration forms, marked here for the catalogue (they are not
# marked where they are written: marshmallow's own messages, the adapters').
SAID_ELSEWHERE = (
    N_("Missing data for required field."), N_("Not a valid URL."), N_("Not a valid integer."),
    N_("Not a valid number."), N_("Not a valid string."), N_("Not a valid boolean."), N_("Unknown field."),
    N_("Field may not be null."), N_("Unknown IANA time zone."), N_("Shorter than minimum length 1."),
    N_("Length must be between 1 and 200."), N_("Length must be between 1 and 100."),
    N_("Longer than maximum length 100."), N_("Longer than maximum length 200."),
    N_("Longer than maximum length 500."),
    N_("Must be greater than or equal to 0 and less than or equal to 86400."),
    N_("Must be one of: manager, scanner."), N_("Only scanner keys can be pinned to a store."),
    N_("No such store for this merchant."), N_("Must be more than 0 and at most 60.0."),
    N_("Must be one of: en, zh."), N_("Must be one of: public, unlisted, private."),
    N_("String does not match expected pattern."), N_("must be whsec_ followed by base64"),
    N_("must be whsec_ and base64 of 24 to 64 bytes"),
    N_("Contains a character that cannot be stored (NUL or a lone surrogate)."),
)

# Messages with a value in them, said again with the value kept apart (the SSRF guard's,
# the operator's ceiling on reversal windows).
_PATTERNS = (
    (re.compile(r"(?P<host>\S+) resolves to (?P<address>\S+), a loopback, private or reserved address;.*", re.S),
     lambda m: say("%(host)s is at %(address)s, a loopback, private or reserved address: events are not sent "
                   "there.", host=m["host"], address=m["address"])),
    (re.compile(r"only http and https targets are allowed, not '(?P<scheme>[^']*)'"),
     lambda m: say("Only http and https addresses are allowed, not %(scheme)s.", scheme=m["scheme"])),
    (re.compile(r"the target URL has no host"), lambda m: say("The address has no host.")),
    (re.compile(r"Must be at most (?P<num>\d+)\."), lambda m: say("Must be at most %(num)s.", num=m["num"])),
    (re.compile(r"header '(?P<name>[^']*)' may not be set"),
     lambda m: say("The header %(name)s may not be set.", name=m["name"])),
)


def form_errors(error: ValidationError | DomainError) -> dict[str, Any]:
    if isinstance(error, ValidationError):
        messages = error.messages if isinstance(error.messages, dict) else {"_schema": error.messages}
    elif error.code == "validation_error" and error.extra.get("errors"):
        messages = error.extra["errors"]
    else:
        messages = {"_schema": [error.detail or error.title]}
    return translated(messages)


def translated(messages: Any) -> Any:
    """Each message said in the page's language where the catalogue has it."""
    if isinstance(messages, str):
        return translate(_with_values(messages))
    if isinstance(messages, dict):
        return {name: translated(value) for name, value in messages.items()}
    if isinstance(messages, list | tuple):
        return [translated(value) for value in messages]
    return messages


def _with_values(message: str) -> str:
    if getattr(message, "msgid", None) is not None:  # a `Sentence` already
        return message
    for pattern, sentence in _PATTERNS:
        found = pattern.fullmatch(message)
        if found:
            return sentence(found)
    return message
