"""The scanner page itself: the HTML, its words for the JavaScript, and its settings."""

from __future__ import annotations

from flask import redirect, render_template, url_for

from .. import i18n
from ..static_assets import static_url, vendor_url
from . import scan
from .strings import page_strings

# The page's own scripts, in the order they load (each defines one global).
SCRIPTS = ("scan/codes.js", "scan/qr.js", "scan/store.js", "scan/till.js", "scan/camera.js",
           "scan/app.js")
STYLE = "scan/scan.css"
DECODER = ("zxing-wasm", "iife/reader/index.js")
DECODER_WASM = ("zxing-wasm", "reader/zxing_reader.wasm")
NOBLE = ("@noble/ed25519", "index.js")


def settings() -> dict:
    """What the JavaScript needs to know: where the API, the decoder and the fallback
    Ed25519 are, and the page's language (the API then answers in it too)."""
    return {
        "api": "/api/v1",
        "language": i18n.language(),
        "decoder": vendor_url(*DECODER),
        "wasm": vendor_url(*DECODER_WASM),
        "noble": vendor_url(*NOBLE),
        "serviceWorker": url_for("scan.service_worker"),
        "scope": url_for("scan.page"),
    }


@scan.get("/", endpoint="page_slash")
def page_slash():
    return redirect(url_for("scan.page"))


@scan.get("")
def page():
    return render_template("scan/page.html", strings=page_strings(), settings=settings(),
                           scripts=[static_url(name) for name in SCRIPTS],
                           decoder=vendor_url(*DECODER), style=static_url(STYLE),
                           language=i18n.language())
