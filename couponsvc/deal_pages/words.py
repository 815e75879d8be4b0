"""What the poster, the deal page and the embed card say about a deal, in the request's
language or one forced (`force_locale`): prices, progress, state, stores, sales end.

Every sentence goes through the gettext catalogue (Chinese by default on the pages and
the poster); the templates only place what is made here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask_babel import force_locale, gettext, ngettext

from ..promotion.deal import Deal, DealStore
from ..promotion.poster import PosterText
from ..timeutil import utcnow

SYMBOLS = {"CNY": "¥", "RMB": "¥"}
CHINA = timedelta(hours=8)
POSTER_STORES = 3


@dataclass(frozen=True)
class DealWords:
    """A deal as words: the view model of the page, the card and the poster."""

    price: str
    list_price: str | None
    progress: str
    sold: str  # "已售 12 份，15 份成团"
    badge: str | None
    sales_end: str
    stores_heading: str
    store_lines: tuple[str, ...]  # "文清路店 · 赣州 文清路 1 号"
    store_places: tuple[str, ...]  # "赣州 文清路 1 号"
    description: tuple[str, ...]  # paragraphs
    action: str  # the storefront button
    caption: str  # under the poster's QR code
    summary: str  # og:description: "¥39.90（原价 ¥88）· 还差 3 人成团 · 截止 …"


def price_label(cents: int, currency: str) -> str:
    """`¥39.90`, `¥88` (whole amounts without decimals), `12.50 USD`."""
    amount = (Decimal(cents) / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    digits = f"{amount:,.2f}".removesuffix(".00")
    symbol = SYMBOLS.get(currency.upper())
    return f"{symbol}{digits}" if symbol else f"{digits} {currency.upper()}"


def deal_words(deal: Deal, now: datetime | None = None) -> DealWords:
    now = now or utcnow()
    price = price_label(deal.price, deal.currency)
    list_price = (price_label(deal.list_price, deal.currency)
                  if deal.list_price is not None and deal.list_price > deal.price else None)
    progress = progress_label(deal)
    sales_end = sales_end_label(deal)
    badge = state_label(deal, now)
    summary_parts = [gettext("%(price)s (list price %(list_price)s)", price=price,
                             list_price=list_price) if list_price else price, progress]
    if badge:
        summary_parts.append(badge)
    summary_parts.append(sales_end)
    return DealWords(
        price=price, list_price=list_price, progress=progress, sold=sold_label(deal), badge=badge,
        sales_end=sales_end, stores_heading=stores_heading(len(deal.stores)),
        store_lines=tuple(store_line(store) for store in deal.stores),
        store_places=tuple(store_place(store) for store in deal.stores),
        description=tuple(p.strip() for p in deal.description.split("\n") if p.strip()),
        action=gettext("Buy it in the shop"),
        caption=gettext("Scan to buy") if deal.storefront else gettext("Scan to see the deal"),
        summary=" · ".join(summary_parts),
    )


def progress_label(deal: Deal) -> str:
    if deal.tipped:
        return gettext("Tipped: the deal is on")
    return ngettext("%(num)d more buyer to tip", "%(num)d more buyers to tip", deal.remaining)


def sold_label(deal: Deal) -> str:
    if deal.tipped:
        return ngettext("%(num)d sold", "%(num)d sold", deal.sold)
    return ngettext("%(num)d sold; the deal tips at %(goal)d",
                    "%(num)d sold; the deal tips at %(goal)d", deal.sold, goal=deal.min_group_size)


def state_label(deal: Deal, now: datetime) -> str | None:
    """A word on the deal's state beside its progress, when it is not simply on sale."""
    if deal.status == "failed":
        return gettext("Did not tip")
    if deal.status == "ended" or (deal.status in ("active", "paused") and deal.sales_end <= now):
        return gettext("Ended")
    if deal.status == "cancelled":
        return gettext("Cancelled")
    if deal.status == "paused":
        return gettext("Paused")
    if deal.status == "draft":
        return gettext("Not published")
    if deal.sales_start > now:
        return gettext("Coming soon")
    return None


def sales_end_label(deal: Deal) -> str:
    return gettext("Sales end %(time)s", time=local_time(deal.sales_end, deal.timezone))


def local_time(moment: datetime, timezone: str) -> str:
    """`2026-05-08 22:00` in the merchant's zone; its UTC offset added outside China's."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("Asia/Shanghai")
    local = moment.astimezone(zone) if moment.tzinfo else moment.replace(tzinfo=UTC).astimezone(zone)
    text = local.strftime("%Y-%m-%d %H:%M")
    offset = local.utcoffset() or timedelta(0)
    if offset != CHINA:
        sign, minutes = ("+" if offset >= timedelta(0) else "-"), abs(int(offset.total_seconds())) // 60
        text += f" (UTC{sign}{minutes // 60:02d}:{minutes % 60:02d})"
    return text


def stores_heading(count: int) -> str:
    if count > POSTER_STORES:
        return ngettext("Where to use it (%(num)d store)", "Where to use it (%(num)d stores)", count)
    return gettext("Where to use it")


def store_line(store: DealStore) -> str:
    """`文清路店 · 赣州 文清路 1 号`: the store and where it is."""
    where = store_place(store)
    return f"{store.name} · {where}" if where else store.name


def store_place(store: DealStore) -> str:
    """Where the store is: its city and address (the city once, if the address names it)."""
    if store.city and not store.address.startswith(store.city):
        return f"{store.city} {store.address}".strip()
    return store.address


def poster_text(deal: Deal, language: str) -> PosterText:
    with force_locale(language):
        words = deal_words(deal)
        return PosterText(
            merchant=deal.merchant_name, title=deal.title, price=words.price,
            list_price=words.list_price, progress=words.progress,
            progress_fraction=round(deal.progress, 2), badge=words.badge,
            stores_heading=words.stores_heading, stores=words.store_lines[:POSTER_STORES],
            sales_end=words.sales_end, caption=words.caption, link=deal.link)
