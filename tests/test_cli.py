"""The console script's commands, run as an operator would."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select, update

from couponsvc.data_keys import DataKeys
from couponsvc.extensions import db
from couponsvc.models import AdminUser, ApiKey, Campaign
from couponsvc.qr.keyring import KeyRing
from couponsvc.timeutil import utcnow
from tests.factories import Shop

REPO = Path(__file__).resolve().parent.parent


def test_create_key_prints_the_key_alone_and_it_works(app, client):
    result = app.test_cli_runner().invoke(args=["create-key", "--role", "platform"])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert key.startswith("cpn_platform_") and "\n" not in key
    assert client.get("merchants", key=key).status_code == 200


def test_create_key_refuses_a_manager_without_merchant(app):
    result = app.test_cli_runner().invoke(args=["create-key", "--role", "manager"])
    assert (result.exit_code, result.stdout) == (1, ""), result.output
    assert result.stderr == "Error: a manager key needs a merchant\n"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ApiKey)) == 0


def test_create_key_refuses_an_unknown_role_as_a_usage_error(app):
    result = app.test_cli_runner().invoke(args=["create-key", "--role", "owner"])
    assert (result.exit_code, result.stdout) == (2, ""), result.output
    assert "Invalid value for '--role': 'owner' is not one of" in result.stderr


def test_create_admin_reads_the_password_from_a_prompt_twice(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-admin", "--email", "Ops@Example.cn"],
                           input="s3cret-pass-1\ns3cret-pass-1\n")
    assert result.exit_code == 0, result.output
    assert "s3cret-pass-1" not in result.output  # hidden as typed
    assert "Repeat for confirmation" in result.output
    with app.app_context():
        user = db.session.execute(select(AdminUser)).scalar_one()
        assert (user.email, user.role, user.merchant_id) == ("ops@example.cn", "operator", None)
        assert user.password_hash.startswith("$argon2id$")
        assert PasswordHasher().verify(user.password_hash, "s3cret-pass-1")


def test_create_admin_refuses_a_prompt_answered_differently_twice(app):
    result = app.test_cli_runner().invoke(args=["create-admin", "--email", "ops@example.cn"],
                                          input="s3cret-pass-1\nanother-pass-2\n")
    assert result.exit_code != 0
    assert "do not match" in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AdminUser)) == 0


def test_create_admin_reads_the_password_from_the_environment(app, monkeypatch):
    monkeypatch.setenv("COUPONSVC_ADMIN_PASSWORD", "from-the-env-1")
    runner = app.test_cli_runner()
    assert runner.invoke(args=["create-admin", "--email", "ops@example.cn"]).exit_code == 0
    monkeypatch.setenv("COUPONSVC_ADMIN_PASSWORD", "changed-later-2")
    again = runner.invoke(args=["create-admin", "--email", "ops@example.cn"])
    assert again.exit_code == 0, again.output
    assert again.stderr == "operator ops@example.cn password set\n"
    with app.app_context():
        user = db.session.execute(select(AdminUser)).scalar_one()
        assert PasswordHasher().verify(user.password_hash, "changed-later-2")


def test_create_admin_takes_no_password_on_the_command_line(app):
    result = app.test_cli_runner().invoke(
        args=["create-admin", "--email", "ops@example.cn", "--password", "s3cret-pass-1"])
    assert result.exit_code == 2
    assert "No such option '--password'" in result.stderr
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AdminUser)) == 0


def test_create_admin_refuses_a_bad_email_or_a_short_password(app, monkeypatch):
    runner = app.test_cli_runner()
    for email, password in (("x", "long-enough-pass"), ("ops@example.cn", "short")):
        monkeypatch.setenv("COUPONSVC_ADMIN_PASSWORD", password)
        refused = runner.invoke(args=["create-admin", "--email", email])
        assert refused.exit_code == 1, refused.output
        assert refused.stderr.startswith("Error: ")
        assert ("email" if email == "x" else "password") in refused.stderr
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AdminUser)) == 0


def test_close_due_closes_ended_and_failed(app, client):
    tipped = Shop(client)
    tipped.coupons(1)
    untipped = Shop(client, min_group_size=5)
    order = client.order(untipped.campaign["id"], 2)
    with app.app_context():
        db.session.execute(update(Campaign).values(sales_end=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["close-due"])
    assert result.exit_code == 0, result.output
    assert client.ok(client.get(f"campaigns/{tipped.campaign['id']}"))["status"] == "ended"
    assert client.ok(client.get(f"campaigns/{untipped.campaign['id']}"))["status"] == "failed"
    assert client.ok(client.get(f"orders/{order['id']}"))["status"] == "refund_pending"
    code = order["coupons"][0]["code"]
    assert client.ok(client.get(f"coupons/{code}"))["status"] == "voided"
    revoked = client.ok(client.get("revocations"))["data"]
    assert {r["code"] for r in revoked} == {c["code"] for c in order["coupons"]}
    again = app.test_cli_runner().invoke(args=["close-due"])
    assert "closed 0" in again.output


def test_demo_creates_data_once_and_prints_working_keys(app, client):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo"])
    second = runner.invoke(args=["demo"])
    assert first.exit_code == 0 and second.exit_code == 0, first.output
    scanner = next(line.split()[2] for line in second.stdout.splitlines() if line.startswith("scanner key"))
    merchants = client.ok(client.get("merchants"))["data"]
    assert len([m for m in merchants if "demo" in m["name"]]) == 1
    assert client.get("revocations", key=scanner).status_code == 200


def test_new_qr_key_prints_a_usable_key(app):
    from couponsvc.qr.keyring import KeyRing

    result = app.test_cli_runner().invoke(args=["new-qr-key"])
    ring = KeyRing.from_settings([result.stdout.strip()], [], "/nonexistent")
    assert ring.current_kid


@pytest.mark.parametrize("environ", [
    {},  # nothing at all
    {"COUPONSVC_INSTANCE_PATH": "{tmp}/instance"},  # no app is built: nothing is written there
    {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},  # a production host not configured yet
])
@pytest.mark.parametrize("command", ["new-qr-key", "new-data-key"])
def test_key_commands_need_no_configuration(tmp_path, command, environ):
    environ = {name: value.format(tmp=tmp_path) for name, value in environ.items()}
    done = subprocess.run([sys.executable, "-m", "couponsvc.cli", command], env=environ, cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip()
    if command == "new-qr-key":
        ring = KeyRing.from_settings([key], [], str(tmp_path / "unused"))
        assert ring.verify(b"m", ring.sign(b"m")) == ring.current_kid
    else:
        assert DataKeys([key]).decrypt(DataKeys([key]).encrypt("x")) == "x"
    assert not (tmp_path / "instance").exists() and not (tmp_path / "unused").exists()
