"""The poster's drawing: size, the QR code a camera reads, text kept on the canvas, no tofu."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
import zxingcpp
from PIL import Image, ImageFilter

from couponsvc.promotion import poster
from couponsvc.promotion.fonts import NOT_A_CHARACTER, PosterFonts
from couponsvc.promotion.poster import ELLIPSIS, PosterText, drawable, wrap

from .conftest import open_png, qr_texts

LINK = "https://tuan.example.cn/d/cmp_01JD8Y3K2Q9V7M4T6X0A5B8C1D"
TEXT = PosterText(
    merchant="老街牛肉面", title="双人牛肉面套餐", price="¥39.90", list_price="¥88",
    progress="还差 3 人成团", progress_fraction=0.7, badge=None, stores_heading="适用门店",
    stores=("文清路店 · 赣州 文清路 1 号",), sales_end="截止 2026-05-08 22:00",
    caption="扫码查看团购", link=LINK)


def draw(fonts, **changes) -> Image.Image:
    return open_png(poster.render(dataclasses.replace(TEXT, **changes), fonts))


def test_the_poster_is_1080_by_1920_and_its_qr_holds_the_link(fonts):
    image = draw(fonts)
    assert image.size == (1080, 1920)
    assert qr_texts(image) == [LINK]


@pytest.mark.parametrize("width", [390, 540])
def test_the_qr_reads_from_a_phone_sized_copy(fonts, width):
    """A phone shows the poster about 390 px wide; a print scan is about as coarse."""
    image = draw(fonts).resize((width, width * 16 // 9), Image.Resampling.LANCZOS)
    assert qr_texts(image) == [LINK]


def test_the_qr_survives_a_chat_app_s_jpeg_and_a_crooked_blurred_print(fonts):
    """WeChat sends images on as lossy JPEG, smaller; a print is photographed askew and soft."""
    image = draw(fonts)
    buffer = io.BytesIO()
    image.resize((720, 1280), Image.Resampling.LANCZOS).save(buffer, "JPEG", quality=40)
    assert qr_texts(Image.open(io.BytesIO(buffer.getvalue()))) == [LINK]
    photo = image.convert("L").rotate(8, expand=True, fillcolor=255, resample=Image.Resampling.BICUBIC)
    photo = photo.filter(ImageFilter.GaussianBlur(3)).point(lambda v: 60 + v * 0.6)  # dull ink, grey paper
    assert qr_texts(photo) == [LINK]


def test_a_long_link_gets_a_denser_code_that_still_reads(fonts):
    long_link = "https://shop.example.cn/merchants/mer_01JD7Q8ZK3/deals/" + "x" * 120 + "?from=poster"
    image = draw(fonts, link=long_link)
    assert qr_texts(image) == [long_link]
    assert qr_texts(image.resize((540, 960), Image.Resampling.LANCZOS)) == [long_link]


def test_the_qr_has_its_quiet_zone(fonts):
    image = draw(fonts).convert("L")
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)[0]
    pos = found.position
    left, right = min(pos.top_left.x, pos.bottom_left.x), max(pos.top_right.x, pos.bottom_right.x)
    top, bottom = min(pos.top_left.y, pos.top_right.y), max(pos.bottom_left.y, pos.bottom_right.y)
    module = (right - left) / poster.qr_code(LINK).modules_count
    assert module >= poster.QR_MIN_MODULE - 0.5
    margin = int(4 * module) - 2
    pixels = np.asarray(image)
    for box in (pixels[top - margin:top - 2, left:right], pixels[bottom + 3:bottom + margin, left:right],
                pixels[top:bottom, left - margin:left - 2], pixels[top:bottom, right + 3:right + margin]):
        assert box.size and box.min() == 255


def test_a_long_title_wraps_into_three_lines_and_ends_with_an_ellipsis(fonts):
    font = fonts.font(64, bold=True)
    title = "双人牛肉面套餐：招牌牛肉面两碗＋卤蛋两个＋凉菜一份，周末节假日通用，无需预约，" * 4
    lines = wrap(title, font, 936, 3, fonts)
    assert len(lines) == 3 and lines[-1].endswith(ELLIPSIS)
    assert all(font.getlength(line) <= 936 for line in lines)
    assert "".join(lines).rstrip(ELLIPSIS) == title.replace(" ", "")[:len("".join(lines)) - 1]


def test_latin_words_stay_whole_and_closing_punctuation_never_starts_a_line(fonts):
    font = fonts.font(64)
    sentence = "Beef noodles for two, braised eggs and a cold dish"
    lines = wrap(sentence, font, 500, 5, fonts)
    assert len(lines) > 1 and " ".join(lines) == sentence  # broken between words only
    chinese = wrap("一二三四五六七八，九十", font, font.getlength("一二三四五六七八"), 5, fonts)
    assert all(not line.startswith("，") for line in chinese), chinese


def test_a_word_longer_than_the_line_is_broken(fonts):
    font = fonts.font(64)
    lines = wrap("x" * 200, font, 400, 10, fonts)
    assert len(lines) > 1 and all(font.getlength(line) <= 400 for line in lines)


def test_characters_the_font_lacks_are_left_out(fonts):
    assert drawable("🔥双人\u200b套餐\x07 ok", fonts) == "双人套餐 ok"
    assert drawable(NOT_A_CHARACTER * 3, fonts) == ""


def test_huge_text_everywhere_stays_on_the_canvas_and_the_qr_still_reads(fonts):
    """Every field far too long: the layout shortens them; the code at the foot is intact."""
    long = "很长的文字" * 80
    image = draw(fonts, merchant=long, title=long, price="¥" + "9" * 30, list_price="¥" + "8" * 30,
                 progress=long, badge=long, stores_heading=long, stores=(long,) * 10, sales_end=long,
                 caption=long)
    assert image.size == (1080, 1920)
    assert qr_texts(image) == [LINK]
    pixels = np.asarray(image.convert("RGB"))
    for edge in (pixels[:, :poster.MARGIN - 8], pixels[:, -(poster.MARGIN - 8):]):
        assert (edge == edge[:, :1]).all()  # only the background: nothing drawn to the sides


def test_the_chinese_title_is_drawn_in_its_glyphs_not_boxes(fonts):
    """The ink the title adds to the poster is the font's drawing of it, and differs from
    what .notdef boxes would look like."""
    image = np.asarray(draw(fonts, title="团购").convert("RGB"), dtype=int)
    merchant_font, title_font = fonts.font(40), fonts.font(64, bold=True)
    top = 72 + poster.line_height(merchant_font) + 20
    band = image[top:top + poster.line_height(title_font), :]
    white = (band.min(axis=2) > 200)  # white on the red header: the title's ink only
    rows, cols = np.nonzero(white)
    assert rows.size
    box = white[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    font = title_font
    glyphs = _mask(font, "团购")
    boxes = _mask(font, NOT_A_CHARACTER * 2)
    assert abs(box.shape[1] - glyphs.shape[1]) <= 4 and abs(box.shape[0] - glyphs.shape[0]) <= 4
    assert abs(int(box.sum()) - int(glyphs.sum())) < 0.1 * glyphs.sum()
    assert abs(int(boxes.sum()) - int(glyphs.sum())) > 0.1 * glyphs.sum()


def test_one_weight_only_still_draws_bold_headings(fonts):
    """Without a bold face the headings are thickened by a stroke; the poster still reads."""
    image = open_png(poster.render(TEXT, PosterFonts(fonts.regular)))
    assert qr_texts(image) == [LINK]


def test_the_key_names_what_is_drawn(fonts):
    assert poster.key(TEXT, fonts) == poster.key(dataclasses.replace(TEXT), fonts)
    changed = [dataclasses.replace(TEXT, progress="还差 2 人成团"), dataclasses.replace(TEXT, link=LINK + "x"),
               dataclasses.replace(TEXT, title="x")]
    assert len({poster.key(text, fonts) for text in [TEXT, *changed]}) == 4
    assert poster.key(TEXT, PosterFonts(fonts.regular)) != poster.key(TEXT, fonts)


def _mask(font, text: str) -> np.ndarray:
    mask = font.getmask(text)
    array = np.asarray(mask, dtype=np.uint8).reshape(mask.size[1], mask.size[0]) > 128
    rows, cols = np.nonzero(array)
    return array[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
