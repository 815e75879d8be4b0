"""Deal announcements for the social adapters: one template per event, Chinese by default.

Announced: `campaign.published` (a new deal), `campaign.tipped` (the deal is on),
`coupon.issued` when the order left the deal a few buyers short of its tipping point
(`0 < min_group_size - sold <= nearly_tipped_threshold`, not tipped), and `ping` (a
test message). Anything else composes to None: the adapter skips it without a call.

Every message has the deal's title, its price against the list price, its progress to
the tipping point and a link to the deal: the configured `link_template` filled in, else
the deal link the worker shares with the event (`Event.share`, integrations/share.py).

`fit` shortens a message for a channel's size limit: the title and the lines lose
characters, the link never does; a channel never gets a body it would refuse for its size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from marshmallow import Schema, ValidationError, fields, validate, validates

from .adapter import Event, Outcome
from .money import format_money

ANNOUNCED = frozenset({"campaign.published", "campaign.tipped", "coupon.issued", "ping"})
NEARLY_TIPPED = "nearly_tipped"

_TEMPLATES = {
    "zh": {
        "campaign.published": "新团购上线：{title}",
        "campaign.tipped": "已成团：{title}",
        NEARLY_TIPPED: "还差 {missing} 人成团：{title}",
        "ping": "couponsvc 测试消息",
        "ping_body": "集成配置正确，团购消息将发到这里。",
        "price": "团购价 {price}",
        "list_price": "原价 {list_price}，省 {saving}",
        "progress": "已售 {sold} / 成团 {min_group_size}",
        "missing": "还差 {missing} 人成团",
        "tipped": "已售 {sold}，已成团，券已生效",
        "link": "立即抢购",
        "poster": "查看海报",
        "separator": "，",
    },
    "en": {
        "campaign.published": "New deal: {title}",
        "campaign.tipped": "The deal is on: {title}",
        NEARLY_TIPPED: "{missing} more to go: {title}",
        "ping": "couponsvc test message",
        "ping_body": "The integration works; deal announcements will arrive here.",
        "price": "Deal price {price}",
        "list_price": "was {list_price}, save {saving}",
        "progress": "{sold} sold / {min_group_size} needed",
        "missing": "{missing} more to tip the deal",
        "tipped": "{sold} sold, the deal is on and coupons are active",
        "link": "Get the deal",
        "poster": "See the poster",
        "separator": ", ",
    },
}


class AnnouncementSchema(Schema):
    """Config fields every social adapter shares; each adapter's schema extends it."""

    locale = fields.String(load_default="zh", validate=validate.OneOf(sorted(_TEMPLATES)),
                           metadata={"description": "message language: zh (default) or en"})
    link_template = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=500),
        metadata={"description": "deal link, e.g. https://shop.example.cn/deals/{campaign_id}"
                  " ({campaign_id} and {merchant_id} are filled in)"})
    nearly_tipped_threshold = fields.Integer(
        load_default=3, validate=validate.Range(min=1, max=1000),
        metadata={"description": "announce an order that leaves at most this many missing"})

    @validates("link_template")
    def _check_link(self, value: str | None, **_: Any) -> None:
        if value is None:
            return
        try:
            link = value.format(campaign_id="c", merchant_id="m")
        except (KeyError, IndexError, ValueError) as error:
            raise ValidationError(
                "only {campaign_id} and {merchant_id} may be filled in") from error
        if not link.startswith(("https://", "http://")):
            raise ValidationError("the link must start with https:// or http://")


@dataclass(frozen=True)
class Message:
    title: str
    lines: tuple[str, ...]
    link: str | None
    link_label: str

    def markdown(self) -> str:
        """WeCom and DingTalk markdown: a heading, quoted lines, the link."""
        parts = [f"### {self.title}", *(f"> {line}" for line in self.lines)]
        if self.link:
            parts.append(f"[{self.link_label}]({self.link})")
        return "\n".join(parts)

    def plain(self, limit: int = 500) -> str:
        """Plain text of at most `limit` characters; the link is never cut."""
        tail = f"\n{self.link}" if self.link else ""
        text = "\n".join((self.title, *self.lines))
        room = limit - len(tail)
        if len(text) > room:
            text = text[:max(room - 1, 0)] + "…"
        return text + tail


