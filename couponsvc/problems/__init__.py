"""Problem pages: every problem `type` URL resolves to a page about its code.

A problem+json answer's `type` is `<COUPONSVC_PUBLIC_URL>/problems/<code>` (`type_url`);
`GET /problems/<code>` says what the code means, its HTTP status and what a client
should do, and `GET /problems/` lists every code: both generated from `CODES` and
`GUIDANCE` (`domain_error.py`). HTML for people; JSON when `Accept` prefers it. In
English, or in Chinese when `Accept-Language` asks for it (the API's rule). An unknown
code is a `404 not_found` problem.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, render_template, request
from markupsafe import Markup, escape

from ..domain_error import CODES, GUIDANCE, DomainError
from ..i18n import language, translate
from ..public_url import base_url

PAGE_PATH = "/problems/"
problems = Blueprint("problems", __name__, url_prefix=PAGE_PATH.rstrip("/"))


def type_url(code: str) -> str:
    """The `type` of a problem with this code: its page under the public URL."""
    return f"{base_url()}{PAGE_PATH}{code}"


def describe(code: str) -> dict[str, Any]:
    """A code's entry, its words in the request's language (English unless `Accept-Language`
    asks for Chinese, as every API answer)."""
    status, title = CODES[code]
    meaning, advice = GUIDANCE[code]
    return {"code": code, "status": status, "title": translate(title), "meaning": translate(meaning),
            "advice": translate(advice), "type": type_url(code)}


@problems.context_processor
def _language() -> dict[str, str]:
    return {"language": language()}  # <html lang>


@problems.app_template_filter("code_spans")
def code_spans(text: str) -> Markup:
    """Escaped text with its `backticked` words set as <code>."""
    parts = str(escape(text)).split("`")
    return Markup("".join(f"<code>{part}</code>" if i % 2 else part for i, part in enumerate(parts)))


def _wants_json() -> bool:
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"


@problems.get("/")
def index():
    entries = [describe(code) for code in CODES]
    if _wants_json():
        return jsonify(data=entries)
    return render_template("problems/index.html", entries=entries)


@problems.get("/<code>")
def page(code: str):
    if code not in CODES:
        raise DomainError("not_found", "No problem type has this code; /problems/ lists them all")
    entry = describe(code)
    if _wants_json():
        return jsonify(entry)
    return render_template("problems/code.html", entry=entry)
