"""The ceiling of `scripts/bench_redeem.py`: the thinnest Flask app that can redeem.

`POST /redeem/<code>` runs one conditional UPDATE on couponsvc's `coupons` table through a
psycopg pool in autocommit mode: no authentication, idempotency, events or ORM. Environment:
`DATABASE_URL`, `THIN_POOL_SIZE` (connections per process, default 4). See docs/benchmarks.md.
"""

from __future__ import annotations

import os
import re

from flask import Flask, jsonify
from psycopg_pool import ConnectionPool

REDEEM_SQL = (
    "UPDATE coupons SET uses_left = uses_left - 1, "
    "status = CASE WHEN uses_left - 1 = 0 THEN 'redeemed' ELSE status END "
    "WHERE code = %s AND status = 'active' AND uses_left >= 1 RETURNING code"
)


def create_app() -> Flask:
    url = re.sub(r"^(postgresql\+psycopg2?|postgres)://", "postgresql://", os.environ["DATABASE_URL"])
    size = int(os.environ.get("THIN_POOL_SIZE", "4"))
    pool = ConnectionPool(url, min_size=size, max_size=size, open=True, name="thin-redeem",
                          kwargs={"autocommit": True, "prepare_threshold": 0})
    pool.wait(timeout=30.0)
    app = Flask(__name__)

    @app.post("/redeem/<code>")
    def redeem(code: str):
        with pool.connection() as conn:
            row = conn.execute(REDEEM_SQL, (code,)).fetchone()
        if row is None:
            return jsonify(error="not_redeemable", code=code), 409
        return jsonify(code=row[0]), 201

    return app
