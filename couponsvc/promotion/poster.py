"""The share poster: a 1080×1920 PNG for WeChat Moments and groups, drawn with Pillow.

`render(text, fonts)` lays out words that were already said in the poster's language
(`PosterText`, made by the caller from a `Deal`) and the QR code of the deal link:

- a red header: the merchant, the title (bold, up to three lines), the price in large
  figures beside the list price struck through;
- the progress to the tipping point, in words ("还差 3 人成团" / "已成团") and as a bar;
- the stores (up to three, then "and N more") and the sales end;
- the QR code on white with its quiet zone, large enough for a phone camera to read from
  a screen or a print (error correction Q, at least 12 px a module), and a caption.

Text never leaves the canvas: every line is wrapped to its box and the last one that fits
is shortened with an ellipsis. Characters the font has no glyph for (an emoji in a title)
are left out rather than drawn as boxes. `key(text, fonts)` names the image (the ETag and
the cache key): the same words in the same fonts give the same poster.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
import unicodedata
from dataclasses import asdict, dataclass

import qrcode
from PIL import Image, ImageDraw, ImageFont
from qrcode.constants import ERROR_CORRECT_Q

from .fonts import PosterFonts, has_glyph

WIDTH, HEIGHT = 1080, 1920
LAYOUT_VERSION = "poster-1"  # change it when the drawing changes: every cached poster goes

MARGIN = 72
RED, DEEP_RED = (214, 48, 39), (168, 28, 24)
CREAM, GOLD = (255, 247, 232), (255, 214, 102)
INK, MUTED, LINE = (34, 34, 34), (110, 110, 110), (232, 226, 218)
WHITE, TRACK = (255, 255, 255), (250, 222, 212)
ELLIPSIS = "…"
QR_BORDER = 4  # modules of quiet zone, as the standard asks
QR_TARGET = 580  # px: the code's size, quiet zone included, in whole pixels a module
QR_MIN_MODULE, QR_MAX_MODULE = 10, 16  # px: a long link gets a denser code, never a tiny one


@dataclass(frozen=True)
class PosterText:
    """Everything the poster says, in its language; `link` is what its QR code holds."""

    merchant: str
    title: str
    price: str  # "¥39.90"
    list_price: str | None  # "¥88", drawn struck through
    progress: str  # "还差 3 人成团" / "已成团"
    progress_fraction: float  # 0..1, the bar
    badge: str | None  # "已结束", "已暂停": a state beside the progress, if any
    stores_heading: str  # "适用门店", or "适用门店（共 5 家）" when not all are listed
    stores: tuple[str, ...]  # "文清路店 · 文清路 1 号", at most three are drawn
    sales_end: str  # "截止 2026-05-08 22:00"
    caption: str  # under the QR: "扫码查看团购"
    link: str


def key(text: PosterText, fonts: PosterFonts) -> str:
    """The poster's name: a hash of its words, its fonts and the layout's version."""
    blob = json.dumps([LAYOUT_VERSION, fonts.identity, asdict(text)], ensure_ascii=False,
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


_lock = threading.Lock()  # FreeType faces are shared between threads: draw one poster at a time


def render(text: PosterText, fonts: PosterFonts) -> bytes:
    with _lock:
        image = _Poster(fonts).draw(text)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


class _Poster:
    def __init__(self, fonts: PosterFonts) -> None:
        self.fonts = fonts
        self.image = Image.new("RGB", (WIDTH, HEIGHT), CREAM)
        self.draw_ = ImageDraw.Draw(self.image)

    def font(self, size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
        return self.fonts.font(size, bold=bold)

    def fake_bold(self, bold: bool) -> int:
        """A stroke that thickens a heading when no bold face was found."""
        return 1 if bold and self.fonts.bold is None else 0

    def draw(self, t: PosterText) -> Image.Image:
        code = qr_code(t.link)
        header_bottom = self.header(t)
        card_bottom = self.progress_card(t, header_bottom + 40)
        qr_top = self.qr_block(t, code)
        self.stores_block(t, card_bottom + 40, qr_top - 32)
        return self.image

    # -- blocks ----------------------------------------------------------------------------

    def header(self, t: PosterText) -> int:
        """The red header: merchant, title, price; the y where it ends."""
        d, inner = self.draw_, WIDTH - 2 * MARGIN
        merchant_font, title_font = self.font(40), self.font(64, bold=True)
        price_font = self.sized(t.price, 128, inner * 0.62, bold=True)
        merchant = [fit(t.merchant, merchant_font, inner, self.fonts)]
        title = wrap(t.title, title_font, inner, 3, self.fonts)
        title_top = 72 + line_height(merchant_font) + 20
        baseline = title_top + len(title) * (line_height(title_font) + 10) + 18 \
            + int(price_font.size * 0.76)  # figures stand about 0.74 em tall
        bottom = baseline + 56
        d.rectangle([0, 0, WIDTH, bottom], fill=RED)
        d.rectangle([0, bottom - 14, WIDTH, bottom], fill=DEEP_RED)
        self.lines(merchant, MARGIN, 72, merchant_font, CREAM, 0)
        self.lines(title, MARGIN, title_top, title_font, WHITE, 10, bold=True)
        d.text((MARGIN - 4, baseline), t.price, font=price_font, fill=GOLD, anchor="ls",
               stroke_width=self.fake_bold(True), stroke_fill=GOLD)
        if t.list_price:
            left = MARGIN + price_font.getlength(t.price) + 32
            list_font = self.font(52)
            label = fit(t.list_price, list_font, MARGIN + inner - left, self.fonts)
            if label:
                d.text((left, baseline), label, font=list_font, fill=CREAM, anchor="ls")
                strike = baseline - int(list_font.size * 0.34)
                d.line([(left - 4, strike), (left + list_font.getlength(label) + 4, strike)],
                       fill=CREAM, width=5)
        return bottom

    def progress_card(self, t: PosterText, top: int) -> int:
        d = self.draw_
        height = 204
        d.rounded_rectangle([MARGIN, top, WIDTH - MARGIN, top + height], radius=28, fill=WHITE,
                            outline=LINE, width=2)
        x, inner = MARGIN + 44, WIDTH - 2 * MARGIN - 88
        badge_width = 0
        if t.badge:
            badge_font = self.font(36, bold=True)
            label = fit(t.badge, badge_font, inner // 3, self.fonts)
            badge_width = int(badge_font.getlength(label)) + 44
            bx = x + inner - badge_width
            d.rounded_rectangle([bx, top + 28, bx + badge_width, top + 84], radius=28, fill=INK)
            d.text((bx + badge_width / 2, top + 56), label, font=badge_font, fill=WHITE,
                   anchor="mm", stroke_width=self.fake_bold(True), stroke_fill=WHITE)
        progress_font = self.font(56, bold=True)
        label = fit(t.progress, progress_font, inner - badge_width - 24, self.fonts)
        d.text((x, top + 56), label, font=progress_font, fill=RED, anchor="lm",
               stroke_width=self.fake_bold(True), stroke_fill=RED)
        bar_top, bar_height = top + 100, 28
        d.rounded_rectangle([x, bar_top, x + inner, bar_top + bar_height], radius=14, fill=TRACK)
        filled = int(inner * max(0.0, min(1.0, t.progress_fraction)))
        if filled > 0:
            d.rounded_rectangle([x, bar_top, x + max(filled, bar_height), bar_top + bar_height],
                                radius=14, fill=RED)
        end_font = self.font(36)
        d.text((x, top + height - 38), fit(t.sales_end, end_font, inner, self.fonts),
               font=end_font, fill=MUTED, anchor="lm")
        return top + height

    def stores_block(self, t: PosterText, top: int, bottom: int) -> None:
        """The heading and the stores that fit between `top` and `bottom` (at most three)."""
        heading, line_font = self.font(40, bold=True), self.font(36)
        inner, step = WIDTH - 2 * MARGIN, 52
        if not t.stores or top + 60 > bottom:
            return
        self.draw_.text((MARGIN, top), fit(t.stores_heading, heading, inner, self.fonts),
                        font=heading, fill=INK, anchor="la", stroke_width=self.fake_bold(True),
                        stroke_fill=INK)
        y = top + 62
        for store in t.stores[:3]:
            if y + step > bottom:
                break
            self.draw_.text((MARGIN, y), fit(store, line_font, inner, self.fonts), font=line_font,
                            fill=INK, anchor="la")
            y += step

    def qr_block(self, t: PosterText, code: qrcode.QRCode) -> int:
        """The QR code above its caption at the foot of the poster; the y where its card starts."""
        d = self.draw_
        caption_font = self.font(38)
        caption_y = HEIGHT - 64
        modules = code.modules_count + 2 * QR_BORDER
        module = max(QR_MIN_MODULE, min(QR_MAX_MODULE, QR_TARGET // modules))
        size = modules * module
        top = caption_y - 52 - size
        x = (WIDTH - size) // 2
        d.rounded_rectangle([x - 16, top - 16, x + size + 16, top + size + 16], radius=24,
                            fill=WHITE, outline=LINE, width=2)
        self.image.paste(qr_image(code, module), (x, top))
        d.text((WIDTH // 2, caption_y), fit(t.caption, caption_font, WIDTH - 2 * MARGIN, self.fonts),
               font=caption_font, fill=MUTED, anchor="mm")
        return top - 16

    # -- text ------------------------------------------------------------------------------

    def lines(self, lines: list[str], x: int, y: int, font: ImageFont.FreeTypeFont, fill,
              spacing: int, bold: bool = False) -> None:
        """Draw `lines` from `y` down."""
        for line in lines:
            self.draw_.text((x, y), line, font=font, fill=fill, anchor="la",
                            stroke_width=self.fake_bold(bold), stroke_fill=fill)
            y += line_height(font) + spacing

    def sized(self, text: str, size: int, width: float, bold: bool = False) -> ImageFont.FreeTypeFont:
        """The font at `size`, or smaller until `text` fits in `width` (a price is never cut)."""
        font = self.font(size, bold=bold)
        while size > 24 and font.getlength(text) > width:
            size -= 8
            font = self.font(size, bold=bold)
        return font


def qr_code(link: str) -> qrcode.QRCode:
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_Q, box_size=1, border=QR_BORDER)
    qr.add_data(link)
    qr.make(fit=True)
    return qr


def qr_image(qr: qrcode.QRCode, module: int) -> Image.Image:
    """The QR code, quiet zone included, `module` px a module."""
    modules = qr.modules_count + 2 * QR_BORDER
    matrix = qr.get_matrix()  # with the border
    small = Image.new("L", (modules, modules), 255)
    small.putdata([0 if dark else 255 for row in matrix for dark in row])
    return small.resize((modules * module, modules * module), Image.Resampling.NEAREST).convert("RGB")


def line_height(font: ImageFont.FreeTypeFont) -> int:
    ascent, descent = font.getmetrics()
    return ascent + descent


# -- wrapping ---------------------------------------------------------------------------------


def drawable(text: str, fonts: PosterFonts) -> str:
    """`text` without what the font cannot draw (an emoji, a control character): no tofu."""
    face = fonts.regular
    kept = []
    for ch in unicodedata.normalize("NFC", text):
        if ch.isspace():
            kept.append(" ")
        elif unicodedata.category(ch)[0] != "C" and has_glyph(face, ch):
            kept.append(ch)
    return " ".join("".join(kept).split())


def fit(text: str, font: ImageFont.FreeTypeFont, width: float, fonts: PosterFonts) -> str:
    """One line of `text` no wider than `width`, shortened with an ellipsis if need be."""
    lines = wrap(text, font, width, 1, fonts)
    return lines[0] if lines else ""


def wrap(text: str, font: ImageFont.FreeTypeFont, width: float, max_lines: int,
         fonts: PosterFonts) -> list[str]:
    """`text` in lines no wider than `width`: Latin words kept whole where they fit, Chinese
    broken between any two characters, no line starting with closing punctuation; past
    `max_lines` the last line ends with an ellipsis."""
    tokens = _tokens(drawable(text, fonts))
    lines: list[str] = []
    current = ""
    for token in tokens:
        candidate = current + token
        if font.getlength(candidate.rstrip()) <= width:
            current = candidate
            continue
        if current.strip():
            if token[0] in _NO_LINE_START and len(current.rstrip()) > 1:
                current, token = current.rstrip()[:-1], current.rstrip()[-1] + token
            lines.append(current.rstrip())
        current = token.lstrip()
        while font.getlength(current.rstrip()) > width:  # a word wider than the line
            cut = _longest_prefix(current, font, width)
            lines.append(current[:cut])
            current = current[cut:]
    if current.strip():
        lines.append(current.rstrip())
    if len(lines) <= max_lines:
        return lines
    kept = lines[:max_lines]
    kept[-1] = _with_ellipsis(kept[-1], font, width)
    return kept


_NO_LINE_START = set("，。、；：！？）》」』】〉,.;:!?)]}%")


def _tokens(text: str) -> list[str]:
    """Words of Latin script (with their trailing space) and single characters of the rest."""
    tokens: list[str] = []
    word = ""
    for ch in text:
        if ch == " ":
            word += ch
            tokens.append(word)
            word = ""
        elif _breaks_anywhere(ch):
            if word:
                tokens.append(word)
                word = ""
            tokens.append(ch)
        else:
            word += ch
    if word:
        tokens.append(word)
    return tokens


def _breaks_anywhere(ch: str) -> bool:
    return unicodedata.east_asian_width(ch) in ("W", "F")


def _longest_prefix(text: str, font: ImageFont.FreeTypeFont, width: float) -> int:
    cut = 1
    while cut < len(text) and font.getlength(text[:cut + 1]) <= width:
        cut += 1
    return cut


def _with_ellipsis(line: str, font: ImageFont.FreeTypeFont, width: float) -> str:
    line = line.rstrip()
    while line and font.getlength(line + ELLIPSIS) > width:
        line = line[:-1].rstrip()
    return line + ELLIPSIS
