"""`/`: where a person who opens the service's address is sent on: the admin's sign-in,
the scanner page for the till, the API documentation; and the language switch."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, redirect, render_template, request

from .. import i18n

landing = Blueprint("landing", __name__)

LANGUAGE_COOKIE_AGE = 365 * 86400


@landing.get("/")
def index():
    return render_template("landing.html")


@landing.get("/language/<code>")
def language(code: str):
    """The language switch: remember the choice in the `lang` cookie and go back."""
    target = request.args.get("next") or "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") \
            or "\\" in target:
        target = "/"
    response = redirect(target)
    if code in i18n.LANGUAGES:
        response.set_cookie(i18n.LANGUAGE_COOKIE, code, max_age=LANGUAGE_COOKIE_AGE,
                            samesite="Lax", httponly=True)
    return response
