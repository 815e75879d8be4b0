"""An HTML form drawn from an adapter's config schema (the JSON Schema of `GET /adapters`), and
the config read back from what the form posts. No Flask: a view hands it the posted fields.

Kinds of field, from the JSON Schema of each property:
- `text`: a string; `url` a string of format url; `choice` a string with an `enum` (a select);
- `integer` and `number`; `boolean` (a checkbox: unchecked is false);
- `lines`: an array of strings, one per line of a text area;
- `pairs`: an object of strings (`additionalProperties: {type: string}`), one `name: value`
  per line (request headers, a field mapping);
- `json`: any other object or array, as JSON text.

`required` fields are marked; `writeOnly` ones (credentials) are drawn as password inputs (or
an empty text area), never filled in with what is stored and never echoed back after a
refused post. Posted values are passed on as the person typed them, checked by the
adapter's own schema in `couponsvc.integration_admin`, so a form and the API refuse the
same config with the same messages; only what a form cannot say otherwise is converted here
(a number typed as text, a checkbox, lines).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..domain_error import say

PREFIX = "config."
KINDS = ("text", "url", "choice", "integer", "number", "boolean", "lines", "pairs", "json")
_INTEGER = re.compile(r"[+-]?\d{1,18}")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


@dataclass(frozen=True)
class FormField:
    name: str
    kind: str
    required: bool = False
    secret: bool = False  # writeOnly: a credential
    nullable: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    description: str = ""
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None

    @property
    def input_name(self) -> str:
        return PREFIX + self.name

    @property
    def multiline(self) -> bool:
        return self.kind in ("lines", "pairs", "json")


def form_fields(schema: Mapping[str, Any]) -> list[FormField]:
    """The fields of an object schema, in its order, required ones first."""
    required = set(schema.get("required") or ())
    found = [_field(name, prop, name in required) for name, prop in (schema.get("properties") or {}).items()]
    return sorted(found, key=lambda f: not f.required)


def _field(name: str, prop: Mapping[str, Any], required: bool) -> FormField:
    types = prop.get("type", "string")
    types = [types] if isinstance(types, str) else list(types)
    nullable = "null" in types
    main = next((t for t in types if t != "null"), "string")
    if "enum" in prop:
        kind = "choice"
    elif main == "string":
        kind = "url" if prop.get("format") in ("url", "uri") else "text"
    elif main in ("integer", "number", "boolean"):
        kind = main
    elif main == "array" and _of_strings(prop.get("items")):
        kind = "lines"
    elif main == "object" and _of_strings(prop.get("additionalProperties")) and not prop.get("properties"):
        kind = "pairs"
    else:
        kind = "json"
    return FormField(
        name=name, kind=kind, required=required, secret=bool(prop.get("writeOnly")), nullable=nullable,
        default=prop.get("default"), choices=tuple(str(c) for c in prop.get("enum") or () if c is not None),
        description=str(prop.get("description") or ""), minimum=prop.get("minimum"),
        maximum=prop.get("maximum"), max_length=prop.get("maxLength"))


def _of_strings(schema: Any) -> bool:
    return isinstance(schema, Mapping) and schema.get("type") == "string"


def shown(field: FormField, value: Any) -> str:
    """What the input shows for a stored (or posted) `value`: never a credential."""
    if field.secret or value is None:
        return ""
    if field.kind == "boolean":
        return "true" if value else ""
    if field.kind == "lines" and isinstance(value, list):
        return "\n".join(str(item) for item in value)
    if field.kind == "pairs" and isinstance(value, Mapping):
        return "\n".join(f"{key}: {item}" for key, item in value.items())
    if field.kind == "json" and not isinstance(value, str):
        return json.dumps(value, ensure_ascii=False, indent=1)
    return str(value)


def initial_values(fields: list[FormField], config: Mapping[str, Any] | None) -> dict[str, str]:
    """What each input shows: the stored config when editing, else the schema's defaults."""
    values = {}
    for f in fields:
        value = config.get(f.name) if config is not None else f.default
        values[f.name] = shown(f, value)
    return values


def posted_values(fields: list[FormField], form: Mapping[str, Any]) -> dict[str, str]:
    """What each input shows again after a refused post: what was typed, credentials blanked."""
    return {f.name: "" if f.secret else _text(form, f) for f in fields}


def read_config(fields: list[FormField], form: Mapping[str, Any], *,
                editing: bool) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The config a form posted, and the messages (by input name) of the fields that could
    not be read.

    An empty input is left out (the adapter's default applies, or, when editing, the stored
    value is kept) unless, when editing, it is an optional field that may be null and was
    emptied: then it is null. An empty credential always keeps what is stored.
    """
    config: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for f in fields:
        if f.kind == "boolean":
            config[f.name] = _text(form, f).strip().lower() in ("true", "on", "1", "yes")
            continue
        raw = _text(form, f)
        if not raw.strip():
            if editing and not f.secret and f.nullable and not f.required:
                config[f.name] = None
            continue
        try:
            config[f.name] = _value(f, raw)
        except ValueError as error:
            errors[f.input_name] = [error.args[0]]  # a `Sentence`, said in the page's language
    return config, errors


def _text(form: Mapping[str, Any], f: FormField) -> str:
    value = form.get(f.input_name, "")
    return value if isinstance(value, str) else ""


def _value(f: FormField, raw: str) -> Any:
    text = raw.strip()
    if f.kind == "integer":
        return int(text) if _INTEGER.fullmatch(text) else text  # the schema says what is wrong
    if f.kind == "number":
        return float(text) if _NUMBER.fullmatch(text) else text
    if f.kind == "lines":
        return [line.strip() for line in raw.splitlines() if line.strip()]
    if f.kind == "pairs":
        pairs = {}
        for number, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            name, colon, value = line.partition(":")
            if not colon or not name.strip():
                raise ValueError(say("Line %(number)d is not “name: value”.", number=number))
            pairs[name.strip()] = value.strip()
        return pairs
    if f.kind == "json":
        try:
            return json.loads(text)
        except ValueError:
            raise ValueError(say("Not valid JSON.")) from None
    return text  # surrounding spaces, often pasted with a token, are not part of it


def field_errors(errors: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """A refused config's messages by form input: `{"config": {name: [...]}}` from the domain
    becomes `{"config.<name>": [...]}`; other members (`events`, `timeout`, `_schema`) stay."""
    flat: dict[str, list[str]] = {}
    for name, messages in (errors or {}).items():
        if name == "config" and isinstance(messages, Mapping):
            for field, inner in messages.items():
                flat[PREFIX + str(field)] = _messages(inner)
        else:
            flat[str(name)] = _messages(messages)
    return flat


def _messages(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [f"{key}: {message}" for key, inner in value.items() for message in _messages(inner)]
    if isinstance(value, list | tuple):
        return [message for item in value for message in _messages(item)]
    return [str(value)]
