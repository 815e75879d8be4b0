"""The files under couponsvc/static/ as the app serves them: types, caching, compression.

Pages name a file through two template globals:

- `vendor_url(package, file)`: a library vendored by scripts/vendor, e.g.
  `vendor_url("htmx.org", "htmx.min.js")` → `/static/vendor/htmx.org/4.0.1/htmx.min.js`. The
  version comes from vendor/VENDOR.json; a package or file not vendored raises (a typo
  fails the page's test instead of answering 404 in a merchant's browser).
- `static_url(filename)`: one of the app's own files (`admin.css`, `scan/…`), with
  `?v=<hash of its content>` so that a changed file gets a new URL.

A vendored file's path holds its version and a `?v=` URL its content's hash, so both are
answered `Cache-Control: public, max-age=31536000, immutable`; anything else `no-cache`
(the browser revalidates with the ETag: a 304 without a body). Text, JavaScript, CSS,
JSON and WebAssembly over 1 KiB are sent gzip-compressed to a client that accepts it,
compressed once per process and kept in memory (the vendored set compresses to about
1 MB). `.wasm` is `application/wasm`, which `WebAssembly.instantiateStreaming` requires.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import mimetypes
import os
import threading
from functools import cache
from pathlib import Path

from flask import Flask, Response, abort, current_app, request, send_file, url_for
from werkzeug.security import safe_join

STATIC_DIR = Path(__file__).parent / "static"
VENDOR_MANIFEST = STATIC_DIR / "vendor" / "VENDOR.json"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
COMPRESS_MIN_BYTES = 1024

TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".wasm": "application/wasm",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".html": "text/html",
    ".txt": "text/plain",
    ".y4m": "video/x-yuv4mpeg",
}
COMPRESSIBLE = ("text/", "application/wasm", "application/json", "application/manifest+json",
                "image/svg+xml")


@cache
def vendored() -> dict[str, dict]:
    """VENDOR.json's packages: name → {"version", "integrity", "files": {...}}."""
    return json.loads(VENDOR_MANIFEST.read_text(encoding="utf-8"))["packages"]


@cache
def vendored_paths() -> frozenset[str]:
    """Every vendored file's path under static/ (each holds its package's version)."""
    return frozenset(vendor_path(package, file)
                     for package, entry in vendored().items() for file in entry["files"])


def vendor_path(package: str, file: str = "") -> str:
    """The path of a vendored file (or, with no file, of its package's folder) under static/."""
    entry = vendored().get(package)
    if entry is None:
        raise LookupError(f"{package!r} is not vendored (scripts/vendor, VENDOR.json)")
    if file and file not in entry["files"]:
        raise LookupError(f"{package} {entry['version']} has no vendored file {file!r}")
    return f"vendor/{package}/{entry['version']}/{file}"


def vendor_url(package: str, file: str) -> str:
    return url_for("static", filename=vendor_path(package, file))


def static_url(filename: str) -> str:
    digest = content_hash(filename)
    if digest is None:
        raise LookupError(f"no static file {filename!r} under couponsvc/static/")
    return url_for("static", filename=filename, v=digest)


def content_type(filename: str) -> str:
    name = filename.rsplit("/", 1)[-1]
    if name in ("LICENSE", "NOTICE"):
        return "text/plain"
    suffix = os.path.splitext(name)[1].lower()
    return TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


class _Files:
    """Per process: each file's content hash and gzip body, keyed by its size and mtime."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[tuple[int, int], str, bytes | None]] = {}

    def get(self, path: str, compress: bool) -> tuple[str, bytes | None]:
        stat = os.stat(path)
        stamp = (stat.st_size, stat.st_mtime_ns)
        with self._lock:
            known = self._entries.get(path)
        if known and known[0] == stamp and (known[2] is not None or not compress):
            return known[1], known[2]
        content = Path(path).read_bytes()
        digest = hashlib.sha256(content).hexdigest()[:16]
        body = gzip.compress(content, compresslevel=9, mtime=0) if compress else None
        with self._lock:
            self._entries[path] = (stamp, digest, body)
        return digest, body


_files = _Files()


def content_hash(filename: str) -> str | None:
    path = safe_join(str(STATIC_DIR), filename)
    if path is None or not os.path.isfile(path):
        return None
    return _files.get(path, compress=False)[0]


def serve(filename: str) -> Response:
    """The view of the `static` endpoint, `/static/<path:filename>` (werkzeug adds
    `; charset=utf-8` to the text types)."""
    path = safe_join(str(STATIC_DIR), filename)
    if path is None or not os.path.isfile(path):
        abort(404)
    mimetype = content_type(filename)
    compressible = mimetype.startswith(COMPRESSIBLE) and os.path.getsize(path) >= COMPRESS_MIN_BYTES
    wants_gzip = compressible and request.accept_encodings["gzip"] > 0
    digest, body = _files.get(path, compress=wants_gzip)
    immutable = filename in vendored_paths() or request.args.get("v") == digest
    if wants_gzip:
        response = current_app.response_class(body, mimetype=mimetype)
        response.set_etag(f"{digest}-gzip")
        response.headers["Content-Encoding"] = "gzip"
        response = response.make_conditional(request)
    else:
        response = send_file(path, mimetype=mimetype, etag=digest, conditional=True,
                             max_age=None)
    if compressible:
        response.vary.add("Accept-Encoding")
    response.headers["Cache-Control"] = IMMUTABLE if immutable else REVALIDATE
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def init_app(app: Flask) -> None:
    app.view_functions["static"] = serve
    app.add_template_global(vendor_url)
    app.add_template_global(static_url)
