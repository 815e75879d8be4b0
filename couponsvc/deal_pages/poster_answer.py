"""`GET /api/v1/campaigns/<id>/poster.png`: the share poster, for the token of the campaign's
`poster_url` or a platform or manager key that sees the campaign.

Without either (or with a token that does not match, a scanner key, another merchant's
key) the answer is `404 not_found` whatever the id: the image is no oracle. The token is
checked before the database is read. The poster's key (`poster.key`: its words, fonts and
layout) is its ETag: `If-None-Match` answers 304 without drawing, and a drawn poster is
kept (`PosterCache`) until what it says changes.
"""

from __future__ import annotations

from flask import Response, current_app, request
from sqlalchemy.orm import lazyload

from ..api.bearer import current_principal
from ..campaigns import get_campaign
from ..domain_error import DomainError, say
from ..extensions import db
from ..models import Campaign
from ..principal import MANAGER, PLATFORM
from ..promotion import poster
from ..promotion.deal import deal_of
from ..promotion.fonts import find_fonts
from ..promotion.poster_token import poster_token_matches
from . import POSTERS
from .links import link_settings
from .words import poster_text

CACHE_WITH_TOKEN = "public, max-age=300"  # what it says follows the deal's progress
CACHE_WITH_KEY = "private, max-age=60"
ROLES = (PLATFORM, MANAGER)


def poster_answer(campaign_id: str, *, token: str | None, language: str) -> Response:
    campaign = _campaign_to_draw(campaign_id, token)
    fonts = find_fonts(current_app.config.get("POSTER_FONT"))
    if fonts is None:
        raise DomainError("poster_font_missing")
    text = poster_text(deal_of(db.session, campaign, link_settings()), language)
    etag = poster.key(text, fonts)
    if etag in request.if_none_match:
        response = Response(status=304)
    else:
        cache = current_app.extensions[POSTERS]
        image = cache.get(etag)
        if image is None:
            image = poster.render(text, fonts)
            cache.put(etag, image)
        response = Response(image, mimetype="image/png")
    response.set_etag(etag)
    response.headers["Cache-Control"] = CACHE_WITH_TOKEN if token is not None else CACHE_WITH_KEY
    return response


def _campaign_to_draw(campaign_id: str, token: str | None) -> Campaign:
    if token is not None:
        if not poster_token_matches(current_app.config["SECRET_KEY"], campaign_id, token):
            raise DomainError("not_found", say("No such campaign"))
        campaign = db.session.get(Campaign, campaign_id, options=[lazyload(Campaign.stores)])
        if campaign is None:
            raise DomainError("not_found", say("No such campaign"))
        return campaign
    if "Authorization" not in request.headers:
        raise DomainError("not_found", say("No such campaign"))
    principal = current_principal()  # a bad key: 401, as everywhere
    if principal.role not in ROLES:
        raise DomainError("not_found", say("No such campaign"))
    return get_campaign(db.session, principal, campaign_id)
