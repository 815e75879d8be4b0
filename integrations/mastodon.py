"""`mastodon`: a status announcing deals, through `POST /api/v1/statuses`.

Form fields `status` (at most `max_characters`, 500 by default as on most instances),
`visibility` and `language`; headers `Authorization: Bearer <token>` (scope
`write:statuses`) and `Idempotency-Key: <event id>`, so a retry within the hour
Mastodon keeps keys for returns the first status instead of posting twice.
A `ping` posts nothing: it checks the token with `GET /api/v1/accounts/verify_credentials`.
401, 403 and 422 are permanent (a revoked token, a missing scope, a refused status);
a 429 waits until `X-RateLimit-Reset` when no `Retry-After` is given.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import fields, validate

from . import http
from .adapter import Context, Event, Outcome, RetryableError, credential, load_config
from .messages import ANNOUNCED, AnnouncementSchema, compose, skipped

PERMANENT = (401, 403, 422)


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


class MastodonAdapter:
    name = "mastodon"
    kind = "social"
    events = ANNOUNCED
    config_schema = MastodonConfig

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
        form = {"status": message.plain(settings["max_characters"]),
                "visibility": settings["visibility"],
                "language": settings["language"] or settings["locale"]}
        reply = http.request(context, "POST", f"{base}/api/v1/statuses", data=form,
                             headers={**auth, "Idempotency-Key": event.id})
        return _outcome(reply)


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
