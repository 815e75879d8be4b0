"""The vendored libraries at work in chromium, served by the app and nothing else: the API
docs' Swagger UI, zxing-wasm reading a real coupon's QR image with its WebAssembly, and
@noble/ed25519 checking that QR's signature against /qr-keys, as the scanner page will."""

from __future__ import annotations

from urllib.parse import urlsplit

from couponsvc.static_assets import vendor_path
from tests.factories import Shop

from .conftest import PHONE, screenshot


def vendored(package: str, file: str) -> str:
    return f"/static/{vendor_path(package, file)}"


def block_other_hosts(page) -> list[str]:
    """Abort every request not for 127.0.0.1; the list of those attempted."""
    attempted: list[str] = []

    def handle(route):
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            attempted.append(route.request.url)
            route.abort()

    page.route("**/*", handle)
    return attempted


def operations_of(client) -> set[tuple[str, str]]:
    """(method, path) of every operation, and of every webhook (by its event's name)."""
    document = client.get("/api/v1/openapi.json").json
    return {(method.upper(), path)
            for section in ("paths", "webhooks")
            for path, operations in document.get(section, {}).items() for method in operations
            if method in ("get", "post", "put", "patch", "delete")}


SHOWN_OPERATIONS = """() => [...document.querySelectorAll(".opblock")].map(block => [
    block.querySelector(".opblock-summary-method").textContent,
    block.querySelector(".opblock-summary-path").dataset.path])"""


def test_the_api_docs_render_every_operation_from_vendored_files(client, page, new_context):
    attempted = block_other_hosts(page)
    served: dict[str, str] = {}
    page.on("response", lambda answer: served.setdefault(
        urlsplit(answer.url).path, answer.headers.get("content-type", "")))

    page.goto("/api/v1/docs")
    page.locator(".opblock").first.wait_for()
    shown = {tuple(operation) for operation in page.evaluate(SHOWN_OPERATIONS)}
    assert shown == operations_of(client)  # each under its tags
    assert page.locator(".opblock-summary-path[data-path='/api/v1/redemptions']").count() >= 1
    assert page.locator(".info .title").inner_text().startswith("couponsvc")
    screenshot(page, "api-docs-1280")

    assert attempted == []
    assert set(served) == {
        "/api/v1/docs", "/api/v1/openapi.json",
        vendored("swagger-ui-dist", "swagger-ui.css"),
        vendored("swagger-ui-dist", "swagger-ui-bundle.js"),
        vendored("swagger-ui-dist", "favicon-32x32.png"),
    }
    assert served[vendored("swagger-ui-dist", "swagger-ui-bundle.js")].startswith("text/javascript")

    phone = new_context(viewport=PHONE, is_mobile=True).new_page()
    assert block_other_hosts(phone) == []
    phone.goto("/api/v1/docs")
    phone.locator(".opblock").first.wait_for()
    assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(phone, "api-docs-390")


READ_QR = """async ([moduleUrl, wasmUrl, imageUrl]) => {
    const zxing = await import(moduleUrl);
    zxing.prepareZXingModule({overrides: {
        locateFile: (path, prefix) => path.endsWith(".wasm") ? wasmUrl : prefix + path}});
    const image = await (await fetch(imageUrl)).blob();
    const found = await zxing.readBarcodes(image, {formats: ["QRCode"]});
    return found.map(barcode => barcode.text);
}"""

VERIFY = """async ([moduleUrl, payload, keys]) => {
    const ed = await import(moduleUrl);
    const fromB64url = text => Uint8Array.from(
        atob(text.replace(/-/g, "+").replace(/_/g, "/")), c => c.charCodeAt(0));
    const cut = payload.lastIndexOf(".");
    const signature = fromB64url(payload.slice(cut + 1));
    const verdicts = async message => Promise.all(keys.map(key => ed.verifyAsync(
        signature, new TextEncoder().encode(message), fromB64url(key.x))));
    return {genuine: await verdicts(payload.slice(0, cut)),
            altered: await verdicts(payload.slice(0, cut).replace(/\\.(\\d+)$/, ".9$1"))};
}"""


