"""The admin pages (`/admin`): server-rendered pages for operators and merchant managers.

Each page module registers its views on the one `admin` blueprint; every view but the
sign-in page is `@signed_in` (`guard.py`) and calls the same domain functions as the API
with `g.principal`. `init_app` registers the blueprint, the landing page `/`, CSRF
protection of every form outside the JSON API, the session cookie's flags and the
template helpers.
"""

from __future__ import annotations

from flask import Blueprint, Flask

admin = Blueprint("admin", __name__, url_prefix="/admin")

from . import (  # noqa: E402,F401  (their routes register on `admin`)
    audit_pages,
    auth,
    campaigns,
    coupons,
    dashboard,
    integrations,
    merchants,
    people_pages,
)


def init_app(app: Flask) -> None:
    from . import errors, formatting, guard, landing, nav

    secure = str(app.config.get("PUBLIC_URL") or "").startswith("https://")
    # The cookie session of the pages (the CSRF token, flash messages); the admin's own
    # cookie (guard.COOKIE) gets the same flags where it is set.
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=secure, SESSION_COOKIE_NAME="couponsvc_page")
    guard.init_app(app)
    formatting.init_app(app)
    nav.init_app(app)
    errors.init_app(app)
    app.register_blueprint(admin)
    app.register_blueprint(landing.landing)
