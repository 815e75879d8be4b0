"""The installed adapters: the built-ins, then every entry point in `couponsvc.adapters`.

A third-party adapter ships as its own distribution declaring, e.g.::

    [project.entry-points."couponsvc.adapters"]
    shopline = "couponsvc_shopline:ShoplineAdapter"

The entry point names an adapter instance or class (instantiated with no arguments);
its name must equal the adapter's `name`. One that fails to import, does not conform
to `Adapter`, or takes a name already registered (a built-in's above all) is logged
and skipped: a broken plugin never breaks delivery for the others. `load_adapters()`
reads the entry points on every call; callers keep the result for the process.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import Any

from apispec.ext.marshmallow import OpenAPIConverter
from marshmallow import Schema

from .adapter import EVENT_TYPES, Adapter, secret_fields
from .dingtalk import DingTalkAdapter
from .discourse import DiscourseAdapter
from .feishu import FeishuAdapter
from .mastodon import MastodonAdapter
from .odoo import OdooAdapter
from .webhook import WebhookAdapter
from .wecom import WeComAdapter
from .weibo import WeiboAdapter

GROUP = "couponsvc.adapters"
KINDS = ("erp", "social")

log = logging.getLogger(__name__)


def builtin_adapters() -> list[Adapter]:
    return [WebhookAdapter(), OdooAdapter(), WeComAdapter(), DingTalkAdapter(),
            MastodonAdapter(), DiscourseAdapter(), WeiboAdapter(), FeishuAdapter()]


def load_adapters() -> dict[str, Adapter]:
    """Every usable adapter by name, built-ins first."""
    adapters = {adapter.name: adapter for adapter in builtin_adapters()}
    for point in sorted(entry_points(group=GROUP), key=lambda p: (p.name, p.value)):
        try:
            loaded = point.load()
            adapter = loaded() if isinstance(loaded, type) else loaded
            problem = conformance_problem(adapter)
        except Exception:  # a plugin's import may fail in any way
            log.exception("adapter entry point %s = %s could not be loaded; skipped",
                          point.name, point.value)
            continue
        if problem is None and adapter.name != point.name:
            problem = f"its name is {adapter.name!r}, not the entry point's {point.name!r}"
        if problem is None and point.name in adapters:
            problem = f"the name {point.name!r} is already taken"
        if problem is not None:
            log.error("adapter entry point %s = %s skipped: %s", point.name, point.value,
                      problem)
            continue
        adapters[point.name] = adapter
    return adapters


def conformance_problem(adapter: Any) -> str | None:
    """Why `adapter` does not conform to `Adapter`, or None when it does."""
    if not isinstance(getattr(adapter, "name", None), str) or not adapter.name:
        return "it has no name"
    if getattr(adapter, "kind", None) not in KINDS:
        return f"its kind must be one of {KINDS}"
    events = getattr(adapter, "events", None)
    if not isinstance(events, frozenset) or "ping" not in events:
        return "its events must be a frozenset including 'ping'"
    if not events <= EVENT_TYPES:
        return f"it declares unknown events {sorted(events - EVENT_TYPES)}"
    schema = getattr(adapter, "config_schema", None)
    if not (isinstance(schema, type) and issubclass(schema, Schema)):
        return "its config_schema is not a marshmallow Schema class"
    if not callable(getattr(adapter, "deliver", None)):
        return "it has no deliver()"
    readable = sorted(name for name in secret_fields(schema)
                      if not schema._declared_fields[name].load_only)
    if readable:
        return f"its credentials {readable} must be load_only (declare them with credential())"
    return None


def describe(adapter: Adapter) -> dict[str, Any]:
    """What `GET /adapters` lists: name, kind, events and the config's JSON Schema."""
    converter = OpenAPIConverter(openapi_version="3.1.0", spec=None,
                                 schema_name_resolver=lambda schema: None)
    return {"name": adapter.name, "kind": adapter.kind, "events": sorted(adapter.events),
            "config_schema": converter.schema2jsonschema(adapter.config_schema)}
