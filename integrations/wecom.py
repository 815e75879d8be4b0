"""`wecom`: a WeCom (企业微信) group robot announcing deals, with the deal's poster.

POST to the robot's webhook, `https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY`
(the config holds the full URL or just the key):

- the announcement as `{"msgtype": "markdown", "markdown": {"content": ...}}`, at most
  4096 bytes (a longer one is shortened, its link kept whole);
- then, with `poster: "image"` (the default) and a poster to share, the poster itself as
  `{"msgtype": "image", "image": {"base64", "md5"}}` (the PNG, at most 2 MB before
  base64): a picture staff can forward to WeChat as it is, QR code included;
- or, with `poster: "news"`, one `news` card instead of both: title, description, the deal
  link as `url` and the poster's public URL as `picurl` (WeCom fetches it: the service's
  public URL must be reachable from the internet);
- `poster: "none"`: the markdown alone.

A robot takes 20 messages a minute (`rate_limits`); an announcement with its image is two.
When the text went through and the image did not, the delivery has still succeeded (its
answer says the poster was not sent): retrying it would post the text twice.
Errcodes: 45009 (over the 20 messages a minute) is retried after 60 s, -1 (busy) is
retried, others (93000 invalid webhook URL, 40008 bad message, ...) are permanent.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import quote

from marshmallow import ValidationError, fields, validate, validates_schema

from . import http, robot
from .adapter import Context, DeliveryError, Event, Outcome, credential, load_config
from .limits import RateLimit
from .messages import ANNOUNCED, AnnouncementSchema, Message, compose, fit, skipped, utf8_within

ENDPOINT = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
MAX_CONTENT_BYTES = 4096
MAX_IMAGE_BYTES = 2 * 1024 * 1024
MAX_NEWS_TITLE_BYTES = 128
MAX_NEWS_DESCRIPTION_BYTES = 512
RETRYABLE = {45009: 60.0}
POSTER_MODES = ("image", "news", "none")


class WeComConfig(AnnouncementSchema):
    webhook_url = credential(fields.Url(
        load_default=None, allow_none=True, schemes={"http", "https"}, require_tld=False,
        metadata={"description": "the robot's webhook URL (holds its key)"}))
    key = credential(fields.String(load_default=None, allow_none=True,
                               validate=validate.Length(min=1, max=200),
                               metadata={"description": "the robot's key, instead of webhook_url"}))
    poster = fields.String(load_default="image", validate=validate.OneOf(POSTER_MODES),
                           metadata={"description": "the deal's poster: image (sent after the text), "
                                                    "news (one card with the poster) or none"})

    @validates_schema
    def _one_target(self, data: dict[str, Any], **_: Any) -> None:
        if (data.get("webhook_url") is None) == (data.get("key") is None):
            raise ValidationError("give either webhook_url or key", "webhook_url")


class WeComAdapter:
    name = "wecom"
    kind = "social"
    events = ANNOUNCED
    config_schema = WeComConfig

    def rate_limits(self, settings: dict[str, Any]) -> tuple[RateLimit, ...]:
        return (RateLimit("messages", 20, 60),)

    def usage(self, event: Event, settings: dict[str, Any]) -> dict[str, int]:
        if compose(event, settings) is None:
            return {}
        with_image = settings["poster"] == "image" and event.share is not None
        return {"messages": 2 if with_image else 1}

    def deliver(self, event: Event, config: dict[str, Any], context: Context) -> Outcome:
        settings = load_config(self, config)
        message = compose(event, settings)
        if message is None:
            return skipped(event)
        url = settings["webhook_url"] or f"{ENDPOINT}?key={quote(settings['key'], safe='')}"
        share, language = event.share, settings["locale"]
        if settings["poster"] == "news" and share is not None and message.link:
            picture = share.poster_url(language)
            if picture:
                return self._send(context, url, news(message, picture))
        sent = self._send(context, url, {"msgtype": "markdown", "markdown": {
            "content": fit(message, Message.markdown, utf8_within(MAX_CONTENT_BYTES))}})
        if settings["poster"] != "image" or share is None:
            return sent
        image = share.poster_png(language)
        if not image or len(image) > MAX_IMAGE_BYTES:
            return Outcome(sent.status_code, f"{sent.excerpt} (no poster to send)")
        try:
            self._send(context, url, image_message(image))
        except DeliveryError as error:  # the text is out: a retry would post it twice
            return Outcome(sent.status_code, f"{sent.excerpt} (the poster was not sent: {error})")
        return sent

    @staticmethod
    def _send(context: Context, url: str, body: dict[str, Any]) -> Outcome:
        return robot.answer(http.request(context, "POST", url, json=body), "WeCom", RETRYABLE)


def image_message(png: bytes) -> dict[str, Any]:
    """WeCom's image message: the picture in base64 and the MD5 of its bytes (before base64)."""
    return {"msgtype": "image", "image": {"base64": base64.b64encode(png).decode(),
                                          "md5": hashlib.md5(png).hexdigest()}}  # noqa: S324 (WeCom asks for MD5)


def news(message: Message, picture_url: str) -> dict[str, Any]:
    """One `news` card: the title (128 bytes), the lines as description (512), the deal link
    and the poster's URL as its picture."""
    return {"msgtype": "news", "news": {"articles": [{
        "title": robot.truncate_utf8(message.title, MAX_NEWS_TITLE_BYTES),
        "description": robot.truncate_utf8("\n".join(message.lines), MAX_NEWS_DESCRIPTION_BYTES),
        "url": message.link, "picurl": picture_url}]}}
