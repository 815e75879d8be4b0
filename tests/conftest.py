"""Fixtures: a real database (PostgreSQL or SQLite, by COUPONSVC_TEST_DB) and real Redis.

The schema is built by the project's own Alembic migrations, once per run, in a
database of this run's own; each test starts from empty tables and an empty Redis
database. Redis is a private redis-server started for the run on a free port (so
two runs on one machine never flush each other's keys), unless
COUPONSVC_TEST_REDIS_URL names one.
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from couponsvc import create_app, timeutil
from couponsvc.config import database_url
from couponsvc.data_keys import new_key as new_data_key
from couponsvc.extensions import db
from couponsvc.qr.keyring import generate_private_key_text

from .factories import Client

BACKEND = os.environ.get("COUPONSVC_TEST_DB", "postgresql")
PG_URL = os.environ.get("COUPONSVC_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("COUPONSVC_TEST_REDIS_URL", "")
_private_redis = None
_deselected_by_backend = False


def pytest_sessionstart(session):
    """Before collection, so that test modules importing REDIS_URL see the private one."""
    global REDIS_URL, _private_redis
    if not REDIS_URL:
        from .deliveries.processes import RedisServer

        _private_redis = RedisServer(Path(tempfile.mkdtemp(prefix="couponsvc-test-redis-"))).start()
        REDIS_URL = _private_redis.url


def pytest_sessionfinish(session, exitstatus):
    if _private_redis is not None:
        _private_redis.kill()
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and _deselected_by_backend:
        # Every test asked for runs on the other pass (browser, PostgreSQL-only): not an error.
        session.exitstatus = pytest.ExitCode.OK


def pytest_report_header(config):
    return f"couponsvc database: {BACKEND}; redis: {REDIS_URL}"


@pytest.fixture(scope="session")
def database_uri(tmp_path_factory):
    if BACKEND == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'couponsvc.sqlite3'}"
        return
    yield from scratch_database("couponsvc_test")


def scratch_database(prefix: str):
    """A generator fixture's body: the URL of a new, empty PostgreSQL database named
    `<prefix>_<random>`, dropped when the fixture ends."""
    admin_url = make_url(database_url(PG_URL))
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    yield admin_url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


PRODUCTION_KEYS = {
    "QR_SIGNING_KEYS": [generate_private_key_text()],
    "DATA_KEYS": [new_data_key()],
    "PUBLIC_URL": "http://couponsvc.test",
}
"""What a boot on PostgreSQL requires, made once per run (processes started by tests get
the same through `tests.deliveries.processes.production_environment`)."""


def make_app(database_uri: str, instance_path: str, **overrides):
    os.environ["COUPONSVC_INSTANCE_PATH"] = instance_path
    config = {
        **({} if database_uri.startswith("sqlite") else PRODUCTION_KEYS),
        "SQLALCHEMY_DATABASE_URI": database_uri,
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": "test-secret",
        "TESTING": True,
        "RATELIMIT_STORAGE_URI": REDIS_URL,
        "LOOKUP_LIMIT_PER_KEY": "1000/minute",
        "LOOKUP_LIMIT_PER_ADDRESS": "1000/minute",
        **overrides,
    }
    return create_app(config)


@pytest.fixture(scope="session")
def instance_path(tmp_path_factory):
    return str(tmp_path_factory.mktemp("instance"))


@pytest.fixture(scope="session")
def migrated(database_uri, instance_path):
    from flask_migrate import upgrade

    app = make_app(database_uri, instance_path)
    with app.app_context():
        upgrade()
        db.engine.dispose()
    return database_uri


@pytest.fixture
def app(migrated, instance_path, request):
    overrides = getattr(request, "param", None) or {}
    for marker in reversed(list(request.node.iter_markers("config"))):  # the closest wins
        overrides = {**overrides, **marker.kwargs}
    application = make_app(migrated, instance_path, **overrides)
    redis.Redis.from_url(REDIS_URL).flushdb()
    with application.app_context():
        _empty_tables()
    yield application
    application.extensions["couponsvc.jobs"].wait_idle()
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


def _empty_tables():
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    if db.engine.dialect.name == "postgresql":
        db.session.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    else:
        for table in tables:
            db.session.execute(text(f"DELETE FROM {table}"))
    db.session.commit()


@pytest.fixture
def client(app):
    return Client(app)


class Clock:
    """couponsvc's clock: the real time until `stopped_at` is set."""

    stopped_at: datetime | None = None

    def __call__(self) -> datetime:
        return self.stopped_at or datetime.now(UTC)


@pytest.fixture
def clock(app, monkeypatch) -> Clock:
    """Stands in for `timeutil.utcnow` in every couponsvc module that imported it."""
    clock, real = Clock(), timeutil.utcnow
    for name, module in list(sys.modules.items()):
        if name.startswith("couponsvc") and getattr(module, "utcnow", None) is real:
            monkeypatch.setattr(module, "utcnow", clock)
    return clock


def pytest_configure(config):
    config.addinivalue_line("markers", "config(**settings): app settings for this test")
    config.addinivalue_line("markers", "postgresql: needs PostgreSQL (races across connections)")
    config.addinivalue_line("markers", "browser: drives chromium (every test in tests/browser/)")
    config.addinivalue_line("markers", "multihost: hosts in network namespaces (tests/multihost/)")


BROWSER_DIR = Path(__file__).parent / "browser"
MULTIHOST_DIR = Path(__file__).parent / "multihost"


def _runs_browser_tests() -> bool:
    """COUPONSVC_TEST_BROWSER=1 or 0 decides; unset, the PostgreSQL pass runs them, so
    ./scripts/test (PostgreSQL, then SQLite) runs each browser test once."""
    wanted = os.environ.get("COUPONSVC_TEST_BROWSER", "")
    return wanted == "1" if wanted in ("0", "1") else BACKEND == "postgresql"


def _runs_multihost_tests() -> bool:
    """The multi-host test brings its own PostgreSQL: once per ./scripts/test is enough, on
    the PostgreSQL pass unless COUPONSVC_TEST_MULTIHOST=1 or 0 decides."""
    wanted = os.environ.get("COUPONSVC_TEST_MULTIHOST", "")
    return wanted == "1" if wanted in ("0", "1") else BACKEND == "postgresql"


def pytest_collection_modifyitems(config, items):
    global _deselected_by_backend
    for item in items:
        if BROWSER_DIR in Path(item.path).parents:
            item.add_marker(pytest.mark.browser)
        if MULTIHOST_DIR in Path(item.path).parents:
            item.add_marker(pytest.mark.multihost)
    for marker, runs in (("browser", _runs_browser_tests()), ("multihost", _runs_multihost_tests())):
        if runs:
            continue
        left_out = [item for item in items if item.get_closest_marker(marker)]
        if left_out:
            config.hook.pytest_deselected(items=left_out)
            items[:] = [item for item in items if not item.get_closest_marker(marker)]
            _deselected_by_backend = True
    if BACKEND == "postgresql":
        return
    # Races between many connections are PostgreSQL's business; SQLite runs them
    # serialised, which proves nothing. They run in the PostgreSQL pass.
    deselected = [item for item in items if item.get_closest_marker("postgresql")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker("postgresql")]
        _deselected_by_backend = True
