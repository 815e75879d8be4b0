"""`weibo`: a Weibo (微博) post sharing the deal, through `statuses/share`.

`POST {api_base}/2/statuses/share.json` (`api_base` is `https://api.weibo.com` unless
configured) with the form fields `access_token` and `status`, and the poster as `pic`
(multipart/form-data, a PNG under Weibo's 5 MB) when the deal has one; `rip` (the real
IP Weibo asks the caller to report) when configured. Weibo accepts a shared status only
when it holds a link on the app's bound safe domain (安全域名, set in the app's settings):
the config's `link_template` must lead to `safe_domain` or one of its subdomains, which is
checked when the integration is saved, and every status ends with that link. Weibo also
refuses "#topic#" words in a shared status: a `#` is written `＃`.

**Length.** A status is at most 140 characters as Weibo counts them (`weibo_length`, the
rule of Weibo's own composer that third-party clients reproduce): a character outside
ASCII (Chinese, full-width punctuation, emoji) counts 1, an ASCII one half (the total
rounded up), and a link 10 however long it is up to 140 bytes (Weibo shows it as a t.cn
short link), `(bytes - 140 + 20) / 2` beyond; a link to weibo.com, weibo.cn or t.cn counts
as the text it is. A longer announcement is shortened (its lines and title lose
characters, the link never), never refused.

**Answers.** Success is a 2xx with the status. An error is `{"error_code", "error",
"request"}` (the code a number or a string), mapped:

- the access token is expired, revoked or invalid (21327 expired_token, 21332
  invalid_access_token, 21301, 21314-21317, 21319): permanent, and the integration is
  disabled with the reason (re-authorise the app and save the new token; its deliveries
  are held meanwhile, and sent when it is enabled), rather than failing for days;
- over a rate limit (10022 IP, 10023 user, 10024 user for this API, 20016 posting too
  fast): retried after an hour, Weibo's window;
- the same status again (20017, 20019 repeat content, 20111): success: a retried delivery
  Weibo already published;
- 20032 (published, shown after a delay): success;
- Weibo busy or failing (10001-10003, 10009-10011): retried with the usual backoff;
- anything else (a parameter, the content refused, the link not on the safe domain, the
  app's permissions): permanent.

A `ping` posts nothing: it asks `POST {api_base}/oauth2/get_token_info` about the token
(its answer says when it expires). A user may post 30 times an hour (`rate_limits`).
"""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import urlsplit

from marshmallow import ValidationError, fields, validate, validates_schema

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
from .messages import ANNOUNCED, AnnouncementSchema, Message, compose, fit, skipped

DEFAULT_API_BASE = "https://api.weibo.com"
MAX_LENGTH = 140
MAX_PICTURE_BYTES = 5 * 1024 * 1024
HOUR = 3600.0
TOKEN_REFUSED = frozenset({21301, 21314, 21315, 21316, 21317, 21319, 21327, 21332})
RATE_LIMITED = frozenset({10022, 10023, 10024, 20016})
ALREADY_POSTED = frozenset({20017, 20019, 20111})
POSTED_LATER = frozenset({20032})
BUSY = frozenset({10001, 10002, 10003, 10009, 10010, 10011})
_URL = re.compile(r"https?://[-A-Za-z0-9_$.+!*()/\\,:;@&=?~#%\[\]']+")
_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_WEIBO_HOSTS = ("weibo.com", "weibo.cn", "t.cn")
NOT_A_HOST = "A host name such as shop.example.cn."
OFF_SAFE_DOMAIN = ("The link's host must be the safe domain or one of its subdomains: Weibo refuses "
                   "links to any other.")


def weibo_length(text: str) -> int:
    """`text`'s length as Weibo counts a status (see the module's docstring)."""
    units = 0
    for link in _URL.findall(text):
        size = _units(link)
        host = (urlsplit(link).hostname or "").lower()
        if not any(host == name or host.endswith("." + name) for name in _WEIBO_HOSTS):
            size = 20 if size <= 140 else size - 140 + 20
        units += size
        text = text.replace(link, "", 1)
    return math.ceil((units + _units(text)) / 2)


def _units(text: str) -> int:
    """Half-characters: 1 for ASCII, 2 for anything else (Weibo's `[^\\x00-\\x80]`)."""
    return sum(1 if ord(char) <= 0x80 else 2 for char in text)


def on_domain(host: str, domain: str) -> bool:
    host, domain = host.lower().rstrip("."), domain.lower().rstrip(".")
    return host == domain or host.endswith("." + domain)


