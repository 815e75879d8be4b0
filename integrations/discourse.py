"""`discourse`: a topic on a Discourse forum (a city's community forum) for each deal.

Every call carries the headers `Api-Key` and `Api-Username` (an admin or a category
moderator's key; `system` unless told).

- `campaign.published` opens a topic in `category_id`: `POST /posts.json` with `title`,
  `raw`, `category` and `external_id` = `couponsvc-<campaign id>`. The poster, when the
  deal has one, is uploaded first (`POST /uploads.json`, multipart, `type=composer`,
  `synchronous=true`) and shown in `raw` as `![title|WxH](upload://…)`; a poster the forum
  refuses for good (413, 422) is left out rather than holding the topic back.
- `campaign.tipped`, and an order that leaves the deal a few buyers short of tipping
  (`coupon.issued` with `0 < min_group_size - sold <= nearly_tipped_threshold`, as for every
  social adapter), reply in that topic: `POST /posts.json` with `topic_id` and `raw`. The
  topic is found by its external id, `GET /t/external_id/couponsvc-<campaign id>.json`,
  which Discourse answers with a redirect to the topic (the id is read from `Location`; a
  redirect is never followed); found ids are remembered per forum. A deal with no topic
  yet (the integration was added after it was published) gets its topic then.

**Idempotent.** A retried `campaign.published` (its answer was lost) never opens a second
topic: Discourse refuses a second topic with the same external id (`422`, "External ID
has already been taken"), and a 422 is followed by the look-up: a topic found is success.
A reply is at least once: a retry after a lost answer may post it twice.

Answers: 2xx is success; 401, 403 and 422 (a refused key, a refused post, e.g. a title
under the forum's minimum length) are permanent; 429 waits for its `Retry-After`; the rest
as for every adapter. The topic's title is at most 255 characters and `raw` 32,000
(Discourse's defaults; longer ones are shortened). A `ping` asks
`GET /session/current.json` with the key. Discourse's admin API allows 60 requests a
minute (`rate_limits`); a delivery is at most four (look-up, upload, post, look-up).
"""

from __future__ import annotations

import hashlib
import re
import threading
from typing import Any
from urllib.parse import quote

from cachetools import LRUCache
from marshmallow import fields, validate

from . import http
from .adapter import (
    Context,
    Event,
    Outcome,
    RetryableError,
    credential,
    load_config,
)
from .limits import RateLimit
from .messages import ANNOUNCED, AnnouncementSchema, Message, clip, compose, fit, skipped

EXTERNAL_PREFIX = "couponsvc-"
MAX_EXTERNAL_ID = 50  # Discourse's Topic::EXTERNAL_ID_MAX_LENGTH
MAX_TITLE = 255
MAX_RAW = 32000
PERMANENT = (400, 401, 403, 404, 422)
UPLOAD_REFUSED = (413, 415, 422)
_TOPIC_IN_URL = re.compile(r"/t/(?:[^/?#]+/)?(\d+)(?:/\d+)?(?:\.json)?(?:[?#].*)?$")

_topics: LRUCache[tuple[str, str], int] = LRUCache(maxsize=4096)
_topics_lock = threading.Lock()


def external_id(campaign_id: str) -> str:
    """`couponsvc-<campaign id>`; Discourse allows 50 characters of `[\\w-]`, so a longer or
    stranger id is replaced by a digest of itself."""
    candidate = EXTERNAL_PREFIX + campaign_id
    if len(candidate) <= MAX_EXTERNAL_ID and re.fullmatch(r"[\w-]+", candidate, re.ASCII):
        return candidate
    return EXTERNAL_PREFIX + hashlib.sha256(campaign_id.encode()).hexdigest()[:32]


class DiscourseConfig(AnnouncementSchema):
    base_url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False,
                          metadata={"description": "the forum, e.g. https://bbs.example.cn"})
    api_key = credential(fields.String(required=True, validate=validate.Length(min=1, max=200),
                                       metadata={"description": "an API key of the forum"}))
    api_username = fields.String(load_default="system", validate=validate.Length(min=1, max=60),
                                 metadata={"description": "the user the key posts as"})
    category_id = fields.Integer(required=True, strict=True, validate=validate.Range(min=1),
                                 metadata={"description": "the category the deals' topics go to"})
    poster = fields.Boolean(load_default=True,
                            metadata={"description": "upload the deal's poster into its topic"})


class DiscourseAdapter:
    name = "discourse"
    kind = "social"
    events = ANNOUNCED
    config_schema = DiscourseConfig

    def rate_limits(self, settings: dict[str, Any]) -> tuple[RateLimit, ...]:
        return (RateLimit("requests", 60, 60),)

    def usage(self, event: Event, settings: dict[str, Any]) -> dict[str, int]:
        if event.type == "ping":
            return {"requests": 1}
        if compose(event, settings) is None:
            return {}
        upload = 1 if settings["poster"] and event.share is not None else 0
        return {"requests": (2 if event.type == "campaign.published" else 3) + upload}

    def deliver(self, event: Event, config: dict[str, Any], context: Context) -> Outcome:
        settings = load_config(self, config)
        forum = _Forum(context, settings)
        if event.type == "ping":
            return forum.answer(forum.call("GET", "/session/current.json"))
        message = compose(event, settings)
        campaign_id = _campaign_id(event)
        if message is None or campaign_id is None:
            return skipped(event)
        topic_external_id = external_id(campaign_id)
        if event.type != "campaign.published":
            topic_id = forum.find(topic_external_id)
            if topic_id is not None:
                reply = forum.call("POST", "/posts.json", json={
                    "topic_id": topic_id, "raw": fit(message, raw, _within(MAX_RAW))})
                return forum.answer(reply)
        return forum.open_topic(message, topic_external_id, event)


