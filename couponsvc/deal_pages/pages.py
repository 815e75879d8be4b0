"""The deal page (`/d/<id>`) and its embed card (`/embed/d/<id>`): public, no sign-in.

A deal that was never published, was cancelled, or does not exist is a 404 page, in the
page's language. Both pages load only the app's own files (a Content-Security-Policy of
'self'); the deal page refuses to be framed, the card may be framed by any site.
"""

from __future__ import annotations

from flask import Response, current_app, render_template, request
from flask_babel import gettext as _

from .. import i18n
from ..domain_error import DomainError
from ..errors import domain_problem
from ..extensions import db
from ..promotion.deal import Deal, public_deal
from . import deal_pages
from .links import current_poster_url, embed_url, link_settings, oembed_url, page_url
from .words import deal_words

PAGE_CACHE = "public, max-age=60"
POLL_SECONDS = 15  # how often a page asks for the progress (DEAL_PROGRESS_POLL overrides it)
POLICY = ("default-src 'none'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
          "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors {ancestors}")


@deal_pages.get("/d/<campaign_id>")
def deal_page(campaign_id: str):
    deal = public_deal(db.session, campaign_id, link_settings())
    response = _render("deal/page.html", deal)
    response.headers["Content-Security-Policy"] = POLICY.format(ancestors="'none'")
    response.headers["X-Frame-Options"] = "DENY"
    return response


@deal_pages.get("/embed/d/<campaign_id>")
def embed_card(campaign_id: str):
    deal = public_deal(db.session, campaign_id, link_settings())
    response = _render("deal/embed.html", deal)
    response.headers["Content-Security-Policy"] = POLICY.format(ancestors="*")
    return response


def _render(template: str, deal: Deal) -> Response:
    language = i18n.language()
    response = Response(render_template(
        template, deal=deal, words=deal_words(deal), language=language,
        page_url=page_url(deal.campaign_id), embed_url=embed_url(deal.campaign_id),
        poster_url=current_poster_url(deal, language), oembed_url=oembed_url(deal.campaign_id),
        progress_url=f"{request.script_root}/d/{deal.campaign_id}/progress.json",
        poll_seconds=current_app.config.get("DEAL_PROGRESS_POLL", POLL_SECONDS),
    ), mimetype="text/html")
    response.headers["Cache-Control"] = PAGE_CACHE
    response.headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
    return response


@deal_pages.errorhandler(DomainError)
def _refused(error: DomainError):
    return _missing() if error.status == 404 else domain_problem(error)


def _missing() -> Response:
    response = Response(render_template("deal/missing.html", title=_("This deal is not here"),
                                        language=i18n.language()),
                        status=404, mimetype="text/html")
    response.headers["Content-Security-Policy"] = POLICY.format(ancestors="*")
    return response