class WeiboConfig(AnnouncementSchema):
    access_token = credential(fields.String(
        required=True, validate=validate.Length(min=1, max=500),
        metadata={"description": "the OAuth2 access token of the account that posts"}))
    api_base = fields.Url(load_default=DEFAULT_API_BASE, schemes={"http", "https"}, require_tld=False,
                          metadata={"description": "Weibo's API, https://api.weibo.com unless told"})
    safe_domain = fields.String(
        required=True, validate=validate.Length(min=3, max=253),
        metadata={"description": "the app's bound safe domain (安全域名); the deal link must be on it"})
    link_template = fields.String(
        required=True, validate=validate.Length(max=500),
        metadata={"description": "deal link, e.g. https://shop.example.cn/deals/{campaign_id}"
                  " ({campaign_id} and {merchant_id} are filled in)"})
    rip = fields.IP(load_default=None, allow_none=True,
                    metadata={"description": "the real IP Weibo asks a caller to report, if any"})
    poster = fields.Boolean(load_default=True,
                            metadata={"description": "attach the deal's poster as the picture"})

    @validates_schema
    def _link_on_safe_domain(self, data: dict[str, Any], **_: Any) -> None:
        domain, template = data.get("safe_domain"), data.get("link_template")
        if domain is None or template is None:
            return
        if not _HOST.match(domain.lower().rstrip(".")):
            raise ValidationError(NOT_A_HOST, "safe_domain")
        try:
            host = urlsplit(template.format(campaign_id="c", merchant_id="m")).hostname or ""
        except (KeyError, IndexError, ValueError):
            return  # the template's own check says what is wrong
        if not on_domain(host, domain):
            raise ValidationError(OFF_SAFE_DOMAIN, "link_template")


class WeiboAdapter:
    name = "weibo"
    kind = "social"
    events = ANNOUNCED
    config_schema = WeiboConfig

    def rate_limits(self, settings: dict[str, Any]) -> tuple[RateLimit, ...]:
        return (RateLimit("posts", 30, 3600),)

    def usage(self, event: Event, settings: dict[str, Any]) -> dict[str, int]:
        if event.type == "ping" or compose(event, settings) is None:
            return {}
        return {"posts": 1}

    def deliver(self, event: Event, config: dict[str, Any], context: Context) -> Outcome:
        settings = load_config(self, config)
        base = settings["api_base"].rstrip("/")
        if event.type == "ping":
            reply = http.request(context, "POST", f"{base}/oauth2/get_token_info",
                                 data={"access_token": settings["access_token"]})
            return answer(reply)
        message = compose(event, settings)
        if message is None:
            return skipped(event)
        form = {"access_token": settings["access_token"], "status": status(message)}
        if settings["rip"]:
            form["rip"] = str(settings["rip"])
        picture = None
        if settings["poster"] and event.share is not None:
            picture = event.share.poster_png(settings["locale"])
        if picture and len(picture) < MAX_PICTURE_BYTES:
            reply = http.request(context, "POST", f"{base}/2/statuses/share.json", data=form,
                                 files={"pic": ("poster.png", picture, "image/png")})
        else:
            reply = http.request(context, "POST", f"{base}/2/statuses/share.json", data=form)
        return answer(reply)


def status(message: Message) -> str:
    """The status: the announcement without "#", at most 140 Weibo characters, the link last."""
    def plain(shown: Message) -> str:
        text = "\n".join(part.replace("#", "＃") for part in (shown.title, *shown.lines) if part)
        return f"{text}\n{shown.link}" if shown.link else text
    return fit(message, plain, lambda text: weibo_length(text) <= MAX_LENGTH)


def answer(reply: http.Reply) -> Outcome:
    """What Weibo's answer means (see the module's docstring)."""
    try:
        found = reply.json()
    except ValueError:
        found = None
    code = _code(found.get("error_code")) if isinstance(found, dict) else None
    if code is None:
        http.raise_for_status(reply)
        return http.outcome(reply)
    said = f"Weibo error {code}: {found.get('error') or '?'}"
    kwargs = {"status_code": reply.status_code, "excerpt": reply.excerpt}
    if code in ALREADY_POSTED:
        return Outcome(reply.status_code, f"already posted ({said}): {reply.excerpt}")
    if code in POSTED_LATER:
        return Outcome(reply.status_code, f"posted, shown after a delay ({said})")
    if code in TOKEN_REFUSED:
        raise PermanentError(f"{said}: the access token is expired or revoked; authorise the app "
                             "again and save the new token", disable=True, **kwargs)
    if code in RATE_LIMITED:
        raise RetryableError(f"{said}: over Weibo's rate limit", retry_after=HOUR, **kwargs)
    if code in BUSY:
        raise RetryableError(said, **kwargs)
    raise PermanentError(said, **kwargs)


def _code(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None
