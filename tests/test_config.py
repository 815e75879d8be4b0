"""Settings are read strictly: a bad value stops the boot with a message naming it."""

from __future__ import annotations

import pytest

from couponsvc.config import ConfigError, database_url, load_settings


def test_plain_postgres_urls_work_as_given():
    assert database_url("postgres://u:p@db:5432/x") == "postgresql+psycopg://u:p@db:5432/x"
    assert database_url("postgresql://u@db/x") == "postgresql+psycopg://u@db/x"
    assert database_url("sqlite:///a.db") == "sqlite:///a.db"


def test_default_is_sqlite_under_instance(tmp_path):
    settings = load_settings({}, str(tmp_path))
    assert settings["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/couponsvc.sqlite3"
    assert settings["SECRET_KEY"] == load_settings({}, str(tmp_path))["SECRET_KEY"]
    assert settings["DEFAULT_REVERSAL_WINDOW"] == 600


@pytest.mark.parametrize(("environ", "named"), [
    ({"COUPONSVC_MAX_REVERSAL_WINDOW": "ten"}, "COUPONSVC_MAX_REVERSAL_WINDOW"),
    ({"COUPONSVC_MAX_REVERSAL_WINDOW": "-1"}, "COUPONSVC_MAX_REVERSAL_WINDOW"),
    ({"COUPONSVC_RATELIMIT_ENABLED": "maybe"}, "COUPONSVC_RATELIMIT_ENABLED"),
    ({"COUPONSVC_DEFAULT_REVERSAL_WINDOW": "900", "COUPONSVC_MAX_REVERSAL_WINDOW": "600"},
     "COUPONSVC_DEFAULT_REVERSAL_WINDOW"),
    ({"DATABASE_URL": "postgresql://db/x"}, "SECRET_KEY"),
])
def test_bad_settings_stop_the_boot_naming_the_variable(tmp_path, environ, named):
    with pytest.raises(ConfigError, match=named):
        load_settings(environ, str(tmp_path))


def test_a_bad_qr_key_stops_the_boot(tmp_path, monkeypatch):
    from couponsvc import create_app

    monkeypatch.setenv("COUPONSVC_QR_SIGNING_KEYS", "not-a-key")
    with pytest.raises(ConfigError, match="COUPONSVC_QR_SIGNING_KEYS"):
        create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db"})


def test_healthz_and_readyz(client, app):
    assert client.get("/healthz", key=None).get_json() == {"status": "ok"}
    ready = client.get("/readyz", key=None)
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": "ok", "queue": "ok"}


@pytest.mark.config(REDIS_URL="redis://127.0.0.1:1/0")
def test_readyz_reports_an_unreachable_queue(client):
    ready = client.get("/readyz", key=None)
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["queue"].startswith("error")
