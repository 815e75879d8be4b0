"""couponsvc: group-buy deals, tipping points, signed QR coupons, redemption at the till."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # Flask is imported by create_app: importing a domain module imports no Flask
    from flask import Flask

from .config import load_settings, require_production_settings


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The WSGI factory: `gunicorn 'couponsvc:create_app()'`.

    Settings come from the environment (`couponsvc.config`); `config` overrides
    them, which is how tests point an app at their database.
    """
    from .flask_app import CouponsvcFlask

    app = CouponsvcFlask(__name__, instance_path=os.environ.get("COUPONSVC_INSTANCE_PATH") or None,
                instance_relative_config=True)
    app.config.update(load_settings(os.environ, app.instance_path))
    app.config.update(config or {})
    require_production_settings(app.config)
    from .logs.setup import configure as configure_logs

    configure_logs(app.config["LOG_FORMAT"], app.config["LOG_LEVEL"], app.config["LOG_WRITE_MS"])
    _configure(app)
    if app.config["REDEEM_LANE"] and app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        # a till's redeem that succeeds, without Flask's layers (its one statement is PostgreSQL's)
        from .api.redeem_lane import RedeemLane

        app.wsgi_app = RedeemLane(app, app.wsgi_app)
    if app.config["TRUSTED_PROXIES"]:  # the client address is taken from that many X-Forwarded-For hops
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["TRUSTED_PROXIES"])

    from . import admin, compression, extensions, i18n, jobs, qr_keys, ratelimit, static_assets
    from . import scan as scan_page
    from .api import register_api
    from .cli import register_cli
    from .deal_pages import init_app as init_deal_pages
    from .errors import register_error_handlers
    from .health import health
    from .logs.access import init_app as init_access_log
    from .metrics.endpoint import init_app as init_metrics
    from .metrics.switch import set_counting
    from .problems import problems
    from .tracing import init_app as init_tracing

    compression.init_app(app)  # first registered: its after_request runs last
    init_access_log(app)  # the request id, bound before any other hook runs
    extensions.db.init_app(app)
    init_tracing(app)  # before anything connects (off unless OTEL_EXPORTER_OTLP_ENDPOINT)
    set_counting(app.config["METRICS"])
    i18n.init_app(app)
    extensions.migrate.init_app(app, extensions.db, directory=_migrations_dir())
    ratelimit.init_app(app)
    qr_keys.init_app(app)
    jobs.init_app(app)
    static_assets.init_app(app)
    register_api(app)
    admin.init_app(app)
    init_deal_pages(app)
    scan_page.init_app(app)
    app.register_blueprint(health)
    app.register_blueprint(problems)
    init_metrics(app)
    register_error_handlers(app)
    register_cli(app)
    return app


def _configure(app: Flask) -> None:
    from .static_assets import vendor_path
    from .web_session import AdminOnlySessionInterface

    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    app.config.setdefault("SQLALCHEMY_RECORD_QUERIES", False)
    app.config["JSON_SORT_KEYS"] = False
    app.json.sort_keys = False
    app.json.ensure_ascii = False
    app.session_interface = AdminOnlySessionInterface()
    if uri.startswith("sqlite"):
        os.makedirs(app.instance_path, exist_ok=True)
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"connect_args": {"timeout": 30}})
    else:
        options = {"pool_size": app.config["DB_POOL_SIZE"], "max_overflow": 10, "pool_pre_ping": False}
        if not app.config.get("DB_PREPARE", True) and uri.startswith("postgresql+psycopg:"):
            # PgBouncer in transaction mode before 1.22 passes a statement prepared on one
            # server connection to another: psycopg must never prepare (docs/operations.md)
            options["connect_args"] = {"prepare_threshold": None}
        app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", options)
    app.config.update(
        API_TITLE="couponsvc",
        API_VERSION="v1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        # Vendored (scripts/vendor), served by the app: no CDN (templates/swagger_ui.html)
        OPENAPI_SWAGGER_UI_URL=f"{app.static_url_path}/{vendor_path('swagger-ui-dist')}",
        OPENAPI_SWAGGER_UI_CONFIG={"validatorUrl": None},
        MAX_CONTENT_LENGTH=app.config.get("MAX_CONTENT_LENGTH") or 2 * 1024 * 1024,
    )


def _migrations_dir() -> str:
    return os.path.join(os.path.dirname(__file__), "migrations")
