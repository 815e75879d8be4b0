"""`dingtalk`: a DingTalk (钉钉) custom group robot announcing deals as markdown.

POST `{"msgtype": "markdown", "markdown": {"title", "text"}}` to
`https://oapi.dingtalk.com/robot/send?access_token=TOKEN` (the config holds the full
URL or the token). With a signing secret (`SEC…`, the robot's 加签 setting) every call
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
from .messages import ANNOUNCED, AnnouncementSchema, compose, skipped

ENDPOINT = "https://oapi.dingtalk.com/robot/send"
MAX_TEXT_BYTES = 20000
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

    @validates_schema
    def _one_target(self, data: dict[str, Any], **_: Any) -> None:
        if (data.get("webhook_url") is None) == (data.get("access_token") is None):
            raise ValidationError("give either webhook_url or access_token", "webhook_url")


class DingTalkAdapter:
    name = "dingtalk"
    kind = "social"
    events = ANNOUNCED
    config_schema = DingTalkConfig

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
        text = robot.truncate_utf8(message.markdown(), MAX_TEXT_BYTES)
        reply = http.request(context, "POST", url, params=params, json={
            "msgtype": "markdown", "markdown": {"title": message.title, "text": text}})
        return robot.answer(reply, "DingTalk", RETRYABLE)
