"""`wecom`: a WeCom (企业微信) group robot announcing deals as markdown messages.

POST `{"msgtype": "markdown", "markdown": {"content": ...}}` (at most 4096 bytes) to
the robot's webhook, `https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY`; the
config holds the full URL or just the key. Errcodes: 45009 (over the 20 messages a
minute limit) is retried after 60 s, -1 (busy) is retried, others (93000 invalid
webhook URL, 40008 bad message, ...) are permanent.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from marshmallow import ValidationError, fields, validate, validates_schema

from . import http, robot
from .adapter import Context, Event, Outcome, credential, load_config
from .messages import ANNOUNCED, AnnouncementSchema, compose, skipped

ENDPOINT = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"
MAX_CONTENT_BYTES = 4096
RETRYABLE = {45009: 60.0}


class WeComConfig(AnnouncementSchema):
    webhook_url = credential(fields.Url(
        load_default=None, allow_none=True, schemes={"http", "https"}, require_tld=False,
        metadata={"description": "the robot's webhook URL (holds its key)"}))
    key = credential(fields.String(load_default=None, allow_none=True,
                               validate=validate.Length(min=1, max=200),
                               metadata={"description": "the robot's key, instead of webhook_url"}))

    @validates_schema
    def _one_target(self, data: dict[str, Any], **_: Any) -> None:
        if (data.get("webhook_url") is None) == (data.get("key") is None):
            raise ValidationError("give either webhook_url or key", "webhook_url")


class WeComAdapter:
    name = "wecom"
    kind = "social"
    events = ANNOUNCED
    config_schema = WeComConfig

    def deliver(self, event: Event, config: dict[str, Any], context: Context) -> Outcome:
        settings = load_config(self, config)
        message = compose(event, settings)
        if message is None:
            return skipped(event)
        url = settings["webhook_url"] or f"{ENDPOINT}?key={quote(settings['key'], safe='')}"
        content = robot.truncate_utf8(message.markdown(), MAX_CONTENT_BYTES)
        reply = http.request(context, "POST", url,
                             json={"msgtype": "markdown", "markdown": {"content": content}})
        return robot.answer(reply, "WeCom", RETRYABLE)
