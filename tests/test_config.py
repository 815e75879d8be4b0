"""Settings are read strictly: a bad value stops the boot with a message naming it."""

from __future__ import annotations

import os

import pytest

from couponsvc.config import ConfigError, database_url, load_settings
from couponsvc.data_keys import DataKeys, new_key
from couponsvc.qr.keyring import KeyRing, generate_private_key_text


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


PRODUCTION_DB = "postgresql+psycopg://nobody@127.0.0.1:1/none"  # never connected to at boot


def production(**settings):
    return {"SQLALCHEMY_DATABASE_URI": PRODUCTION_DB, "SECRET_KEY": "s", **settings}


@pytest.fixture
def unconfigured(tmp_path, monkeypatch):
    """No COUPONSVC_* setting in the environment; the instance path an empty directory."""
    for name in [name for name in os.environ if name.startswith("COUPONSVC_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("COUPONSVC_INSTANCE_PATH", str(tmp_path / "instance"))
    return tmp_path / "instance"


def test_a_production_boot_refuses_without_keys_and_public_url_naming_each(unconfigured):
    from couponsvc import create_app

    with pytest.raises(ConfigError) as refused:
        create_app(production())
    for name in ("COUPONSVC_QR_SIGNING_KEYS", "COUPONSVC_DATA_KEYS", "COUPONSVC_PUBLIC_URL"):
        assert name in str(refused.value)
    given = {"QR_SIGNING_KEYS": [generate_private_key_text()], "DATA_KEYS": [new_key()],
             "PUBLIC_URL": "https://coupons.example.cn"}
    for key, name in (("QR_SIGNING_KEYS", "COUPONSVC_QR_SIGNING_KEYS"), ("DATA_KEYS", "COUPONSVC_DATA_KEYS"),
                      ("PUBLIC_URL", "COUPONSVC_PUBLIC_URL")):
        with pytest.raises(ConfigError) as refused:
            create_app(production(**{**given, key: type(given[key])()}))
        assert name in str(refused.value)
        assert not any(other in str(refused.value) for other in given if other != key)
    # no host signs or encrypts with a key of its own making
    assert not (unconfigured / "qr_signing_key.pem").exists() and not (unconfigured / "data_key").exists()


def test_a_production_boot_with_its_settings_from_the_environment_starts(unconfigured, monkeypatch):
    from couponsvc import create_app
    from couponsvc.qr_keys import data_keys, keyring

    signing, data = generate_private_key_text(), new_key()
    for name, value in {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "SECRET_KEY": "s",
                        "COUPONSVC_QR_SIGNING_KEYS": signing, "COUPONSVC_DATA_KEYS": data,
                        "COUPONSVC_PUBLIC_URL": "https://coupons.example.cn/"}.items():
        monkeypatch.setenv(name, value)
    app = create_app()
    with app.app_context():
        assert keyring().current_kid == KeyRing.from_settings([signing], [], "unused").current_kid
        assert DataKeys([data]).decrypt(data_keys().encrypt("x")) == "x"
    assert app.config["PUBLIC_URL"] == "https://coupons.example.cn"
    assert not unconfigured.exists() or not any(unconfigured.iterdir())
