"""A refused form's messages by field, in the page's language: from marshmallow (the API's
schemas) or from a domain refusal (`validation_error` with its `errors`, or any other code,
told for the whole form under `_schema`)."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError

from ..domain_error import DomainError
from ..i18n import translate


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
        return translate(messages)
    if isinstance(messages, dict):
        return {name: translated(value) for name, value in messages.items()}
    if isinstance(messages, list | tuple):
        return [translated(value) for value in messages]
    return messages
