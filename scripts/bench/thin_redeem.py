"""The ceiling for `scripts/bench_redeem.py`: the thinnest Flask app that can redeem.

One route, `POST /redeem/<code>`, runs one conditional UPDATE on the app's own
`coupons` table through a psycopg connection pool in autocommit mode, and nothing
else: no authentication, no idempotency, no events, no ORM. Whatever couponsvc's
`POST /api/v1/redemptions` does on top of this is what the benchmark's ratio prices.

Run it the way the benchmark does (same gunicorn settings as the real app):

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/couponsvc_bench \
        .venv/bin/gunicorn --pythonpath scripts/bench 'thin_redeem:create_app()'

Environment: `DATABASE_URL` (`postgresql://` or `postgres://`), and
`THIN_POOL_SIZE` (connections per worker process; default 4).
"""

from __future__ import annotations

import os

from flask import Flask, jsonify
from psycopg_pool import ConnectionPool

REDEEM_SQL = (
    "UPDATE coupons SET uses_left = uses_left - 1, "
    "status = CASE WHEN uses_left - 1 = 0 THEN 'redeemed' ELSE status END "
    "WHERE code = %s AND status = 'active' AND uses_left >= 1 "
    "RETURNING code"
)


def libpq_url(raw: str) -> str:
    """Return a URL libpq accepts from the forms hosting providers and SQLAlchemy use."""
    for scheme in ("postgresql+psycopg://", "postgresql+psycopg2://", "postgres://"):
        if raw.startswith(scheme):
            return "postgresql://" + raw[len(scheme):]
    return raw


def create_app() -> Flask:
    raw_url = os.environ.get("DATABASE_URL")
    if not raw_url:
        raise RuntimeError("DATABASE_URL must be set (postgresql://user@host:port/db)")
    size = int(os.environ.get("THIN_POOL_SIZE", "4"))
    pool = ConnectionPool(
        libpq_url(raw_url),
        min_size=size,
        max_size=size,
        kwargs={"autocommit": True, "prepare_threshold": 0},
        open=True,
        name="thin-redeem",
    )
    pool.wait(timeout=30.0)

    app = Flask(__name__)
    app.extensions["thin_redeem_pool"] = pool

    @app.post("/redeem/<code>")
    def redeem(code: str):
        with pool.connection() as conn:
            row = conn.execute(REDEEM_SQL, (code,)).fetchone()
        if row is None:
            return jsonify(error="not_redeemable", code=code), 409
        return jsonify(code=row[0]), 201

    return app
