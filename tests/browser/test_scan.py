"""The scanner page (/scan) in Debian's chromium, the way a cashier uses it.

The camera is chromium's fake capture device fed a Y4M video of a real coupon's QR code,
written in the test's tmp dir. The file is a launch switch, so one chromium serves the
whole story: the page restarts the camera on a reload, and chromium opens the file again
then, so the test swaps the file (an atomic rename) before each reload to show another
code. What the page measured (QR frame → answer) and what it weighs are printed.
"""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image
from playwright.sync_api import expect
from sqlalchemy import select

from couponsvc.extensions import db
from couponsvc.models import Redemption
from couponsvc.qr import payload, render
from couponsvc.qr.keyring import KeyRing
from tests.browser.conftest import PHONE, browser_log, screenshot
from tests.factories import Shop

WIDTH, HEIGHT, FPS = 640, 480, 10
BLANK_FRAMES, QR_FRAMES = 10, 20  # a second of nothing, then two seconds of the code, looped
ANSWER_MS = 20_000


def qr_frame(text: str) -> np.ndarray:
    """The QR of `text`, large and centred on white with its quiet zone, as luminance."""
    image = Image.open(io.BytesIO(render.png(text, scale=1))).convert("L")
    scale = max(1, (HEIGHT - 40) // image.height)
    image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    canvas = Image.new("L", (WIDTH, HEIGHT), 255)
    canvas.paste(image, ((WIDTH - image.width) // 2, (HEIGHT - image.height) // 2))
    return np.asarray(canvas, dtype=np.uint8)


def write_y4m(path, text: str) -> None:
    """A looping Y4M video (4:2:0): a grey frame for a second, then the QR of `text`.

    Written beside `path` and renamed over it, so a camera that opens it never reads half."""
    blank = np.full((HEIGHT, WIDTH), 200, dtype=np.uint8)
    chroma = np.full((HEIGHT // 2) * (WIDTH // 2), 128, dtype=np.uint8).tobytes()
    qr = qr_frame(text)
    part = f"{path}.part"
    with open(part, "wb") as video:
        video.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for luma in [blank] * BLANK_FRAMES + [qr] * QR_FRAMES:
            video.write(b"FRAME\n" + luma.tobytes() + chroma + chroma)
    os.replace(part, path)


def forged(coupon: dict, campaign_id: str) -> str:
    """A payload of a real code signed by a key the server never had."""
    claims = coupon["qr_payload"].split(".")
    until = datetime.fromtimestamp(int(claims[3]), UTC)
    return payload.build(KeyRing([Ed25519PrivateKey.generate()]), coupon["code"], campaign_id, until)


def redemptions_of(app, code: str) -> list[Redemption]:
    with app.app_context():
        rows = db.session.scalars(select(Redemption).where(Redemption.coupon_code == code)).all()
        db.session.expunge_all()
        return rows


def sign_in(page, label: str, key: str) -> None:
    page.get_by_label(label).fill(key)
    page.get_by_label(label).press("Enter")


def outcome(page, value: str, code: str | None = None):
    status = page.get_by_role("status")
    expect(status).to_have_attribute("data-outcome", value, timeout=ANSWER_MS)
    if code is not None:
        expect(status).to_have_attribute("data-code", code)
    return status


def answer_times(page) -> list[dict]:
    return page.evaluate("couponScan.timings.filter(t => t.answeredAt !== null)")


def transfer(requests) -> dict:
    """Bytes on the wire (compressed bodies and headers) of the page's own files."""
    total, files = 0, {}
    for request in requests:
        if "/api/" in request.url:
            continue
        response = request.response()
        if response is None:
            continue
        sizes = request.sizes()
        size = sizes["responseBodySize"] + sizes["responseHeadersSize"]
        files[request.url] = max(size, files.get(request.url, 0))
    total = sum(files.values())
    return {"total": total, "files": files}


def test_scan_online_then_offline_then_back(client, live_server, launch_browser, new_context, tmp_path):
    shop = Shop(client)
    first, second, third, fourth = shop.coupons(4)
    camera = tmp_path / "camera.y4m"
    write_y4m(camera, first["qr_payload"])
    chromium = launch_browser("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                              f"--use-file-for-fake-video-capture={camera}")
    context = new_context(locale="zh-CN", viewport=PHONE, chromium=chromium)
    page = context.new_page()
    requests = []
    context.on("requestfinished", lambda request: requests.append(request))

    page.goto("/scan")
    expect(page.get_by_label("核销密钥")).to_be_visible()
    screenshot(page, "scan-zh-sign-in")
    sign_in(page, "核销密钥", shop.scanner)

    # Online: the camera reads the QR and the server redeems it.
    status = outcome(page, "redeemed")
    expect(status).to_contain_text("双人牛肉面套餐")
    expect(page.get_by_role("button", name="撤销")).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-decoder", "zxing-wasm")
    screenshot(page, "scan-zh-green")
    online = answer_times(page)
    assert len(redemptions_of(live_server.app, first["code"])) == 1

    # The QR stays in front of the camera (the video loops): it is not redeemed again.
    page.wait_for_timeout(3500)
    expect(status).to_have_attribute("data-outcome", "redeemed")
    assert len(answer_times(page)) == 1
    assert len(redemptions_of(live_server.app, first["code"])) == 1

    # The same code typed: red, already used, where and when.
    page.get_by_label("券码").fill(first["display"].lower())
    page.get_by_label("券码").press("Enter")
    status = outcome(page, "refused", "coupon_already_redeemed")
    expect(status).to_contain_text("已使用")
    screenshot(page, "scan-zh-red")

    # Ready for offline: the worker caches the page, the keys and revocations are stored.
    expect(page.locator("body")).to_have_attribute("data-offline-ready", "1", timeout=ANSWER_MS)
    first_visit = transfer(requests)

    # A warm page (reloaded from the worker's cache, nothing else going on) scans another.
    write_y4m(camera, fourth["qr_payload"])
    page.reload()
    outcome(page, "redeemed")
    online += answer_times(page)
    assert len(redemptions_of(live_server.app, fourth["code"])) == 1

    # Offline, reloaded (the page comes from the service worker): the second coupon's QR
    # is verified on the device and queued.
    context.set_offline(True)
    write_y4m(camera, second["qr_payload"])
    reloaded = page.reload()
    assert reloaded.from_service_worker
    # The worker's own requests are offline too: what it has not cached does not come.
    assert page.evaluate("""fetch("/scan/manifest.webmanifest?uncached=1").then(
        () => "fetched", () => "failed")""") == "failed"
    expect(page.locator("#offline-note")).to_be_visible()
    status = outcome(page, "queued")
    expect(status).to_contain_text("双人牛肉面套餐")
    screenshot(page, "scan-zh-amber")
    offline = answer_times(page)
    assert redemptions_of(live_server.app, second["code"]) == []

    # Once warm, the device's check and store alone (no camera, no decoding) for a fifth.
    fifth = shop.coupon()
    device_ms = page.evaluate("""async (text) => {
        const till = couponScan.till(), start = performance.now();
        const answer = await till.redeem(till.prepareQr(text).scan, 1);
        return answer.outcome === "queued" ? performance.now() - start : -1; }""", fifth["qr_payload"])
    assert device_ms >= 0

    # A forged QR: refused on the device; the queued scans survived the reload.
    write_y4m(camera, forged(third, shop.campaign["id"]))
    page.reload()
    outcome(page, "refused", "invalid_qr")
    expect(page.locator("body")).to_have_attribute("data-waiting", "2")
    # A typed code cannot be checked offline.
    page.get_by_label("券码").fill(third["code"])
    page.get_by_label("券码").press("Enter")
    outcome(page, "refused", "offline_code")

    # Back online: the queue is uploaded and the coupon is redeemed in the database.
    context.set_offline(False)
    expect(page.locator("body")).to_have_attribute("data-waiting", "0", timeout=ANSWER_MS)
    expect(page.locator(".queue-item[data-state=accepted]")).to_have_count(2)
    [row] = redemptions_of(live_server.app, second["code"])
    assert row.device_id and row.device_id.startswith("dev_")
    assert len(redemptions_of(live_server.app, fifth["code"])) == 1
    assert redemptions_of(live_server.app, third["code"]) == []
    browser_log(page).console_errors.clear()

    for name, found in (("online, green", online), ("offline, amber", offline)):
        print(f"\nscanner, {name}: QR frame grabbed -> answer "
              f"{_ms([t['answeredAt'] - t['grabbedAt'] for t in found])}, of which decoding "
              f"{_ms([t['decodedAt'] - t['grabbedAt'] for t in found])}", end="")
    print(f"\nscanner, offline, warm: the device's check and store of a scanned text: {device_ms:.1f} ms")
    print(f"scanner, first visit: {first_visit['total'] / 1024:.0f} KiB on the wire "
          f"({len(first_visit['files'])} files, decoder included)")
    for url, size in sorted(first_visit["files"].items(), key=lambda item: -item[1]):
        print(f"  {size / 1024:8.1f} KiB  {url.split('?')[0].replace(live_server.url, '')}")


def _ms(values: list[float]) -> str:
    if not values:
        return "none"
    return "/".join(f"{value:.0f}" for value in values) + " ms"


@pytest.mark.parametrize("locale", ["en-US"])
def test_typed_codes_multi_use_reverse_and_store_choice(client, live_server, new_context, locale):
    """No camera here (the shared chromium has none): typed codes do everything."""
    shop = Shop(client, uses_per_coupon=3)
    coupon = shop.coupon()
    lunch_deal = client.campaign(shop.merchant["id"], title="午市单人套餐")
    lunch = client.order(lunch_deal["id"])["coupons"][0]  # its first buyer tips the deal
    context = new_context(locale=locale, viewport=PHONE)
    page = context.new_page()
    posts = []  # what the page sent to the API's redeem and batch
    page.on("request", lambda r: posts.append((r.url.split("/api/v1")[1], r.headers))
            if r.method == "POST" and "/api/v1/redemptions" in r.url else None)
    page.goto("/scan")
    screenshot(page, "scan-en-sign-in")

    sign_in(page, "Scanner key", "cpn_scanner_not-a-key")
    expect(page.get_by_role("alert")).to_contain_text("not accepted")
    sign_in(page, "Scanner key", shop.roaming_scanner)
    # A key not pinned to a store chooses one, once.
    page.get_by_role("button", name=shop.other_store["name"]).click()
    expect(page.locator("#where")).to_contain_text(shop.other_store["name"])
    expect(page.locator("body")).to_have_attribute("data-decoder", "none")

    # A typo is caught in the browser: the server is not asked.
    code = coupon["code"]
    typo = code[:5] + ("2" if code[5] != "2" else "3") + code[6:]
    page.get_by_label("Code").fill(typo)
    page.get_by_label("Code").press("Enter")
    outcome(page, "refused", "invalid_code")
    expect(page.get_by_role("status")).to_contain_text("mistyped")
    assert posts == [], "a typo is told by the browser alone"

    # A coupon of three uses asks how many; two are taken.
    page.get_by_label("Code").fill(coupon["display"])
    page.get_by_label("Code").press("Enter")
    expect(page.get_by_text("How many uses?")).to_be_visible()
    page.get_by_role("button", name="One more").click()
    page.get_by_role("button", name="Confirm").click()
    status = outcome(page, "redeemed")
    expect(status).to_contain_text("1 of 3 uses left")
    screenshot(page, "scan-en-green")
    [row] = redemptions_of(live_server.app, code)
    assert (row.uses, row.store_id) == (2, shop.other_store["id"])

    # Reversed within the window: the uses come back.
    page.get_by_role("button", name="Reverse").click()
    outcome(page, "reversed")
    [row] = redemptions_of(live_server.app, code)
    assert row.reversed_at is not None

    # Another merchant's coupon is refused with the server's reason.
    stranger = Shop(client).coupon()
    page.get_by_label("Code").fill(stranger["code"])
    page.get_by_label("Code").press("Enter")
    outcome(page, "refused", "coupon_not_found")
    screenshot(page, "scan-en-red")

    # Offline, a scanned QR is verified and queued (the camera's path, without a camera).
    expect(page.locator("body")).to_have_attribute("data-offline-ready", "1", timeout=ANSWER_MS)
    context.set_offline(True)
    other = shop.coupon()
    page.evaluate("text => couponScan.handleText(text)", other["qr_payload"])
    expect(page.get_by_text("How many uses?")).to_be_visible()
    page.get_by_role("button", name="Confirm").click()
    outcome(page, "queued")
    expect(page.get_by_text("typed codes cannot be checked")).to_be_visible()
    screenshot(page, "scan-en-amber")
    page.set_viewport_size({"width": 360, "height": 740})  # the narrowest phone it is made for
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    screenshot(page, "scan-en-amber-360")
    page.set_viewport_size(PHONE)

    # Meanwhile a till at another store redeems a coupon this device also takes offline.
    page.evaluate("text => couponScan.handleText(text)", lunch["qr_payload"])
    expect(outcome(page, "queued")).to_contain_text("午市单人套餐")
    client.ok(client.post("redemptions", {"code": lunch["code"]}, key=shop.scanner), 201)

    # Back online: one accepted, one conflict, shown to the staff and kept for the manager.
    context.set_offline(False)
    expect(page.locator("body")).to_have_attribute("data-waiting", "0", timeout=ANSWER_MS)
    [row] = redemptions_of(live_server.app, other["code"])
    assert row.uses == 1
    expect(page.locator(".queue-item[data-state=accepted]")).to_have_count(1)
    expect(page.locator(".queue-item[data-state=conflict]")).to_contain_text(lunch["display"])
    expect(page.locator("#conflicts")).to_have_text(
        "1 offline scan was refused on upload: check it below.")
    # The amber answer still on screen turns red with what the upload found.
    outcome(page, "refused", "coupon_already_redeemed")
    screenshot(page, "scan-en-conflict")
    attempts = client.ok(client.get("redemption-attempts", key=shop.manager,
                                    query_string={"reason": "offline_conflict"}))["data"]
    assert [a["coupon_code"] for a in attempts] == [lunch["code"]]
    page.locator("#conflicts").click()  # seen: the banner goes, the row stays
    expect(page.locator("#conflicts")).to_be_hidden()
    paths = [path for path, _headers in posts]
    assert paths.count("/redemptions") == 1 and "/redemptions/batch" in paths, paths
    assert all(headers.get("idempotency-key") for path, headers in posts if path != "/redemptions/validate")
