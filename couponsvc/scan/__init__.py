"""The till's scanner page, `/scan`: an installable web app for the staff's phones.

The page signs in with a scanner key, scans coupons with the camera (or takes a typed
code), redeems them through the JSON API, and verifies signed QR codes on the device when
the network is gone, queueing them for `POST /api/v1/redemptions/batch` (docs/scanner.md).
Everything it does goes through the API with the key; these views only serve the page,
its web manifest and its service worker. No form is posted here, so no CSRF token is needed.
"""

from __future__ import annotations

from flask import Blueprint, Flask

scan = Blueprint("scan", __name__, url_prefix="/scan")

from . import app_shell, page  # noqa: E402,F401  (their routes register on `scan`)


def init_app(app: Flask) -> None:
    app.register_blueprint(scan)
