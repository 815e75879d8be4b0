"""`dingtalk`: a DingTalk (钉钉) custom group robot announcing deals as markdown.

POST `{"msgtype": "markdown", "markdown": {"title", "text"}}` to
`https://oapi.dingtalk.com/robot/send?access_token=TOKEN` (the config holds the full
URL or the token). With a poster to share (and `poster` left on) the text ends with the
poster as a markdown image, `![title](poster URL)`: DingTalk fetches it from the
service's public URL. The text is at most 20000 bytes (shortened, the link and the image
kept whole). A robot takes 20 messages a minute (`rate_limits`). With a signing secret (`SEC…`, the robot's 加签 setting) every call
adds `timestamp` (ms) and `sign` = base64(HMAC-SHA256(secret, "<timestamp>\\n<secret>"))
as query parameters, URL-encoded once. Errcodes: 130101 (over 20 messages a minute,
then throttled for 10 minutes) is retried after 600 s, -1 (busy) is retried, others
(310000 signature, keyword or IP check failed, 300001 unknown token, ...) are permanent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any
from urllib.parse import quote

from marshmallow import ValidationError, fields, validate, validates_schema

from . import http, robot
from .adapter import Context, Event, Outcome, credential, load_config
from .limits import RateLimit
from .messages import (
    ANNOUNCED,
    AnnouncementSchema,
    Message,
    clip,
    compose,
    fit,
    skipped,
    utf8_within,
)

ENDPOINT = "https://oapi.dingtalk.com/robot/send"
MAX_TEXT_BYTES = 20000
MAX_TITLE_CHARS = 64  # the notification's first line
RETRYABLE = {130101: 600.0}


def signature(secret: str, timestamp_ms: int) -> str:
    """The `sign` parameter before URL encoding."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(),
                      hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class DingTalkConfig(AnnouncementSchema):
    webhook_url = credential(fields.Url(
        load_default=None, allow_none=True, schemes={"http", "https"}, require_tld=False,
        metadata={"description": "the robot's webhook URL (holds its token)"}))
    access_token = credential(fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=200),
        metadata={"description": "the robot's access_token, instead of webhook_url"}))
    secret = credential(fields.String(load_default=None, allow_none=True,
                                  validate=validate.Length(min=1, max=200),
                                  metadata={"description": "the robot's SEC… signing secret (加签)"}))
    poster = fields.Boolean(load_default=True,
                            metadata={"description": "show the deal's poster under the text"})

    @validates_schema
    def _one_target(self, data: dict[str, Any], **_: Any) -> None:
        if (data.get("webhook_url") is None) == (data.get("access_token") is None):
            raise ValidationError("give either webhook_url or access_token", "webhook_url")


class DingTalkAdapter:
    name = "dingtalk"
    kind = "social"
    events = ANNOUNCED
    config_schema = DingTalkConfig

    def rate_limits(self, settings: dict[str, Any]) -> tuple[RateLimit, ...]:
        return (RateLimit("messages", 20, 60),)

    def usage(self, event: Event, settings: dict[str, Any]) -> dict[str, int]:
        return {} if compose(event, settings) is None else {"messages": 1}

    def deliver(self, event: Event, config: dict[str, Any], context: Context) -> Outcome:
        settings = load_config(self, config)
        message = compose(event, settings)
        if message is None:
            return skipped(event)
        url = settings["webhook_url"] or (
            f"{ENDPOINT}?access_token={quote(settings['access_token'], safe='')}")
        params = None
        if settings["secret"]:
            timestamp = int(time.time() * 1000)
            params = {"timestamp": str(timestamp),
                      "sign": signature(settings["secret"], timestamp)}
        picture = (event.share.poster_url(settings["locale"])
                   if settings["poster"] and event.share is not None else None)
        text = fit(message, lambda shown: with_picture(shown, picture), utf8_within(MAX_TEXT_BYTES))
        reply = http.request(context, "POST", url, params=params, json={
            "msgtype": "markdown", "markdown": {"title": clip(message.title, MAX_TITLE_CHARS), "text": text}})
        return robot.answer(reply, "DingTalk", RETRYABLE)


def with_picture(message: Message, picture_url: str | None) -> str:
    """The markdown, and the poster under it when there is one."""
    text = message.markdown()
    if picture_url:
        text += f"\n\n![{message.title.replace(']', '］')}]({picture_url})"
    return text