def test_a_coupons_qr_is_read_and_its_signature_checked_with_the_vendored_libraries(client, page):
    coupon = Shop(client).coupon()
    attempted = block_other_hosts(page)
    types: dict[str, str] = {}
    page.on("response", lambda answer: types.setdefault(
        urlsplit(answer.url).path, answer.headers.get("content-type", "")))
    page.goto("/problems/")

    texts = page.evaluate(READ_QR, [vendored("zxing-wasm", "es/reader/index.js"),
                                    vendored("zxing-wasm", "reader/zxing_reader.wasm"),
                                    coupon["qr_url"]])
    assert texts == [coupon["qr_payload"]]
    assert types[vendored("zxing-wasm", "reader/zxing_reader.wasm")] == "application/wasm"

    keys = page.evaluate("() => fetch('/api/v1/qr-keys').then(answer => answer.json())")["keys"]
    verdicts = page.evaluate(VERIFY, [vendored("@noble/ed25519", "index.js"),
                                      coupon["qr_payload"], keys])
    assert verdicts == {"genuine": [True] + [False] * (len(keys) - 1),
                        "altered": [False] * len(keys)}
    assert attempted == []


def test_the_script_builds_run_htmx_uplot_and_zxing_globals(page):
    attempted = block_other_hosts(page)
    page.goto("/problems/")
    page.add_script_tag(url=vendored("htmx.org", "htmx.min.js"))
    page.add_script_tag(url=vendored("uplot", "uPlot.iife.min.js"))
    page.add_style_tag(url=vendored("uplot", "uPlot.min.css"))
    page.add_script_tag(url=vendored("zxing-wasm", "iife/reader/index.js"))
    assert page.evaluate("() => htmx.version").startswith("4.")
    assert page.evaluate("() => typeof ZXingWASM.readBarcodes") == "function"
    drawn = page.evaluate("""() => {
        const root = document.body.appendChild(document.createElement("div"));
        new uPlot({width: 600, height: 200, series: [{}, {label: "redeemed", stroke: "red"}]},
                  [[1, 2, 3], [4, 1, 6]], root);
        return [root.querySelectorAll("canvas").length,
                getComputedStyle(root.querySelector(".u-wrap")).position];
    }""")
    assert drawn == [1, "relative"]  # the canvas, and uPlot.min.css applied
    assert attempted == []


TRANSFERS = """() => [...performance.getEntriesByType("navigation"),
                      ...performance.getEntriesByType("resource")]
    .map(entry => [new URL(entry.name).pathname, entry.transferSize, entry.decodedBodySize])"""


def test_the_docs_travel_compressed_and_come_from_the_cache_on_reload(page):
    """What a phone downloads for /api/v1/docs: gzip on first load (about 0.5 MB for 2.5 MB
    of files), and on a reload only the page and the OpenAPI document (vendored files are
    immutable, so the browser does not even revalidate them)."""
    page.goto("/api/v1/docs")
    page.locator(".opblock").first.wait_for()
    first = {path: (sent, size) for path, sent, size in page.evaluate(TRANSFERS)}
    bundle = vendored("swagger-ui-dist", "swagger-ui-bundle.js")
    assert first[bundle][0] < first[bundle][1] / 3
    assert first["/api/v1/openapi.json"][0] < first["/api/v1/openapi.json"][1] / 5
    assert sum(sent for sent, _ in first.values()) < 700_000

    page.reload()
    page.locator(".opblock").first.wait_for()
    again = {path: sent for path, sent, _ in page.evaluate(TRANSFERS)}
    assert {path: again[path] for path in again if path.startswith("/static/vendor/")} == {
        path: 0 for path in first if path.startswith("/static/vendor/")}
