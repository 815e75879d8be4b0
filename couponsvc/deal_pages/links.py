"""The absolute links of a deal: its page, its card, its poster (with the capability
token), its oEmbed answer; all from the public URL (`public_url.base_url`), never `Host`."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from flask import current_app

from ..promotion import poster
from ..promotion.deal import Deal, LinkSettings
from ..promotion.deal_link import deal_page_url
from ..promotion.fonts import find_fonts
from ..promotion.poster_token import poster_token
from ..public_url import base_url
from .words import poster_text

POSTER_LANGUAGE = "zh"


def link_settings() -> LinkSettings:
    return LinkSettings(public_base=base_url(),
                        deployment_template=current_app.config.get("DEAL_URL_TEMPLATE"))


def page_url(campaign_id: str) -> str:
    return deal_page_url(base_url(), campaign_id)


def embed_url(campaign_id: str) -> str:
    return f"{base_url()}/embed/d/{quote(campaign_id, safe='')}"


def poster_url(campaign_id: str, language: str = POSTER_LANGUAGE) -> str:
    """The poster's capability URL: its token lets an `<img>`, a crawler or a chat app load
    it without a key. Chinese unless `language` asks for another."""
    query = {"token": poster_token(current_app.config["SECRET_KEY"], campaign_id)}
    if language != POSTER_LANGUAGE:
        query["lang"] = language
    return f"{base_url()}/api/v1/campaigns/{quote(campaign_id, safe='')}/poster.png?{urlencode(query)}"


def current_poster_url(deal: Deal, language: str = POSTER_LANGUAGE) -> str:
    """`poster_url` with the poster's version (`&v=`, ignored by the endpoint), so that a chat
    app or a browser that keeps images by URL fetches a poster that changed (one buyer fewer
    to tip, say) instead of showing the one it has."""
    url = poster_url(deal.campaign_id, language)
    fonts = find_fonts(current_app.config.get("POSTER_FONT"))
    if fonts is None:
        return url
    return f"{url}&v={poster.key(poster_text(deal, language), fonts)[:12]}"


def oembed_url(campaign_id: str) -> str:
    return f"{base_url()}/oembed?{urlencode({'url': page_url(campaign_id), 'format': 'json'})}"
