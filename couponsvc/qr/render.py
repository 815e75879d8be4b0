"""QR code images of a payload: PNG for screens, SVG for print.

`scale` is the size of one module (one black or white square) in pixels. Error
correction M (15 %) and the 4-module quiet zone the standard asks for. The same
payload and scale always give the same bytes, so an ETag can be a hash of the inputs.
"""

from __future__ import annotations

import io
from decimal import Decimal

import qrcode
from qrcode.constants import ERROR_CORRECT_M
from qrcode.image.pil import PilImage
from qrcode.image.svg import SvgPathFillImage

DEFAULT_SCALE = 8
MIN_SCALE = 1
MAX_SCALE = 40
BORDER = 4


class _ModuleSvgImage(SvgPathFillImage):
    """One path on a white background, drawn in a coordinate system of modules.

    qrcode's SVG images count `box_size / 10` millimetres per module. Here the path
    and the viewBox count modules (build it with box_size 1) and `svg()` sets the
    width and height in pixels, so a larger scale costs no extra bytes.
    """

    def units(self, pixels, text=True):
        if not text:
            return Decimal(pixels)
        return f"{Decimal(pixels).normalize():f}"


def png(payload: str, scale: int = DEFAULT_SCALE) -> bytes:
    """The QR code as a black-and-white PNG, `scale` pixels per module."""
    _check_scale(scale)
    image = _qr(payload, box_size=scale).make_image(image_factory=PilImage)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def svg(payload: str, scale: int = DEFAULT_SCALE) -> bytes:
    """The QR code as a standalone SVG document, `scale` pixels per module."""
    _check_scale(scale)
    image = _qr(payload, box_size=1).make_image(image_factory=_ModuleSvgImage)
    root = image.get_image()
    size = f"{image.pixel_size * scale}px"
    root.set("width", size)
    root.set("height", size)
    root.set("shape-rendering", "crispEdges")  # no hairlines between adjacent modules
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue()


def _check_scale(scale: int) -> None:
    if isinstance(scale, bool) or not isinstance(scale, int):
        raise TypeError("scale must be an integer")
    if not MIN_SCALE <= scale <= MAX_SCALE:
        raise ValueError(f"scale must be between {MIN_SCALE} and {MAX_SCALE}, got {scale}")


def _qr(payload: str, box_size: int) -> qrcode.QRCode:
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=box_size, border=BORDER)
    qr.add_data(payload)
    qr.make(fit=True)
    return qr
