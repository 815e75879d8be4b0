"""The promotion tests: the API's answers among them (the poster) are held to the OpenAPI
document as in tests/api/ (the `answers` fixture, autouse)."""

from __future__ import annotations

import io

import pytest
import zxingcpp
from PIL import Image

from couponsvc.promotion.fonts import find_fonts
from tests.api.conftest import answers  # noqa: F401  (autouse: every /api/v1 answer is checked)


def open_png(data: bytes) -> Image.Image:
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), data[:40]
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def qr_texts(image: Image.Image) -> list[str]:
    return [barcode.text for barcode in zxingcpp.read_barcodes(image)
            if barcode.format == zxingcpp.BarcodeFormat.QRCode]


@pytest.fixture(scope="session")
def fonts():
    found = find_fonts(None)
    assert found is not None, "no CJK font: apt-get install fonts-noto-cjk"
    return found
