"""The events in the OpenAPI document: a `webhooks` entry per event type (OpenAPI 3.1)
and `GET /events` rows told apart by `type`, both from `schemas/events.py`'s `EVENT_DATA`.

The data schemas are components (`<Name>Data`); for each type, `<Type>Event` is an
events-feed row of that type and `<Type>Webhook` the body a receiver gets. The
Standard Webhooks headers are documented as parameters of every entry.
"""

from __future__ import annotations

from typing import Any

from apispec import APISpec

from .schemas.events import EVENT_DATA, EVENT_DESCRIPTIONS

HEADERS = [
    {"in": "header", "name": "webhook-id", "required": True, "schema": {"type": "string"},
     "description": "The event id, the same on every retry: deduplicate by it."},
    {"in": "header", "name": "webhook-timestamp", "required": True, "schema": {"type": "string"},
     "description": "Unix seconds of this attempt; refuse one far from your clock."},
    {"in": "header", "name": "webhook-signature", "required": True, "schema": {"type": "string"},
     "description": "`v1,<base64 HMAC-SHA256>` over `<webhook-id>.<webhook-timestamp>.<body>`, "
                    "keyed with the bytes of the base64 after `whsec_` in the integration's "
                    "secret (any Standard Webhooks library verifies it)."},
    {"in": "header", "name": "webhook-cursor", "required": True, "schema": {"type": "string"},
     "description": "Pass as `GET /events?after=` to catch up on what came after this event "
                    "(store it with the last event you handled)."},
]


def component_name(event_type: str) -> str:
    """`coupon.redemption_reversed` -> `CouponRedemptionReversed`."""
    return "".join(word.capitalize() for word in event_type.replace(".", "_").split("_"))


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _data_schema(spec: APISpec, event_type: str) -> dict[str, Any]:
    refs = []
    for schema in EVENT_DATA[event_type]:
        name = schema.__name__
        if name not in spec.components.schemas:
            spec.components.schema(name, schema=schema)
        refs.append(_ref(name))
    return refs[0] if len(refs) == 1 else {"oneOf": refs}


def document_events(spec: APISpec) -> None:
    """Add the `webhooks` section, and type the `data` of `GET /events` rows (`EventOut`)."""
    webhooks: dict[str, Any] = {}
    rows: dict[str, str] = {}
    for event_type in EVENT_DATA:
        name = component_name(event_type)
        data = _data_schema(spec, event_type)
        kind = {"type": "string", "const": event_type}
        if f"{name}Event" not in spec.components.schemas:
            spec.components.schema(f"{name}Event", {
                "type": "object", "description": EVENT_DESCRIPTIONS[event_type],
                "properties": {"type": kind, "data": data}, "required": ["type", "data"]})
            spec.components.schema(f"{name}Webhook", {
                "type": "object", "description": EVENT_DESCRIPTIONS[event_type],
                "properties": {"type": kind, "timestamp": {"type": "string", "format": "date-time",
                                                           "description": "when the event happened (UTC)"},
                               "data": data},
                "required": ["type", "timestamp", "data"], "additionalProperties": False})
        rows[event_type] = f"#/components/schemas/{name}Event"
        webhooks[event_type] = {"post": {
            "summary": event_type, "description": EVENT_DESCRIPTIONS[event_type],
            "tags": ["webhooks"], "security": [], "parameters": HEADERS,
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": _ref(f"{name}Webhook")}}},
            "responses": {
                "2XX": {"description": "Received. Anything else (or no answer in time) is retried "
                                       "with backoff for at least 24 hours, with the same webhook-id."},
                "410": {"description": "Gone: the integration is disabled; its deliveries are held."},
            },
        }}
    spec.options["webhooks"] = webhooks
    row = spec.components.schemas.get("EventOut")
    if row is not None:
        row["properties"]["type"] = {"type": "string", "enum": list(EVENT_DATA)}
        row["properties"]["data"] = {"type": "object", "description": "its schema depends on `type`"}
        row["oneOf"] = [{"$ref": ref} for ref in rows.values()]
        row["discriminator"] = {"propertyName": "type", "mapping": rows}
