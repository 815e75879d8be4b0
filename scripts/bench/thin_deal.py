"""The ceiling of `scripts/bench_promotion.py`: the thinnest Flask app that can answer a deal's
page or poster. `GET /page/<campaign_id>` and `GET /poster/<campaign_id>` read what ours
reads (the campaign with its merchant, then its stores: the same two SELECTs) through a
psycopg pool in autocommit, then answer the bytes ours answered (saved by the benchmark)
with an ETag: no ORM, session, template, translation, token or drawing. Environment:
`DATABASE_URL`, `THIN_POOL_SIZE` (connections per process, default 4), `THIN_PAGE` and
`THIN_POSTER` (the files). See docs/benchmarks.md.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from flask import Flask, Response, abort
from psycopg_pool import ConnectionPool

DEAL_SQL = (
    "SELECT c.merchant_id, c.*, m.name, m.timezone, m.deal_url_template FROM campaigns c "
    "JOIN merchants m ON m.id = c.merchant_id "
    "WHERE c.id = %s AND c.status IN ('active', 'paused', 'ended', 'failed')"
)
STORES_SQL = (
    "SELECT s.* FROM stores s WHERE s.merchant_id = %s AND (s.id IN (SELECT store_id FROM "
    "campaign_stores WHERE campaign_id = %s) OR NOT EXISTS (SELECT store_id FROM campaign_stores "
    "WHERE campaign_id = %s)) ORDER BY s.id"
)


def create_app() -> Flask:
    url = re.sub(r"^(postgresql\+psycopg2?|postgres)://", "postgresql://", os.environ["DATABASE_URL"])
    size = int(os.environ.get("THIN_POOL_SIZE", "4"))
    pool = ConnectionPool(url, min_size=size, max_size=size, open=True, name="thin-deal",
                          kwargs={"autocommit": True, "prepare_threshold": 0})
    pool.wait(timeout=30.0)
    files = {}
    for kind, mimetype in (("page", "text/html; charset=utf-8"), ("poster", "image/png")):
        data = Path(os.environ[f"THIN_{kind.upper()}"]).read_bytes()
        files[kind] = (data, mimetype, hashlib.sha256(data).hexdigest()[:32])
    app = Flask(__name__)

    @app.get("/healthz")
    def healthz():
        return "ok"

    @app.get("/<kind>/<campaign_id>")
    def deal(kind: str, campaign_id: str):
        if kind not in files:
            abort(404)
        with pool.connection() as conn:
            campaign = conn.execute(DEAL_SQL, (campaign_id,)).fetchone()
            if campaign is None:
                abort(404)
            merchant_id = campaign[0]
            conn.execute(STORES_SQL, (merchant_id, campaign_id, campaign_id)).fetchall()
        data, mimetype, etag = files[kind]
        response = Response(data, content_type=mimetype)
        response.set_etag(etag)
        return response

    return app