class _Forum:
    """One forum, as one delivery calls it."""

    def __init__(self, context: Context, settings: dict[str, Any]) -> None:
        self.context, self.settings = context, settings
        self.base = settings["base_url"].rstrip("/")
        self.headers = {"Api-Key": settings["api_key"], "Api-Username": settings["api_username"],
                        "Accept": "application/json"}

    def call(self, method: str, path: str, **kwargs: Any) -> http.Reply:
        return http.request(self.context, method, self.base + path, headers=self.headers, **kwargs)

    @staticmethod
    def answer(reply: http.Reply) -> Outcome:
        http.raise_for_status(reply, permanent=PERMANENT)
        return http.outcome(reply)

    def find(self, topic_external_id: str) -> int | None:
        """The id of the topic with this external id, or None when the forum has none."""
        key = (self.base, topic_external_id)
        with _topics_lock:
            known = _topics.get(key)
        if known is not None:
            return known
        reply = self.call("GET", f"/t/external_id/{quote(topic_external_id, safe='')}.json")
        if reply.status_code == 404:
            return None
        if reply.status_code in (301, 302, 303, 307, 308):
            found = _TOPIC_IN_URL.search(reply.headers.get("Location", ""))
            topic_id = int(found.group(1)) if found else None
        else:
            http.raise_for_status(reply, permanent=PERMANENT)
            topic_id = _int(_json(reply).get("id"))
        if topic_id is None:
            raise RetryableError("the forum's answer about the topic names no topic",
                                 status_code=reply.status_code, excerpt=reply.excerpt)
        self.remember(topic_external_id, topic_id)
        return topic_id

    def remember(self, topic_external_id: str, topic_id: int) -> None:
        with _topics_lock:
            _topics[(self.base, topic_external_id)] = topic_id

    def open_topic(self, message: Message, topic_external_id: str, event: Event) -> Outcome:
        picture = self.upload(message, event)
        reply = self.call("POST", "/posts.json", json={
            "title": topic_title(message), "category": self.settings["category_id"],
            "external_id": topic_external_id,
            "raw": fit(message, lambda shown: raw(shown, picture), _within(MAX_RAW))})
        if reply.status_code == 422:  # most often: the topic exists (a retried delivery)
            with _topics_lock:
                _topics.pop((self.base, topic_external_id), None)
            existing = self.find(topic_external_id)
            if existing is not None:
                return Outcome(reply.status_code, f"the topic exists already (topic {existing}, "
                                                  f"external_id {topic_external_id}): {reply.excerpt}")
        outcome = self.answer(reply)
        topic_id = _int(_json(reply).get("topic_id"))
        if topic_id is not None:
            self.remember(topic_external_id, topic_id)
        return outcome

    def upload(self, message: Message, event: Event) -> str | None:
        """The poster uploaded, as markdown for `raw`; None without a poster or when refused."""
        if not self.settings["poster"] or event.share is None:
            return None
        image = event.share.poster_png(self.settings["locale"])
        if not image:
            return None
        reply = self.call("POST", "/uploads.json", data={"type": "composer", "synchronous": "true"},
                          files={"file": ("poster.png", image, "image/png")})
        if reply.status_code in UPLOAD_REFUSED:
            return None
        self.answer(reply)
        uploaded = _json(reply)
        address = uploaded.get("short_url") or uploaded.get("url")
        if not isinstance(address, str) or not address:
            return None
        size = ""
        if _int(uploaded.get("width")) and _int(uploaded.get("height")):
            size = f"|{uploaded['width']}x{uploaded['height']}"
        alt = message.title.replace("]", "］").replace("|", "｜")
        return f"![{clip(alt, 100)}{size}]({address})"


def topic_title(message: Message) -> str:
    """The announcement and the price: "新团购上线：… ｜团购价 ¥39.90，…", at most 255 characters."""
    title = f"{message.title}｜{message.lines[0]}" if message.lines else message.title
    return clip(title, MAX_TITLE)


def raw(message: Message, picture: str | None = None) -> str:
    """The post: the announcement in bold, its lines, the poster, the link."""
    parts = [f"**{message.title}**", *message.lines]
    if picture:
        parts.append(picture)
    if message.link:
        parts.append(f"[{message.link_label}]({message.link})")
    return "\n\n".join(parts)


def _within(limit: int):
    return lambda text: len(text) <= limit


def _campaign_id(event: Event) -> str | None:
    campaign = event.data.get("campaign")
    found = campaign.get("id") if isinstance(campaign, dict) else None
    found = found or event.data.get("campaign_id")
    return str(found) if found else None


def _json(reply: http.Reply) -> dict[str, Any]:
    try:
        found = reply.json()
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None
