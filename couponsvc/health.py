"""`/healthz` (the process is up) and `/readyz` (database and queue reachable)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from .extensions import db
from .jobs import queue_ping

health = Blueprint("health", __name__)


@health.get("/healthz")
def healthz():
    return jsonify(status="ok")


@health.get("/readyz")
def readyz():
    checks = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as error:  # report, never raise: this endpoint answers for the process
        db.session.rollback()
        checks["database"] = f"error: {type(error).__name__}"
    checks["queue"] = queue_ping(current_app)
    ready = all(value in ("ok", "in-process") for value in checks.values())
    return jsonify(status="ok" if ready else "unavailable", checks=checks), 200 if ready else 503
