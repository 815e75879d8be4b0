"""The ceiling of `scripts/bench_promotion.py`: the thinnest Flask app that answers the same
bytes. `GET /<name>` answers a file read once at start, with its type and an ETag, and
nothing else: no database, no template, no drawing. Environment: `THIN_FILES`, a list of
`name=path:mimetype` separated by commas. See docs/benchmarks.md.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from flask import Flask, Response, abort


def create_app() -> Flask:
    files = {}
    for item in os.environ["THIN_FILES"].split(","):
        name, _, rest = item.partition("=")
        path, _, mimetype = rest.rpartition(":")
        data = Path(path).read_bytes()
        files[name] = (data, mimetype, hashlib.sha256(data).hexdigest()[:32])
    app = Flask(__name__)

    @app.get("/healthz")
    def healthz():
        return "ok"

    @app.get("/<name>")
    def serve(name: str):
        if name not in files:
            abort(404)
        data, mimetype, etag = files[name]
        response = Response(data, mimetype=mimetype)
        response.set_etag(etag)
        return response

    return app
