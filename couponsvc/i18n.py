"""Languages: the one gettext catalogue (`couponsvc/translations/`) for the API's answers
and the pages, through Flask-Babel.

The API answers in English unless the caller asks for Chinese with `Accept-Language`
(`zh`, `zh-CN`, ...): API clients expect English when they send nothing. `say` and
`say_n` (`domain_error.py`) keep a domain detail's words and numbers apart so that it
is translated here, when the answer is rendered, not in the domain.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from flask import Flask, Response, has_request_context, request
from flask_babel import Babel, get_locale, gettext, ngettext
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from .domain_error import Sentence

LANGUAGES = ("en", "zh")
DEFAULT_LANGUAGE = "en"
TRANSLATIONS = Path(__file__).with_name("translations")

babel = Babel()


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS))
    babel.init_app(app, locale_selector=select_language)
    app.after_request(_say_language)


PAGE_LANGUAGE = "zh"
LANGUAGE_COOKIE = "lang"
PAGE_PREFIXES = ("/admin", "/scan", "/d", "/embed")


def is_page(path: str) -> bool:
    """A page for people (the admin, the scanner, the landing page), not the JSON API."""
    return path == "/" or any(path == p or path.startswith(f"{p}/") for p in PAGE_PREFIXES)


def select_language() -> str:
    """The API: the best of `LANGUAGES` for `Accept-Language`, else English. Pages for
    people: the `lang` cookie (the language switch), else `Accept-Language`, else Chinese."""
    if not has_request_context():
        return DEFAULT_LANGUAGE
    if is_page(request.path):
        chosen = request.cookies.get(LANGUAGE_COOKIE)
        if chosen in LANGUAGES:
            return chosen
        return _accepted() or PAGE_LANGUAGE
    return _accepted() or DEFAULT_LANGUAGE


def _accepted() -> str | None:
    return _accepted_in(request.headers.get("Accept-Language", ""))


@lru_cache(maxsize=512)
def _accepted_in(header: str) -> str | None:
    """By the caller's order of preference, matching the primary subtag (zh-Hans-CN is zh),
    which werkzeug's best_match does only after every exact match (so en;q=0.1 won).
    Remembered by the header's text: a till sends the same one all day."""
    for value, quality in parse_accept_header(header, LanguageAccept):
        primary = value.split("-")[0].split("_")[0].lower()
        if quality > 0 and primary in LANGUAGES:
            return primary
    return None


def language() -> str:
    """The language answers are given in now: for `Content-Language`."""
    locale = get_locale()
    return locale.language if locale is not None else DEFAULT_LANGUAGE


def _say_language(response: Response) -> Response:
    """Every answer names the language its words are in (problems set it themselves).

    `select_language()` is what `get_locale()` would parse into a Locale (for every
    answer, without building one); the Vary header is written as text unless it has one.
    """
    headers = response.headers
    if "Content-Language" not in headers:
        headers["Content-Language"] = select_language()
    vary = ("Accept-Language", "Cookie") if has_request_context() and is_page(request.path) else (
        "Accept-Language",)  # Cookie: the language switch
    if "Vary" in headers:
        response.vary.update(vary)
    else:
        headers["Vary"] = ", ".join(vary)
    return response


def translate(text: str | None) -> str | None:
    """A title or detail in the request's language. A `Sentence` is looked up by its
    message id and filled in; a plain string is looked up as it is (a title), and comes
    back unchanged when the catalogue does not have it."""
    if text is None:
        return None
    if isinstance(text, Sentence):
        if text.plural is not None:
            return ngettext(text.msgid, text.plural, text.n, **text.params)
        return gettext(text.msgid, **text.params)
    return gettext(text) if text else text
