"""What a social adapter may show of the deal an event is about, beyond the event's data.

The worker that hands an event over (couponsvc's drain) attaches a `Share` to the events
about a deal (`Event.share`): the deal link (the merchant's storefront page, else the
service's public deal page) and the deal's share poster. The poster is drawn by the
service, not here; an adapter asks for what it needs and only when it needs it:

- `poster.url(language)`: a public URL of the PNG (a capability URL: whoever holds it may
  load it without a key), for channels that fetch pictures themselves (WeCom's `news`
  card, DingTalk's markdown image);
- `poster.png(language)`: the PNG's bytes, for channels the picture is uploaded to
  (WeCom's `image` message, Weibo's `pic`, a Discourse upload, a Mastodon media).

Either answers None when there is no poster (no CJK font on the worker, say): the adapter
then sends its text without the picture. Nothing here imports the web app.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@runtime_checkable
class Poster(Protocol):
    def url(self, language: str) -> str | None:
        """A public URL of the poster in `language` ("zh" or "en"), or None."""
        ...

    def png(self, language: str) -> bytes | None:
        """The poster in `language` as PNG bytes, drawn (or read from a cache) on first use, or None."""
        ...


@dataclass(frozen=True)
class FixedPoster:
    """A poster known in advance (tests, or a service that stores its images elsewhere)."""

    image: bytes | None = None
    address: str | None = None

    def url(self, language: str) -> str | None:
        return self.address

    def png(self, language: str) -> bytes | None:
        return self.image


@dataclass(frozen=True)
class Share:
    """The deal's link and poster, as the worker knows them when it delivers."""

    link: str
    poster: Poster | None = None

    def poster_url(self, language: str) -> str | None:
        return self.poster.url(language) if self.poster is not None else None

    def poster_png(self, language: str) -> bytes | None:
        return self.poster.png(language) if self.poster is not None else None
