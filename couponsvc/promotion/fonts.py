"""The CJK font the poster is drawn in, found at run time; never tofu.

Where the font comes from, in order:
1. `COUPONSVC_POSTER_FONT`: a font file (`.ttc`, `.otf`, `.ttf`); in a collection the face
   whose family name ends in " SC" (Simplified Chinese) is taken, else its first face.
2. fontconfig: `fc-match 'Noto Sans CJK SC'` (and `:bold` for the titles), as Debian's and
   Ubuntu's `fonts-noto-cjk` package installs it.
3. The paths where distributions put Noto Sans CJK.

A candidate is taken only if it really draws Chinese: fontconfig answers its best match
even when no CJK font is installed (DejaVu Sans, say), whose Chinese would be drawn as
empty boxes ("tofu", the font's `.notdef` glyph). `draws(face, text)` compares each
character's rendering with the `.notdef` one. No font found: `find_fonts` answers None and
the poster endpoint refuses with `503 poster_font_missing` rather than draw boxes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from dataclasses import dataclass
from functools import lru_cache

from PIL import ImageFont

FAMILY = "Noto Sans CJK SC"
CJK_SAMPLE = "团购价成还差人已截止门店"
KNOWN_FILES = (
    # Debian, Ubuntu (fonts-noto-cjk)
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
     "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"),
    # Fedora (google-noto-sans-cjk-fonts), Arch (noto-fonts-cjk), Alpine (font-noto-cjk)
    ("/usr/share/fonts/google-noto-sans-cjk-fonts/NotoSansCJK-Regular.ttc",
     "/usr/share/fonts/google-noto-sans-cjk-fonts/NotoSansCJK-Bold.ttc"),
    ("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
     "/usr/share/fonts/noto-cjk/NotoSansCJK-Bold.ttc"),
    ("/usr/share/fonts/noto/NotoSansCJK-Regular.ttc", "/usr/share/fonts/noto/NotoSansCJK-Bold.ttc"),
)
NOT_A_CHARACTER = "\U0010fffd"  # a private-use code point no font draws: its .notdef glyph
_PROBE_SIZE = 48
_FC_TIMEOUT = 10


@dataclass(frozen=True)
class FontFace:
    path: str
    index: int = 0


@dataclass(frozen=True)
class PosterFonts:
    """The faces the poster uses; `bold` is None where only one weight was found (the
    poster then thickens its headings with a stroke)."""

    regular: FontFace
    bold: FontFace | None = None

    def font(self, size: int, *, bold: bool = False) -> ImageFont.FreeTypeFont:
        face = self.bold if bold and self.bold is not None else self.regular
        return truetype(face, size)

    @property
    def identity(self) -> str:
        """What names these fonts in a cache key: a file changed in place changes it."""
        return "|".join(_stamp(face) for face in (self.regular, self.bold) if face is not None)


@lru_cache(maxsize=64)
def truetype(face: FontFace, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(face.path, size, index=face.index)


_lock = threading.Lock()


@lru_cache(maxsize=8)
def find_fonts(configured: str | None) -> PosterFonts | None:
    """The poster's fonts (see the module), or None when no font that draws Chinese is found.
    Cached per process; a font installed later is seen after a restart."""
    with _lock:
        if configured:
            face = _face_of_file(configured)
            return PosterFonts(face) if face is not None and draws(face, CJK_SAMPLE) else None
        for regular, bold in _candidates():
            if regular is None or not draws(regular, CJK_SAMPLE):
                continue
            if bold is not None and not draws(bold, CJK_SAMPLE):
                bold = None
            return PosterFonts(regular, bold)
        return None


def draws(face: FontFace, text: str) -> bool:
    """Whether the face has a glyph of every (non-space) character of `text`."""
    return all(has_glyph(face, ch) for ch in text if not ch.isspace())


@lru_cache(maxsize=4096)
def has_glyph(face: FontFace, ch: str) -> bool:
    """Whether `ch` is drawn with a glyph of its own, not as the `.notdef` box (or nothing)."""
    font = truetype(face, _PROBE_SIZE)
    drawn = _ink(font, ch)
    return drawn is not None and drawn != _ink(font, NOT_A_CHARACTER)


def _ink(font: ImageFont.FreeTypeFont, ch: str) -> tuple | None:
    mask = font.getmask(ch)
    box = mask.getbbox()
    if box is None:
        return None
    return box, bytes(mask)


def _candidates():
    """(regular, bold) pairs to try, in order, found lazily."""
    yield _fontconfig()
    for regular, bold in KNOWN_FILES:
        yield _face_of_file(regular), _face_of_file(bold)


def _face_of_file(path: str) -> FontFace | None:
    """The face of a font file to draw Chinese with: a collection's " SC" face, else its first."""
    if not os.path.isfile(path):
        return None
    first = None
    for index in range(32):
        try:
            family, _style = ImageFont.truetype(path, _PROBE_SIZE, index=index).getname()
        except OSError:  # past the last face of a collection, or not a font at all
            break
        first = first or FontFace(path, 0)
        if (family or "").endswith(" SC"):
            return FontFace(path, index)
    return first


def _fontconfig() -> tuple[FontFace | None, FontFace | None]:
    fc_match = shutil.which("fc-match")
    if fc_match is None:
        return None, None
    return _fc_match(fc_match, FAMILY), _fc_match(fc_match, f"{FAMILY}:bold")


def _fc_match(fc_match: str, pattern: str) -> FontFace | None:
    try:
        done = subprocess.run([fc_match, "-f", "%{file}\t%{index}", pattern], capture_output=True,
                              text=True, timeout=_FC_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    path, _, index = done.stdout.strip().partition("\t")
    if done.returncode != 0 or not path or not os.path.isfile(path):
        return None
    return FontFace(path, int(index) if index.isdigit() else 0)


def _stamp(face: FontFace) -> str:
    try:
        stat = os.stat(face.path)
    except OSError:
        return f"{face.path}#{face.index}"
    return f"{face.path}#{face.index}:{stat.st_size}:{stat.st_mtime_ns}"
