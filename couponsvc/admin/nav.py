"""The admin's top navigation: a link for each page that exists (a page module being
written is left out until its route is registered), and the template helpers."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, current_app, g, request
from flask_babel import gettext as _
from flask_wtf.csrf import generate_csrf

from .. import i18n

# (path, label, for operators only): in the order shown.
PAGES: tuple[tuple[str, Callable[[], str], bool], ...] = (
    ("/admin/dashboard", lambda: _("Dashboard"), False),
    ("/admin", lambda: _("Dashboard"), False),
    ("/admin/campaigns", lambda: _("Campaigns"), False),
    ("/admin/coupons", lambda: _("Coupons"), False),
    ("/admin/integrations", lambda: _("Integrations"), False),
    ("/admin/merchants", lambda: _("Merchants"), False),
    ("/admin/users", lambda: _("Users"), False),
    ("/admin/audit", lambda: _("Audit log"), False),
)


def init_app(app: Flask) -> None:
    app.context_processor(_helpers)


def _routes() -> set[str]:
    cached = current_app.extensions.get("couponsvc.admin_routes")
    if cached is None:
        cached = {rule.rule.rstrip("/") or "/" for rule in current_app.url_map.iter_rules()
                  if "GET" in (rule.methods or ()) and rule.rule.startswith("/admin")
                  and rule.endpoint != "admin.home"}
        current_app.extensions["couponsvc.admin_routes"] = cached
    return cached


def nav() -> list[dict]:
    routes = _routes()
    operator = g.get("principal") is not None and g.principal.role == "platform"
    here = request.path.rstrip("/")
    items: list[dict] = []
    for path, label, operators in PAGES:
        if path not in routes or (operators and not operator):
            continue
        if items and items[-1]["label"] == label():  # the dashboard at either path
            continue
        active = here == path or (path != "/admin" and here.startswith(f"{path}/"))
        items.append({"url": path + ("/" if path == "/admin" else ""), "label": label(),
                      "active": active})
    return items


def _helpers() -> dict:
    return {"admin_nav": nav, "csrf_token": generate_csrf, "page_language": i18n.language}
