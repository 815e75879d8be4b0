"""`mastodon`: a status announcing deals, through `POST /api/v1/statuses`, with the poster.

Form fields `status` (at most `max_characters`, 500 by default as on most instances),
`visibility` and `language`; headers `Authorization: Bearer <token>` (scopes
`write:statuses` and, for the poster, `write:media`) and `Idempotency-Key: <event id>`,
so a retry within the hour Mastodon keeps keys for returns the first status instead of
posting twice. With a poster to share (and `poster` left on) it is uploaded first,
`POST /api/v2/media` (multipart `file` and its `description`, the alt text), and attached
as `media_ids[]`; a media still processing (202 without a `url`) is asked for once more
(`GET /api/v1/media/:id`), then the delivery is retried in 5 s rather than posted with a
media Mastodon would refuse. A media the instance refuses for good (413, 415, 422) is left
out: the status goes without it.
A `ping` posts nothing: it checks the token with `GET /api/v1/accounts/verify_credentials`.
401, 403 and 422 are permanent (a revoked token, a missing scope, a refused status);
a 429 waits until `X-RateLimit-Reset` when no `Retry-After` is given. Mastodon's default
limits are declared (`rate_limits`): 300 requests in 5 minutes, 30 media in 30 minutes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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
from .messages import ANNOUNCED, AnnouncementSchema, clip, compose, skipped

PERMANENT = (401, 403, 422)
MEDIA_REFUSED = (413, 415, 422)
MAX_DESCRIPTION = 1500  # the alt text
PROCESSING_WAIT = 5.0


class MastodonConfig(AnnouncementSchema):
    instance_url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False,
                              metadata={"description": "e.g. https://mastodon.social"})
    access_token = credential(fields.String(required=True, validate=validate.Length(min=1, max=500),
                                        metadata={"description": "a token with write:statuses"}))
    visibility = fields.String(load_default="public",
                               validate=validate.OneOf(["public", "unlisted", "private"]))
    language = fields.String(load_default=None, allow_none=True,
                             validate=validate.Regexp(r"^[a-z]{2,3}$"),
                             metadata={"description": "ISO 639 code; default: the locale"})
    max_characters = fields.Integer(load_default=500, validate=validate.Range(min=100,
                                                                             max=100000))
    poster = fields.Boolean(load_default=True,
                            metadata={"description": "attach the deal's poster (needs write:media)"})


class MastodonAdapter:
    name = "mastodon"
    kind = "social"
    events = ANNOUNCED
    config_schema = MastodonConfig

    def rate_limits(self, settings: dict[str, Any]) -> tuple[RateLimit, ...]:
        return (RateLimit("requests", 300, 300), RateLimit("media", 30, 1800))

    def usage(self, event: Event, settings: dict[str, Any]) -> dict[str, int]:
        if event.type == "ping":
            return {"requests": 1}
        if compose(event, settings) is None:
            return {}
        if settings["poster"] and event.share is not None:
            return {"requests": 3, "media": 1}
        return {"requests": 1}

    def deliver(self, event: Event, config: dict[str, Any], context: Context) -> Outcome:
        settings = load_config(self, config)
        base = settings["instance_url"].rstrip("/")
        auth = {"Authorization": f"Bearer {settings['access_token']}"}
        if event.type == "ping":
            reply = http.request(context, "GET", f"{base}/api/v1/accounts/verify_credentials",
                                 headers=auth)
            return _outcome(reply)
        message = compose(event, settings)
        if message is None:
            return skipped(event)
        status = message.plain(settings["max_characters"])
        form = [("status", status), ("visibility", settings["visibility"]),
                ("language", settings["language"] or settings["locale"])]
        if settings["poster"] and event.share is not None:
            image = event.share.poster_png(settings["locale"])
            media_id = _upload(context, base, auth, image, message.title) if image else None
            if media_id is not None:
                form.append(("media_ids[]", media_id))
        reply = http.request(context, "POST", f"{base}/api/v1/statuses", data=form,
                             headers={**auth, "Idempotency-Key": event.id})
        return _outcome(reply)


def _upload(context: Context, base: str, auth: dict[str, str], image: bytes,
            description: str) -> str | None:
    """The id of the uploaded poster, ready to attach; None when the instance refuses it."""
    reply = http.request(context, "POST", f"{base}/api/v2/media", headers=auth,
                         data={"description": clip(description, MAX_DESCRIPTION)},
                         files={"file": ("poster.png", image, "image/png")})
    if reply.status_code in MEDIA_REFUSED:
        return None
    _outcome(reply)
    media = _json(reply)
    media_id = str(media.get("id") or "")
    if not media_id:
        raise RetryableError("the media upload answered without an id",
                             status_code=reply.status_code, excerpt=reply.excerpt)
    if reply.status_code == 202 and not media.get("url"):
        again = http.request(context, "GET", f"{base}/api/v1/media/{media_id}", headers=auth)
        _outcome(again)
        if again.status_code == 206 or not _json(again).get("url"):
            raise RetryableError("the poster is still being processed", status_code=again.status_code,
                                 excerpt=again.excerpt, retry_after=PROCESSING_WAIT)
    return media_id


def _json(reply: http.Reply) -> dict[str, Any]:
    try:
        found = reply.json()
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _outcome(reply: http.Reply) -> Outcome:
    if reply.status_code == 429 and "Retry-After" not in reply.headers:
        reset = _until(reply.headers.get("X-RateLimit-Reset"))
        raise RetryableError("HTTP 429: rate limited", status_code=429,
                             excerpt=reply.excerpt, retry_after=reset)
    http.raise_for_status(reply, permanent=PERMANENT)
    return http.outcome(reply)


def _until(value: str | None) -> float | None:
    """Seconds until an ISO 8601 `X-RateLimit-Reset`, clamped like Retry-After."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return http.clamp_wait((when - datetime.now(UTC)).total_seconds())
