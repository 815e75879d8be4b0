"""`feishu`: a Feishu (飞书) / Lark custom group bot announcing deals as interactive cards.

POST to the bot's webhook (`https://open.feishu.cn/open-apis/bot/v2/hook/<token>`, or
Lark's `open.larksuite.com`) the JSON body `{"msg_type": "interactive", "card": ...}`:
a red header with the announcement's title, the deal's facts (price against list price,
progress to the tipping point) as plain text, and buttons: one to the deal link and,
when the deal has a poster, one to the poster (a custom bot cannot upload images, so the
poster is linked, not shown). With the bot's signing secret (签名校验) the body also
carries `timestamp` (unix seconds, as a string) and `sign` = base64(HMAC-SHA256 keyed with
"<timestamp>\\n<secret>" over an empty message): in the body, where DingTalk puts them in
the query. Feishu refuses a timestamp more than an hour from its clock, so each attempt
signs anew.

Feishu answers HTTP 200 with `{"code": 0, "msg": "success"}` (older bots:
`"StatusCode": 0`); any other code is a refusal: 9499 and 11232 (too many requests) are
retried after a minute, unless the 9499 says `Bad Request` (a body Feishu cannot read);
19021 (signature or timestamp), 19022 (IP not allowed), 19024 (keyword missing), 19001
(the hook's token is invalid) and the rest are permanent. A
custom bot takes 100 messages a minute and 5 a second (`rate_limits`); its request body
is at most 20 KB: a card over it is shortened, its buttons kept.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

from marshmallow import fields, validate

from . import http
from .adapter import (
    Context,
    Event,
    Outcome,
    PermanentError,
    RetryableError,
    credential,
    load_config,
)
from .limits import RateLimit
from .messages import ANNOUNCED, AnnouncementSchema, Message, compose, fit, skipped, word

MAX_BODY_BYTES = 20 * 1000
RETRYABLE = {9499: 60.0, 11232: 60.0}


def signature(secret: str, timestamp: int) -> str:
    """Feishu's `sign`: the HMAC's key is "<timestamp>\\n<secret>", its message empty."""
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


class FeishuConfig(AnnouncementSchema):
    webhook_url = credential(fields.Url(
        required=True, schemes={"http", "https"}, require_tld=False,
        metadata={"description": "the custom bot's webhook URL (holds its token)"}))
    secret = credential(fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=200),
        metadata={"description": "the bot's signing secret (签名校验), when it is set"}))
    poster = fields.Boolean(load_default=True,
                            metadata={"description": "add a button to the deal's poster"})


class FeishuAdapter:
    name = "feishu"
    kind = "social"
    events = ANNOUNCED
    config_schema = FeishuConfig

    def rate_limits(self, settings: dict[str, Any]) -> tuple[RateLimit, ...]:
        return (RateLimit("messages", 100, 60), RateLimit("messages", 5, 1))

    def usage(self, event: Event, settings: dict[str, Any]) -> dict[str, int]:
        return {} if compose(event, settings) is None else {"messages": 1}

    def deliver(self, event: Event, config: dict[str, Any], context: Context) -> Outcome:
        settings = load_config(self, config)
        message = compose(event, settings)
        if message is None:
            return skipped(event)
        signed: dict[str, str] = {}
        if settings["secret"]:
            timestamp = int(time.time())
            signed = {"timestamp": str(timestamp), "sign": signature(settings["secret"], timestamp)}
        buttons = _buttons(message, event, settings)
        body = fit(message, lambda shown: _body(signed, card(shown, buttons)),
                   lambda text: len(text.encode()) <= MAX_BODY_BYTES)
        reply = http.request(context, "POST", settings["webhook_url"], data=body.encode(),
                             headers={"Content-Type": "application/json; charset=utf-8"})
        return answer(reply)


def card(message: Message, buttons: list[dict[str, Any]]) -> dict[str, Any]:
    """A message card (JSON 1.0): header, the facts as plain text, the buttons."""
    elements: list[dict[str, Any]] = []
    if message.lines:
        elements.append({"tag": "div", "text": {"tag": "plain_text", "content": "\n".join(message.lines)}})
    if buttons:
        elements.append({"tag": "action", "actions": buttons})
    return {"config": {"wide_screen_mode": True},
            "header": {"template": "red", "title": {"tag": "plain_text", "content": message.title}},
            "elements": elements}


def _buttons(message: Message, event: Event, settings: dict[str, Any]) -> list[dict[str, Any]]:
    buttons = []
    if message.link:
        buttons.append(_button(message.link_label, message.link, "primary"))
    if settings["poster"] and event.share is not None:
        poster = event.share.poster_url(settings["locale"])
        if poster:
            buttons.append(_button(word(settings, "poster"), poster, "default"))
    return buttons


def _button(label: str, url: str, kind: str) -> dict[str, Any]:
    return {"tag": "button", "text": {"tag": "plain_text", "content": label}, "type": kind, "url": url}


def _body(signed: dict[str, str], content: dict[str, Any]) -> str:
    return json.dumps({**signed, "msg_type": "interactive", "card": content}, ensure_ascii=False,
                      separators=(",", ":"))


def answer(reply: http.Reply) -> Outcome:
    """The outcome of the bot's answer: `code` 0 is success, even in a 200."""
    if reply.status_code == 410 or reply.status_code == 429 or reply.status_code >= 500:
        http.raise_for_status(reply)
    try:
        found = reply.json()
    except ValueError:
        found = None
    code = _code(found)
    if code is None:
        http.raise_for_status(reply)
        raise RetryableError("Feishu answered without a code", status_code=reply.status_code,
                             excerpt=reply.excerpt)
    if code == 0 and 200 <= reply.status_code < 300:
        return http.outcome(reply)
    if code in RETRYABLE and not _bad_request(code, found):
        raise RetryableError(f"Feishu code {code}: too many requests", status_code=reply.status_code,
                             excerpt=reply.excerpt, retry_after=RETRYABLE[code])
    if code == 0:
        http.raise_for_status(reply)
    raise PermanentError(f"Feishu code {code}", status_code=reply.status_code, excerpt=reply.excerpt)


def _bad_request(code: int, found: dict) -> bool:
    """Feishu answers 9499 both to a bot sending too fast (`too many request`) and to a body
    it cannot read (`Bad Request`): the second would be refused again, however long it
    waited. Only a `msg` that says so is taken for it; anything else is waited on, as
    losing a message costs more than a few retries."""
    message = found.get("msg") or found.get("StatusMessage")
    return code == 9499 and isinstance(message, str) and message.strip().lower() == "bad request"


def _code(found: Any) -> int | None:
    if not isinstance(found, dict):
        return None
    for name in ("code", "StatusCode"):
        value = found.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None
