"""What makes `/scan` an installable app that opens offline: its web manifest and its
service worker, which keeps the page and every file it needs (the decoder's WebAssembly
included) in the browser's cache.

The worker's text names each file by its versioned URL (`?v=<content hash>` or the
vendored version), so a changed file changes the worker, which the browser then installs
afresh, dropping the old cache. It answers the page network first (a 3-second wait on a
poor network, then the cached copy) and the files from the cache; it never touches the
API (`/api/`), whose answers must not be stale.
"""

from __future__ import annotations

import hashlib
import json

from flask import Response, render_template, url_for
from flask_babel import gettext as _

from ..static_assets import static_url, vendor_url
from . import scan
from .page import DECODER, DECODER_WASM, NOBLE, SCRIPTS, STYLE

ICONS = (("scan/icon-192.png", "192x192"), ("scan/icon-512.png", "512x512"))
NO_CACHE = "no-cache"


def cached_files() -> list[str]:
    """Every URL the page needs to open and scan with no network."""
    return [url_for("scan.page"), url_for("scan.manifest"),
            *(static_url(name) for name in (*SCRIPTS, STYLE)),
            *(static_url(name) for name, _size in ICONS),
            vendor_url(*DECODER), vendor_url(*DECODER_WASM), vendor_url(*NOBLE)]


@scan.get("/manifest.webmanifest")
def manifest():
    body = {
        "name": _("Coupon scanner"),
        "short_name": _("Scanner"),
        "description": _("Scan and redeem coupons at the till, online or offline."),
        "start_url": url_for("scan.page"),
        "scope": url_for("scan.page"),
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#ffffff",
        "theme_color": "#0b7a3e",
        "icons": [{"src": static_url(name), "sizes": size, "type": "image/png", "purpose": "any"}
                  for name, size in ICONS],
    }
    response = Response(json.dumps(body, ensure_ascii=False), mimetype="application/manifest+json")
    response.headers["Cache-Control"] = NO_CACHE
    return response


@scan.get("/sw.js")
def service_worker():
    files = cached_files()
    version = hashlib.sha256("\n".join(files).encode()).hexdigest()[:16]
    text = render_template("scan/sw.js", files=files, version=version, page=url_for("scan.page"))
    response = Response(text, mimetype="text/javascript")
    response.headers["Cache-Control"] = NO_CACHE
    # The worker lives under /scan/ but controls /scan itself too.
    response.headers["Service-Worker-Allowed"] = url_for("scan.page")
    return response
