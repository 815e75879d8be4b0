"""What a drain gives social adapters about a deal: its link and its poster (`Event.share`).

`integrations/` never imports the service, so the drain hands each event about a deal to
a social adapter with an `integrations.share.Share`:

- `link`: the deal link, `couponsvc.promotion.deal_link` (the merchant's template, else
  `COUPONSVC_DEAL_URL_TEMPLATE`, else the public deal page `/d/<campaign id>`);
- `poster.url(language)`: the poster's capability URL,
  `<public URL>/api/v1/campaigns/<id>/poster.png?token=…` (`lang=en` for English), with
  `&v=<version>` (ignored by the endpoint) so that a chat app that keeps pictures by URL
  fetches the poster again once it says something new (one buyer fewer to tip);
- `poster.png(language)`: the PNG, drawn or taken from the poster cache.

No Flask here: the drawing needs the poster's words (the deal's facts said through the
catalogue), which the worker provides as a `PosterSource` (`couponsvc/deal_pages/
delivery_posters.py`). Both poster answers are None when it cannot draw (no CJK font):
the adapter then sends its text alone. Nothing is drawn for an adapter that does not ask,
and what one asks is kept for the rest of the round.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from integrations.adapter import Event
from integrations.share import Share

from ..models import Merchant
from ..promotion.deal_link import deal_link
from ..promotion.poster_token import poster_token

DEFAULT_LANGUAGE = "zh"

log = logging.getLogger(__name__)


class PosterSource(Protocol):
    """The worker's poster drawing, for one campaign in one language."""

    def version(self, session: Session, campaign_id: str, language: str) -> str | None:
        """A short name of what the poster says now (changes when it does); None without a font."""
        ...

    def png(self, session: Session, campaign_id: str, language: str) -> bytes | None:
        """The poster, drawn or from the cache; None when it cannot be drawn."""
        ...


@dataclass(frozen=True)
class Sharing:
    """The settings a drain shares deals with: the public base URL (COUPONSVC_PUBLIC_URL),
    COUPONSVC_DEAL_URL_TEMPLATE, SECRET_KEY (the poster URL's token) and the posters."""

    public_base: str
    deployment_template: str | None
    secret_key: str
    posters: PosterSource | None = None


def with_shares(session: Session, merchant_id: str, events: Iterable[Event],
                sharing: Sharing) -> list[Event]:
    """`events`, those about a deal with its `Share`."""
    events = list(events)
    if not any(_campaign_id(event) for event in events):
        return events
    template = session.execute(select(Merchant.__table__).where(Merchant.id == merchant_id)).mappings().first()
    merchant_template = template.get("deal_url_template") if template is not None else None
    posters: dict[str, _Poster] = {}
    shared = []
    for event in events:
        campaign_id = _campaign_id(event)
        if campaign_id is None:
            shared.append(event)
            continue
        poster = posters.setdefault(campaign_id, _Poster(session, sharing, campaign_id))
        link = deal_link(campaign_id=campaign_id, merchant_id=merchant_id, merchant_template=merchant_template,
                         deployment_template=sharing.deployment_template, public_base=sharing.public_base)
        shared.append(replace(event, share=Share(link, poster if sharing.posters is not None else None)))
    return shared


def poster_url(public_base: str, secret_key: str, campaign_id: str, language: str,
               version: str | None = None) -> str:
    query = {"token": poster_token(secret_key, campaign_id)}
    if language != DEFAULT_LANGUAGE:
        query["lang"] = language
    if version:
        query["v"] = version
    return f"{public_base}/api/v1/campaigns/{quote(campaign_id, safe='')}/poster.png?{urlencode(query)}"


@dataclass
class _Poster:
    """One campaign's poster for one round: asked for lazily, remembered once drawn."""

    session: Session
    sharing: Sharing
    campaign_id: str
    _versions: dict[str, str | None] = field(default_factory=dict)
    _images: dict[str, bytes | None] = field(default_factory=dict)

    def url(self, language: str) -> str | None:
        if language not in self._versions:
            self._versions[language] = self._ask(self.sharing.posters.version, language)
        version = self._versions[language]
        if version is None:
            return None
        return poster_url(self.sharing.public_base, self.sharing.secret_key, self.campaign_id, language,
                          version)

    def png(self, language: str) -> bytes | None:
        if language not in self._images:
            self._images[language] = self._ask(self.sharing.posters.png, language)
        return self._images[language]

    def _ask(self, source: Callable[[Session, str, str], Any], language: str) -> Any:
        """The poster source's answer; None, and the text goes alone, when it fails."""
        try:
            return source(self.session, self.campaign_id, language)
        except Exception:
            log.exception("the poster of %s could not be had for a delivery", self.campaign_id)
            self.session.rollback()  # what it read, if it failed in the database
            return None


def _campaign_id(event: Event) -> str | None:
    data: Any = event.data
    campaign = data.get("campaign") if isinstance(data, dict) else None
    found = campaign.get("id") if isinstance(campaign, dict) else None
    if found is None and isinstance(data, dict):
        found = data.get("campaign_id")
    return str(found) if found else None
