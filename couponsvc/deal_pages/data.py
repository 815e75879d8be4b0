"""The public JSON of a deal: its progress (what the deal page polls) and its oEmbed answer.

`GET /oembed?url=<deal page or card URL>&format=json[&maxwidth=&maxheight=]` answers an
oEmbed 1.0 `rich` object whose `html` is an iframe of the embed card, with the poster as
its thumbnail; a URL that names no public deal of this service is `404 not_found`, a
format other than JSON `501` (as the oEmbed spec asks). Refusals are problem+json.
"""

from __future__ import annotations

from html import escape
from urllib.parse import unquote, urlsplit

from flask import Response, jsonify, request
from flask_babel import gettext as _

from ..domain_error import DomainError, say
from ..extensions import db
from ..promotion import poster
from ..promotion.deal import public_deal
from ..public_url import base_url
from ..stored_text import storable
from . import deal_data
from .links import current_poster_url, embed_url, link_settings
from .words import deal_words

CARD_WIDTH, CARD_HEIGHT = 400, 236
POSTER_WIDTH, POSTER_HEIGHT = poster.WIDTH, poster.HEIGHT
OEMBED_CACHE_AGE = 300
PROGRESS_CACHE = "public, max-age=10"


@deal_data.get("/d/<campaign_id>/progress.json")
def progress(campaign_id: str):
    deal = public_deal(db.session, campaign_id, link_settings())
    words = deal_words(deal)
    response = jsonify({"status": deal.status, "sold": deal.sold,
                        "min_group_size": deal.min_group_size, "remaining": deal.remaining,
                        "tipped": deal.tipped, "progress": round(deal.progress, 4),
                        "label": words.progress, "sold_label": words.sold, "badge": words.badge,
                        "over": deal.over})
    response.headers["Cache-Control"] = PROGRESS_CACHE
    return response


@deal_data.get("/oembed")
def oembed():
    if request.args.get("format", "json") != "json":
        return Response(_("Only format=json is served."), status=501, mimetype="text/plain")
    campaign_id = _campaign_of(request.args.get("url", ""))
    max_width, max_height = _size("maxwidth"), _size("maxheight")
    deal = public_deal(db.session, campaign_id, link_settings())
    width, height = min(CARD_WIDTH, max_width or CARD_WIDTH), min(CARD_HEIGHT, max_height or CARD_HEIGHT)
    answer = {
        "version": "1.0", "type": "rich", "title": deal.title, "author_name": deal.merchant_name,
        "provider_name": urlsplit(base_url()).hostname or "couponsvc", "provider_url": base_url(),
        "cache_age": OEMBED_CACHE_AGE, "width": width, "height": height,
        "html": (f'<iframe src="{escape(embed_url(deal.campaign_id))}" width="{width}" '
                 f'height="{height}" title="{escape(deal.title)}" loading="lazy" '
                 f'style="border:0;max-width:100%" referrerpolicy="strict-origin-when-cross-origin">'
                 f"</iframe>"),
        "description": deal_words(deal).summary,
    }
    if (max_width or POSTER_WIDTH) >= POSTER_WIDTH and (max_height or POSTER_HEIGHT) >= POSTER_HEIGHT:
        answer.update(thumbnail_url=current_poster_url(deal), thumbnail_width=POSTER_WIDTH,
                      thumbnail_height=POSTER_HEIGHT)
    response = jsonify(answer)
    response.headers["Cache-Control"] = f"public, max-age={OEMBED_CACHE_AGE}"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def _campaign_of(url: str) -> str:
    """The campaign id of a deal page or card URL of this service; not_found otherwise."""
    if not url:
        raise DomainError("validation_error", say("url is required"),
                          errors={"url": ["Missing data for required field."]})
    parts = urlsplit(url.strip())
    base = urlsplit(base_url())
    if (parts.scheme, parts.netloc) != (base.scheme, base.netloc):
        raise DomainError("not_found", say("No such deal"))
    path = parts.path.removeprefix(base.path.rstrip("/")).rstrip("/")
    for prefix in ("/d/", "/embed/d/"):
        if path.startswith(prefix):
            campaign_id = unquote(path[len(prefix):])
            if campaign_id and "/" not in campaign_id and storable(campaign_id):
                return campaign_id
    raise DomainError("not_found", say("No such deal"))


def _size(name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6) or not 1 <= int(raw) <= 100_000:
        raise DomainError("validation_error", say("%(name)s must be a positive integer", name=name),
                          errors={name: ["Must be a positive integer."]})
    return int(raw)