def compose(event: Event, settings: dict[str, Any]) -> Message | None:
    """The message announcing `event`, or None when it is not announced."""
    words = _TEMPLATES[settings.get("locale") or "zh"]
    if event.type == "ping":
        return Message(words["ping"], (words["ping_body"],), None, words["link"])
    campaign = event.data.get("campaign")
    if event.type not in ANNOUNCED or not isinstance(campaign, dict):
        return None
    sold, needed = _int(campaign.get("sold")), _int(campaign.get("min_group_size"), 1)
    missing = needed - sold
    template = event.type
    if event.type == "coupon.issued":
        threshold = settings.get("nearly_tipped_threshold", 3)
        if campaign.get("tipped") or not 0 < missing <= threshold:
            return None
        template = NEARLY_TIPPED
    title = _one_line(campaign.get("title") or campaign.get("id") or "")
    lines = [_price_line(campaign, words)]
    if event.type == "campaign.tipped" or campaign.get("tipped"):
        lines.append(words["tipped"].format(sold=sold))
    elif needed > 1:
        progress = words["progress"].format(sold=sold, min_group_size=needed)
        if missing > 0:
            progress += words["separator"] + words["missing"].format(missing=missing)
        lines.append(progress)
    link = _link(settings.get("link_template"), campaign, event)
    if link is None and event.share is not None:
        link = event.share.link
    return Message(words[template].format(title=title, missing=missing),
                   tuple(line for line in lines if line), link, words["link"])


ELLIPSIS = "…"


def fit(message: Message, render: Callable[[Message], str], fits: Callable[[str], bool]) -> str:
    """`render(message)`, shortened until `fits` says it does: the longest of the title and
    the lines loses a tenth of its characters (and ends with "…") until the whole fits; the
    link is never cut. Should the link alone not fit, the lines go and the title is cut to
    nothing: what is left is the link."""
    text = render(message)
    while not fits(text):
        parts = [message.title, *message.lines]
        longest = max(range(len(parts)), key=lambda index: len(parts[index]))
        if len(parts[longest]) <= 1:
            return render(replace(message, title="", lines=()))
        kept = parts[longest].removesuffix(ELLIPSIS)
        kept = kept[:max(0, len(kept) - max(1, len(kept) // 10))] + ELLIPSIS
        parts[longest] = kept
        message = replace(message, title=parts[0], lines=tuple(parts[1:]))
        text = render(message)
    return text


def clip(text: str, limit: int) -> str:
    """`text` in at most `limit` characters, ending with "…" when cut."""
    return text if len(text) <= limit else text[:max(0, limit - 1)] + ELLIPSIS


def utf8_within(limit: int) -> Callable[[str], bool]:
    """`fits` for a limit in UTF-8 bytes (WeCom, DingTalk)."""
    return lambda text: len(text.encode()) <= limit


def word(settings: dict[str, Any], name: str) -> str:
    """One of the message words ("link", "poster", ...) in the config's language."""
    return _TEMPLATES[settings.get("locale") or "zh"][name]


def skipped(event: Event) -> Outcome:
    """What a social adapter returns, without any call, for an event it does not announce."""
    return Outcome(None, f"skipped: nothing to announce for this {event.type}")


def _price_line(campaign: dict[str, Any], words: dict[str, str]) -> str:
    currency = campaign.get("currency") or "CNY"
    price, list_price = campaign.get("price"), campaign.get("list_price")
    if not isinstance(price, int):
        return ""
    line = words["price"].format(price=format_money(price, currency))
    if isinstance(list_price, int) and list_price > price:
        line += words["separator"] + words["list_price"].format(
            list_price=format_money(list_price, currency),
            saving=format_money(list_price - price, currency))
    return line


def _link(template: str | None, campaign: dict[str, Any], event: Event) -> str | None:
    if not template:
        return None
    merchant_id = campaign.get("merchant_id") or event.merchant_id or ""
    return template.format(campaign_id=quote(str(campaign.get("id", "")), safe=""),
                           merchant_id=quote(str(merchant_id), safe=""))


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _one_line(text: str) -> str:
    """A title on one line, without the angle brackets markdown renderers act on."""
    return " ".join(str(text).split()).replace("<", "＜").replace(">", "＞")
