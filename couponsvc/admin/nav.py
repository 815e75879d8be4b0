"""The admin's top navigation, and the template helpers."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, request
from flask_babel import gettext as _
from flask_wtf.csrf import generate_csrf

from .. import i18n

# (path, label): in the order shown.
PAGES: tuple[tuple[str, Callable[[], str]], ...] = (
    ("/admin", lambda: _("Dashboard")),
    ("/admin/campaigns", lambda: _("Campaigns")),
    ("/admin/coupons", lambda: _("Coupons")),
    ("/admin/integrations", lambda: _("Integrations")),
    ("/admin/merchants", lambda: _("Merchants")),
    ("/admin/users", lambda: _("Users")),
    ("/admin/audit", lambda: _("Audit log")),
)


def init_app(app: Flask) -> None:
    app.context_processor(_helpers)


def nav() -> list[dict]:
    here = request.path.rstrip("/")
    return [{"url": path + ("/" if path == "/admin" else ""), "label": label(),
             "active": here == path or (path != "/admin" and here.startswith(f"{path}/"))}
            for path, label in PAGES]


def _helpers() -> dict:
    return {"admin_nav": nav, "csrf_token": generate_csrf, "page_language": i18n.language}
