"""Settings, read from the environment through strict converters.

`load_settings()` is called once inside `create_app()`; a bad value stops the boot
with a message naming the variable. Nothing here runs at import time.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .instance_files import read_or_create
from .promotion.deal_link import template_problems


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message names it."""


def _int(name: str, raw: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be <= {maximum}, got {value}")
    return value


def _bool(name: str, raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def _list(raw: str) -> list[str]:
    return [part.strip() for part in raw.replace("\n", ",").split(",") if part.strip()]


def database_url(raw: str) -> str:
    """Accept the URLs hosting providers hand out and point SQLAlchemy at psycopg 3."""
    for scheme in ("postgres://", "postgresql://"):
        if raw.startswith(scheme):
            return "postgresql+psycopg://" + raw[len(scheme):]
    return raw


@dataclass(frozen=True)
class Setting:
    env: str
    key: str
    default: Any
    convert: Callable[[str, str], Any]


def _str(_name: str, raw: str) -> str:
    return raw


def _url(_name: str, raw: str) -> str:
    return database_url(raw)


def _redis_url(name: str, raw: str) -> str | None:
    """A Redis URL; a `redis+sentinel://` one must name its Sentinels and service."""
    from .redis_client import is_sentinel_url, parse_sentinel_url

    raw = raw.strip()
    if raw and is_sentinel_url(raw):
        try:
            parse_sentinel_url(raw)
        except ValueError as error:
            raise ConfigError(f"{name}: {error}") from None
    return raw or None


def _seconds(name: str, raw: str) -> int:
    return _int(name, raw, minimum=0)


def _deal_url_template(name: str, raw: str) -> str | None:
    if not raw.strip():
        return None
    problems = template_problems(raw.strip())
    if problems:
        raise ConfigError(f"{name}: {problems[0]} Got {raw!r}")
    return raw.strip()


def _font_file(name: str, raw: str) -> str | None:
    if not raw.strip():
        return None
    if not os.path.isfile(raw.strip()):
        raise ConfigError(f"{name} must name a font file (.ttc, .otf, .ttf); {raw!r} is not a file")
    return raw.strip()


def _networks(name: str, raw: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Addresses and CIDR ranges, comma-separated: `127.0.0.1, 10.0.0.0/8, ::1`."""
    try:
        return [ipaddress.ip_network(part, strict=False) for part in _list(raw)]
    except ValueError as error:
        raise ConfigError(f"{name} must list addresses or CIDR ranges: {error}") from None


def _listen(name: str, raw: str) -> str | None:
    """`host:port` (`[::1]:9101` for IPv6), or empty: none."""
    raw = raw.strip()
    if not raw:
        return None
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{name} must be host:port (e.g. 0.0.0.0:9101), got {raw!r}")
    return raw


def _choice(*allowed: str) -> Callable[[str, str], str]:
    def convert(name: str, raw: str) -> str:
        value = raw.strip().lower()
        if value not in allowed:
            raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
        return value

    return convert


LOOPBACK = "127.0.0.0/8,::1"

SETTINGS: tuple[Setting, ...] = (
    Setting("DATABASE_URL", "SQLALCHEMY_DATABASE_URI", None, _url),
    Setting("REDIS_URL", "REDIS_URL", None, _redis_url),
    Setting("SECRET_KEY", "SECRET_KEY", None, _str),
    Setting("COUPONSVC_QR_SIGNING_KEYS", "QR_SIGNING_KEYS", [], lambda n, r: _list(r)),
    Setting("COUPONSVC_QR_PUBLIC_KEYS", "QR_PUBLIC_KEYS", [], lambda n, r: _list(r)),
    Setting("COUPONSVC_DATA_KEYS", "DATA_KEYS", [], lambda n, r: _list(r)),
    Setting("COUPONSVC_PUBLIC_URL", "PUBLIC_URL", "", lambda n, r: r.rstrip("/")),
    Setting("PORT", "PORT", 5000, lambda n, r: _int(n, r, minimum=1, maximum=65535)),
    Setting("COUPONSVC_MAX_REVERSAL_WINDOW", "MAX_REVERSAL_WINDOW", 3600, _seconds),
    Setting("COUPONSVC_DEFAULT_REVERSAL_WINDOW", "DEFAULT_REVERSAL_WINDOW", 600, _seconds),
    Setting("COUPONSVC_LOOKUP_LIMIT_PER_KEY", "LOOKUP_LIMIT_PER_KEY", "30/minute", _str),
    Setting("COUPONSVC_LOOKUP_LIMIT_PER_ADDRESS", "LOOKUP_LIMIT_PER_ADDRESS", "60/minute", _str),
    Setting("COUPONSVC_RATELIMIT_ENABLED", "RATELIMIT_ENABLED", True, _bool),
    Setting("COUPONSVC_TRUSTED_PROXIES", "TRUSTED_PROXIES", 0, lambda n, r: _int(n, r, minimum=0)),
    Setting("COUPONSVC_IDEMPOTENCY_TTL", "IDEMPOTENCY_TTL", 86400, _seconds),
    # whole months of redemptions, attempts, events and deliveries kept; 0: all (retention.py)
    Setting("COUPONSVC_RETENTION_MONTHS", "RETENTION_MONTHS", 0, lambda n, r: _int(n, r, minimum=0)),
    Setting("COUPONSVC_BULK_MAX", "BULK_MAX", 1_000_000, lambda n, r: _int(n, r, minimum=1)),
    Setting("COUPONSVC_DB_POOL_SIZE", "DB_POOL_SIZE", 10, lambda n, r: _int(n, r, minimum=1)),
    # off: psycopg never prepares statements (PgBouncer before 1.22 in transaction mode)
    Setting("COUPONSVC_DB_PREPARE", "DB_PREPARE", True, _bool),
    # off: every redeem through Flask's request machinery (api/redeem_lane.py; PostgreSQL only)
    Setting("COUPONSVC_REDEEM_LANE", "REDEEM_LANE", True, _bool),
    Setting("COUPONSVC_ALLOW_PRIVATE_WEBHOOK_TARGETS", "ALLOW_PRIVATE_WEBHOOK_TARGETS", False, _bool),
    Setting("COUPONSVC_MAX_INTEGRATIONS_PER_MERCHANT", "MAX_INTEGRATIONS_PER_MERCHANT", 20,
            lambda n, r: _int(n, r, minimum=1)),
    Setting("COUPONSVC_DISABLE_FAILING_AFTER", "DISABLE_FAILING_AFTER", 3 * 86400, _seconds),
    Setting("COUPONSVC_SWEEP_INTERVAL", "SWEEP_INTERVAL", 1, lambda n, r: _int(n, r, minimum=1)),
    # The admin pages' sign-in (docs/admin.md)
    Setting("COUPONSVC_ADMIN_SESSION_IDLE", "ADMIN_SESSION_IDLE", 2 * 3600,
            lambda n, r: _int(n, r, minimum=60)),
    Setting("COUPONSVC_ADMIN_SESSION_MAX", "ADMIN_SESSION_MAX", 12 * 3600,
            lambda n, r: _int(n, r, minimum=60)),
    Setting("COUPONSVC_ADMIN_MAX_FAILURES", "ADMIN_MAX_FAILURES", 5,
            lambda n, r: _int(n, r, minimum=1)),
    Setting("COUPONSVC_ADMIN_LOCK_SECONDS", "ADMIN_LOCK_SECONDS", 900,
            lambda n, r: _int(n, r, minimum=1)),
    Setting("COUPONSVC_ADMIN_SIGNIN_LIMIT_PER_ADDRESS", "ADMIN_SIGNIN_LIMIT_PER_ADDRESS",
            "20/15minutes", _str),
    # seconds between two refreshes of an open campaign page's figures; 0: never (docs/admin.md)
    Setting("COUPONSVC_ADMIN_FIGURES_EVERY", "ADMIN_FIGURES_EVERY", 20,
            lambda n, r: _int(n, r, minimum=0)),
    # Promotion (docs/promotion.md): where a deal link points, the poster's CJK font
    Setting("COUPONSVC_DEAL_URL_TEMPLATE", "DEAL_URL_TEMPLATE", None, _deal_url_template),
    Setting("COUPONSVC_POSTER_FONT", "POSTER_FONT", None, _font_file),
    # Seeing what it does (docs/operations.md): metrics, logs
    Setting("COUPONSVC_METRICS", "METRICS", True, _bool),
    Setting("COUPONSVC_METRICS_ALLOW", "METRICS_ALLOW", _networks("", LOOPBACK), _networks),
    Setting("COUPONSVC_WORKER_METRICS_LISTEN", "WORKER_METRICS_LISTEN", None, _listen),
    Setting("COUPONSVC_LOG_FORMAT", "LOG_FORMAT", "json", _choice("json", "text")),
    Setting("COUPONSVC_ACCESS_LOG", "ACCESS_LOG", True, _bool),
    # lines below WARNING written together every this many ms; 0: each at once (logs/setup.py)
    Setting("COUPONSVC_LOG_WRITE_MS", "LOG_WRITE_MS", 0, lambda n, r: _int(n, r, minimum=0, maximum=5000)),
    Setting("COUPONSVC_LOG_LEVEL", "LOG_LEVEL", "INFO",
            lambda n, r: _choice("debug", "info", "warning", "error")(n, r).upper()),
)


def load_settings(environ: Mapping[str, str], instance_path: str) -> dict[str, Any]:
    """Return Flask config values read from `environ`; raise ConfigError naming a bad one."""
    config: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = environ.get(setting.env)
        config[setting.key] = setting.default if raw is None else setting.convert(setting.env, raw)
    if not config["SQLALCHEMY_DATABASE_URI"]:
        path = os.path.join(instance_path, "couponsvc.sqlite3")
        config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{path}"
    if config["DEFAULT_REVERSAL_WINDOW"] > config["MAX_REVERSAL_WINDOW"]:
        raise ConfigError(
            "COUPONSVC_DEFAULT_REVERSAL_WINDOW must not exceed COUPONSVC_MAX_REVERSAL_WINDOW"
        )
    if not config["SECRET_KEY"]:
        if not config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
            raise ConfigError("SECRET_KEY must be set when DATABASE_URL is not SQLite")
        # The embedded default is for trying the service out: keep a generated
        # secret under instance/ so every process of it agrees.
        config["SECRET_KEY"] = _instance_secret(instance_path)
    return config


def purpose_key(secret: str | bytes, purpose: bytes) -> bytes:
    """The key of one use of `SECRET_KEY`: HMAC-SHA256 of `purpose` under it, so the
    `qr_url` tokens and the list cursors never share key material."""
    secret = secret if isinstance(secret, bytes) else str(secret).encode()
    return hmac.new(secret, purpose, hashlib.sha256).digest()


PRODUCTION_SETTINGS = (
    ("QR_SIGNING_KEYS", "COUPONSVC_QR_SIGNING_KEYS"),
    ("DATA_KEYS", "COUPONSVC_DATA_KEYS"),
    ("PUBLIC_URL", "COUPONSVC_PUBLIC_URL"),
)
"""What a database other than SQLite needs: keys every host shares, and where links point."""


def require_production_settings(config: Mapping[str, Any]) -> None:
    """Refuse to start on a shared database without the settings every host must share.

    On SQLite (one host, trying the service out) the keys are kept under `instance/`
    and links point at the loopback port; elsewhere each host would sign and encrypt with its
    own generated key, so the boot stops, naming every missing setting.
    """
    if str(config["SQLALCHEMY_DATABASE_URI"]).startswith("sqlite"):
        return
    missing = [env for key, env in PRODUCTION_SETTINGS if not config.get(key)]
    if missing:
        raise ConfigError(f"{', '.join(missing)} must be set when DATABASE_URL is not SQLite "
                          "(see docs/security.md)")


def _instance_secret(instance_path: str) -> str:
    return read_or_create(instance_path, "secret_key", lambda: secrets.token_urlsafe(32))
