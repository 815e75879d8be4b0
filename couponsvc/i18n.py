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
    return path in _PAGE_PATHS or path.startswith(_PAGE_STARTS)


_PAGE_PATHS = frozenset(("/", *PAGE_PREFIXES))
_PAGE_STARTS = tuple(f"{prefix}/" for prefix in PAGE_PREFIXES)


def select_language() -> str:
    """The API: the best of `LANGUAGES` for `Accept-Language`, else English. Pages for
    people: the `lang` cookie (the language switch), else `Accept-Language`, else Chinese."""
    if not has_request_context():
        return DEFAULT_LANGUAGE
    return _language(is_page(request.path))


def _language(page: bool) -> str:
    if page:
        chosen = request.cookies.get(LANGUAGE_COOKIE)
        if chosen in LANGUAGES:
            return chosen
        return _accepted() or PAGE_LANGUAGE
    return api_language(request.environ)


def api_language(environ: dict) -> str:
    """The language of the API's answer to the request of this WSGI environ."""
    return _accepted_in(environ.get("HTTP_ACCEPT_LANGUAGE", "")) or DEFAULT_LANGUAGE


def _accepted() -> str | None:
    return _accepted_in(request.environ.get("HTTP_ACCEPT_LANGUAGE", ""))


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

    What `get_locale()` would parse into a Locale, without building one (for every
    answer); the request's path is looked at once, the Vary header written as text
    unless it has one."""
    headers = response.headers
    page = is_page(request.path)
    if "Content-Language" not in headers:
        headers["Content-Language"] = _language(page)
    vary = _PAGE_VARY if page else _API_VARY
    if "Vary" in headers:
        response.vary.update(vary)
    else:
        headers["Vary"] = ", ".join(vary)
    return response


_API_VARY = ("Accept-Language",)
API_VARY = ", ".join(_API_VARY)  # the API's Vary header, of an answer that had none
_PAGE_VARY = ("Accept-Language", "Cookie")  # Cookie: the language switch


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
