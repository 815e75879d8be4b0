import io
import re
import xml.etree.ElementTree as ET

import pytest
import zxingcpp
from PIL import Image, ImageDraw

from couponsvc.qr import render

PAYLOAD = (
    "CPN1.8BZ5JFFHPUES.cmp_01JD8Y3K2Q9V7M4T6X0A5B8C1D.1798235297."
    "YpZzjjxSBC2CNKJlFoCdObdAtEkgl97otyHEh0tLwDxYQ0Vd6SPVXrd1y3O7cgWPe-54CnKI0VUjVTbDx3PcCQ"
)
SVG = "{http://www.w3.org/2000/svg}"


def decode(image: Image.Image) -> list[str]:
    return [barcode.text for barcode in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]


def open_png(data: bytes) -> Image.Image:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def rasterise(svg: bytes) -> Image.Image:
    """Draw the SVG's path of axis-aligned squares at its declared pixel size."""
    root = ET.fromstring(svg)
    size = int(root.get("width").removesuffix("px"))
    _, _, view, _ = map(float, root.get("viewBox").split())
    scale = size / view
    image = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(image)
    d = root.find(f"{SVG}path").get("d")
    for x0, y0, x1, y1 in re.findall(r"M([\d.]+),([\d.]+)H([\d.]+)V([\d.]+)H[\d.]+z", d):
        box = [float(v) * scale for v in (x0, y0, x1, y1)]
        draw.rectangle([box[0], box[1], box[2] - 1, box[3] - 1], fill=0)
    return image


@pytest.mark.parametrize("scale", [render.MIN_SCALE, 2, render.DEFAULT_SCALE, render.MAX_SCALE])
def test_png_decodes_to_the_payload(scale):
    image = open_png(render.png(PAYLOAD, scale))
    assert image.mode in ("1", "L")
    assert decode(image) == [PAYLOAD]


def test_png_size_is_modules_times_scale():
    small = open_png(render.png(PAYLOAD, 1))
    modules = small.width
    assert small.size == (modules, modules)
    assert open_png(render.png(PAYLOAD, 8)).size == (modules * 8, modules * 8)
    # The quiet zone: 4 white modules on every side.
    image = open_png(render.png(PAYLOAD, 8)).convert("L")
    assert image.crop((0, 0, 32, image.height)).getextrema() == (255, 255)
    assert image.crop((0, 0, image.width, 32)).getextrema() == (255, 255)
    assert image.crop((image.width - 32, 0, image.width, image.height)).getextrema() == (255, 255)


def test_png_default_scale():
    assert render.png(PAYLOAD) == render.png(PAYLOAD, render.DEFAULT_SCALE)


def test_svg_is_well_formed_and_grows_with_scale():
    sizes = []
    for scale in (1, render.DEFAULT_SCALE, render.MAX_SCALE):
        root = ET.fromstring(render.svg(PAYLOAD, scale))
        assert root.tag == f"{SVG}svg"
        width, height = root.get("width"), root.get("height")
        assert width == height and width.endswith("px")
        sizes.append(int(width.removesuffix("px")))
    modules = sizes[0]
    assert sizes == [modules, modules * render.DEFAULT_SCALE, modules * render.MAX_SCALE]
    png_modules = open_png(render.png(PAYLOAD, 1)).width
    assert modules == png_modules


def test_svg_is_a_standalone_document_on_white():
    data = render.svg(PAYLOAD)
    assert data.startswith(b"<?xml")
    root = ET.fromstring(data)
    assert root.find(f"{SVG}rect").get("fill") == "white"
    assert root.find(f"{SVG}path") is not None


@pytest.mark.parametrize("scale", [render.DEFAULT_SCALE, 3])
def test_svg_draws_the_same_code_as_the_png(scale):
    drawn = rasterise(render.svg(PAYLOAD, scale))
    assert decode(drawn) == [PAYLOAD]
    assert drawn.tobytes() == open_png(render.png(PAYLOAD, scale)).convert("L").tobytes()


@pytest.mark.parametrize("draw", [render.png, render.svg])
def test_same_input_gives_identical_bytes(draw):
    assert draw(PAYLOAD, 8) == draw(PAYLOAD, 8)
    assert draw(PAYLOAD, 8) != draw(PAYLOAD + "A", 8)


@pytest.mark.parametrize("draw", [render.png, render.svg])
@pytest.mark.parametrize("scale", [0, -1, render.MAX_SCALE + 1])
def test_scale_out_of_range_is_refused(draw, scale):
    with pytest.raises(ValueError):
        draw(PAYLOAD, scale)


@pytest.mark.parametrize("draw", [render.png, render.svg])
@pytest.mark.parametrize("scale", [8.0, "8", True])
def test_scale_must_be_an_integer(draw, scale):
    with pytest.raises(TypeError):
        draw(PAYLOAD, scale)


def test_png_is_small():
    assert len(render.png(PAYLOAD, render.DEFAULT_SCALE)) < 2_000
