"""The share poster as deliveries attach it: the worker's `PosterSource`
(`couponsvc/deliveries/deal_share.py`).

The same poster as `GET /api/v1/campaigns/<id>/poster.png` answers (`poster_answer.py`):
the same words (`words.poster_text`, said through the catalogue, hence here, beside the
pages, with the app's context the worker runs in), the same fonts, the same key, and the
same cache (`PosterCache`, in memory and under the instance folder), so a poster drawn for
a Weibo post is the one the poster URL then serves, and the other way round.
"""

from __future__ import annotations

from flask import Flask
from sqlalchemy.orm import Session, lazyload

from ..models import Campaign
from ..promotion import poster
from ..promotion.deal import LinkSettings, deal_of
from ..promotion.fonts import find_fonts
from ..promotion.poster_cache import PosterCache
from . import POSTERS
from .words import poster_text

VERSION_CHARS = 12  # of the poster's key, in `&v=` (as the deal page's og:image)


class AppPosters:
    """Posters for one app's configuration: its fonts (COUPONSVC_POSTER_FONT), links and cache."""

    def __init__(self, app: Flask, links: LinkSettings) -> None:
        self.font_setting = app.config.get("POSTER_FONT")
        self.links = links
        self.cache: PosterCache = app.extensions[POSTERS]

    def version(self, session: Session, campaign_id: str, language: str) -> str | None:
        drawn = self._text(session, campaign_id, language)
        return None if drawn is None else drawn[0][:VERSION_CHARS]

    def png(self, session: Session, campaign_id: str, language: str) -> bytes | None:
        drawn = self._text(session, campaign_id, language)
        if drawn is None:
            return None
        key, text, fonts = drawn
        image = self.cache.get(key)
        if image is None:
            image = poster.render(text, fonts)
            self.cache.put(key, image)
        return image

    def _text(self, session: Session, campaign_id: str, language: str):
        fonts = find_fonts(self.font_setting)
        campaign = session.get(Campaign, campaign_id, options=[lazyload(Campaign.stores)])
        if fonts is None or campaign is None:
            return None
        text = poster_text(deal_of(session, campaign, self.links), language)
        return poster.key(text, fonts), text, fonts
