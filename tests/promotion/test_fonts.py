"""The poster's font: found at run time, and only if it draws Chinese (no tofu)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from couponsvc.promotion.fonts import (
    NOT_A_CHARACTER,
    FontFace,
    draws,
    find_fonts,
    has_glyph,
    truetype,
)

DEJAVU = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
NOTO_TTC = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"


def ink(face: FontFace, text: str, size: int = 64) -> np.ndarray:
    mask = truetype(face, size).getmask(text)
    return np.asarray(mask, dtype=np.uint8).reshape(mask.size[1], mask.size[0])


def test_the_font_found_draws_chinese_with_real_glyphs(fonts):
    """Independently of `has_glyph`: each character's ink differs from the .notdef box's, and
    from every other character's (tofu would be the same box every time)."""
    face = fonts.regular
    notdef = ink(face, NOT_A_CHARACTER)
    seen = []
    for ch in "还差人成团已截止门店":
        drawn = ink(face, ch)
        assert drawn.size and drawn.any(), ch
        assert drawn.shape != notdef.shape or not np.array_equal(drawn, notdef), ch
        assert not any(drawn.shape == other.shape and np.array_equal(drawn, other) for other in seen), ch
        seen.append(drawn)
    assert "CJK" in truetype(face, 32).getname()[0]


def test_a_chinese_face_of_the_collection_is_chosen(fonts):
    family, _style = truetype(fonts.regular, 32).getname()
    assert family.endswith(" SC"), family
    assert fonts.bold is not None and truetype(fonts.bold, 32).getname()[1] == "Bold"


def test_a_font_without_chinese_is_refused():
    if not os.path.exists(DEJAVU):
        pytest.skip("fonts-dejavu-core is not installed")
    assert not draws(FontFace(DEJAVU), "团购")
    assert draws(FontFace(DEJAVU), "Deal")
    assert find_fonts(DEJAVU) is None


def test_a_configured_collection_gets_its_chinese_face():
    found = find_fonts(NOTO_TTC)
    assert found is not None and found.bold is None
    assert truetype(found.regular, 32).getname()[0].endswith(" SC")


def test_not_a_font_is_refused(tmp_path):
    junk = tmp_path / "junk.ttf"
    junk.write_bytes(b"not a font at all")
    assert find_fonts(str(junk)) is None


def test_has_glyph_tells_emoji_and_controls_from_letters(fonts):
    assert has_glyph(fonts.regular, "团") and has_glyph(fonts.regular, "¥") and has_glyph(fonts.regular, "A")
    assert not has_glyph(fonts.regular, "\U0001f525")  # 🔥: Noto Sans CJK has no emoji
    assert not has_glyph(fonts.regular, NOT_A_CHARACTER)
