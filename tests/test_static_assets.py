"""couponsvc/static/ as served: vendored files with their types, caching and compression;
the API docs from vendored files only; scripts/vendor --check catching an edited file."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from couponsvc.static_assets import VENDOR_MANIFEST, content_type, static_url, vendor_url

from .conftest import make_app

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = json.loads(VENDOR_MANIFEST.read_text(encoding="utf-8"))
VENDORED = [(package, file, record)
            for package, entry in MANIFEST["packages"].items()
            for file, record in entry["files"].items()]
IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture(scope="module")
def app(migrated, instance_path):
    """One app for the module: serving files reads no table."""
    return make_app(migrated, instance_path)


def url_of(package: str, file: str) -> str:
    return f"/static/vendor/{package}/{MANIFEST['packages'][package]['version']}/{file}"


@pytest.mark.parametrize(("package", "file", "record"), VENDORED,
                         ids=[f"{package}/{file}" for package, file, _ in VENDORED])
def test_every_vendored_file_is_served_as_vendored(app, package, file, record):
    http = app.test_client()
    plain = http.get(url_of(package, file), headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200
    assert plain.headers["Cache-Control"] == IMMUTABLE
    assert hashlib.sha256(plain.data).hexdigest() == record["sha256"]
    assert plain.headers["Content-Type"].split(";")[0] == content_type(file).split(";")[0]
    assert "Content-Encoding" not in plain.headers

    packed = http.get(url_of(package, file), headers={"Accept-Encoding": "gzip, deflate, br"})
    assert packed.status_code == 200
    assert packed.headers["Cache-Control"] == IMMUTABLE
    if packed.headers.get("Content-Encoding") == "gzip":
        assert gzip.decompress(packed.data) == plain.data
        assert "Accept-Encoding" in packed.headers["Vary"]
    else:  # a picture, or a file too small to gain
        assert file.endswith(".png") or record["bytes"] < 1024
        assert packed.data == plain.data


@pytest.mark.parametrize(("suffix", "expected"), [
    ("reader/zxing_reader.wasm", "application/wasm"),
    ("es/reader/index.js", "text/javascript; charset=utf-8"),
])
def test_webassembly_and_modules_have_the_types_browsers_require(app, suffix, expected):
    answer = app.test_client().get(url_of("zxing-wasm", suffix))
    assert answer.headers["Content-Type"] == expected
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_a_module_script_served_as_mjs_is_javascript():
    assert content_type("scan/app.mjs") == "text/javascript"
    assert content_type("scan/manifest.webmanifest") == "application/manifest+json"


@pytest.mark.parametrize("encoding", ["gzip", "identity"])
def test_an_unchanged_file_is_revalidated_without_a_body(app, encoding):
    http = app.test_client()
    url = url_of("htmx.org", "htmx.min.js")
    first = http.get(url, headers={"Accept-Encoding": encoding})
    again = http.get(url, headers={"Accept-Encoding": encoding,
                                   "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert again.data == b""


def test_the_gzip_and_plain_answers_have_different_etags(app):
    http = app.test_client()
    url = url_of("uplot", "uPlot.iife.min.js")
    packed = http.get(url, headers={"Accept-Encoding": "gzip"})
    plain = http.get(url, headers={"Accept-Encoding": "identity"})
    assert packed.headers["ETag"] != plain.headers["ETag"]
    stale = http.get(url, headers={"Accept-Encoding": "identity",
                                   "If-None-Match": packed.headers["ETag"]})
    assert stale.status_code == 200


def test_a_file_of_the_apps_own_is_immutable_only_under_its_content_hash(app):
    with app.test_request_context():
        hashed = static_url("vendor/VENDOR.json")
    http = app.test_client()
    assert re.fullmatch(r"/static/vendor/VENDOR\.json\?v=[0-9a-f]{16}", hashed)
    assert http.get(hashed).headers["Cache-Control"] == IMMUTABLE
    assert http.get("/static/vendor/VENDOR.json").headers["Cache-Control"] == "no-cache"
    assert http.get("/static/vendor/VENDOR.json?v=0123456789abcdef").headers[
        "Cache-Control"] == "no-cache"


@pytest.mark.parametrize("path", ["/static/vendor/htmx.org/0.0.1/htmx.min.js",
                                  "/static/../__init__.py", "/static/%2e%2e/config.py",
                                  "/static/vendor/"])
def test_what_is_not_a_static_file_is_not_found(app, path):
    answer = app.test_client().get(path)
    assert answer.status_code == 404
    assert answer.headers["Content-Type"] == "application/problem+json"


def test_a_template_naming_a_file_not_vendored_fails_loudly(app):
    with app.test_request_context():
        assert vendor_url("htmx.org", "htmx.min.js") == url_of("htmx.org", "htmx.min.js")
        with pytest.raises(LookupError, match="htmx.js"):
            vendor_url("htmx.org", "htmx.js")
        with pytest.raises(LookupError, match="jquery"):
            vendor_url("jquery", "jquery.min.js")
        with pytest.raises(LookupError, match="admin.css"):
            static_url("nowhere/admin.css")


def test_the_api_docs_load_vendored_files_only(app):
    http = app.test_client()
    page = http.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "//" not in re.sub(r"<!--.*?-->", "", html).replace("/static/", "")
    references = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(references) == 3
    for reference in references:
        assert reference.startswith("/static/vendor/swagger-ui-dist/")
        assert http.get(reference).status_code == 200
    assert '"validatorUrl": null' in html  # Swagger UI would ask validator.swagger.io


def copy_of_the_vendored_tree(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "vendor", tmp_path / "scripts" / "vendor")
    shutil.copytree(VENDOR_MANIFEST.parent, tmp_path / "couponsvc" / "static" / "vendor")
    return tmp_path


def vendor_check(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(root / "scripts" / "vendor"), "--check"],
                          capture_output=True, text=True, timeout=60)


def test_the_committed_vendored_files_match_vendor_json():
    done = vendor_check(ROOT)
    assert done.returncode == 0, done.stderr


def test_a_vendored_file_edited_by_hand_fails_the_check(tmp_path):
    root = copy_of_the_vendored_tree(tmp_path)
    htmx = root / "couponsvc" / "static" / url_of("htmx.org", "htmx.min.js").removeprefix("/static/")
    htmx.write_bytes(htmx.read_bytes() + b"\n/* patched */\n")
    done = vendor_check(root)
    assert done.returncode == 1
    assert "htmx.org/4.0.1/htmx.min.js: sha256" in done.stderr


def test_a_file_added_to_the_vendored_tree_or_a_version_changed_fails_the_check(tmp_path):
    root = copy_of_the_vendored_tree(tmp_path)
    (root / "couponsvc" / "static" / "vendor" / "htmx.org" / "extra.js").write_text("1")
    script = root / "scripts" / "vendor"
    script.write_text(script.read_text().replace('"uplot": ("1.6.32"', '"uplot": ("1.6.31"'))
    done = vendor_check(root)
    assert done.returncode == 1
    assert "htmx.org/extra.js: not in VENDOR.json" in done.stderr
    assert "does not match the PACKAGES table" in done.stderr
