"""No secret readable at rest, none shown twice: integration credentials are stored
encrypted under the data keys and are write-only in every answer; a dump of the
database holds no key or credential in the clear."""

from __future__ import annotations

import glob
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select, text

from couponsvc.data_keys import is_encrypted
from couponsvc.extensions import db
from couponsvc.models import Integration
from tests.factories import Shop
from tests.racing import plain_postgres_url

pytestmark = pytest.mark.config(ALLOW_PRIVATE_WEBHOOK_TARGETS=True)

TARGET = "http://127.0.0.1:9"

CREDENTIALS = {
    # adapter: (config, the secret values in it)
    "webhook": ({"url": f"{TARGET}/hook", "headers": {"X-Erp-Token": "hdr-SECRET-webhook"}},
                ["hdr-SECRET-webhook"]),
    "odoo": ({"url": TARGET, "database": "acme", "login": "bot@acme.cn", "uid": 7,
              "api_key": "odoo-SECRET-api-key"}, ["odoo-SECRET-api-key"]),
    "wecom": ({"key": "wecom-SECRET-robot-key"}, ["wecom-SECRET-robot-key"]),
    "dingtalk": ({"webhook_url": f"{TARGET}/robot/send?access_token=ding-SECRET-token",
                  "secret": "SEC-ding-SECRET-signing"}, ["ding-SECRET-token", "SEC-ding-SECRET-signing"]),
    "mastodon": ({"instance_url": TARGET, "access_token": "masto-SECRET-token"}, ["masto-SECRET-token"]),
    "discourse": ({"base_url": TARGET, "api_key": "discourse-SECRET-key", "category_id": 7},
                  ["discourse-SECRET-key"]),
    "weibo": ({"access_token": "weibo-SECRET-token", "api_base": TARGET, "safe_domain": "shop.example.cn",
               "link_template": "https://shop.example.cn/deals/{campaign_id}"}, ["weibo-SECRET-token"]),
    "feishu": ({"webhook_url": f"{TARGET}/open-apis/bot/v2/hook/feishu-SECRET-hook",
                "secret": "feishu-SECRET-signing"}, ["feishu-SECRET-hook", "feishu-SECRET-signing"]),
}


def test_every_installed_adapter_with_credentials_is_checked_here():
    from couponsvc.adapters import installed
    from integrations.adapter import secret_fields

    with_credentials = {name for name, adapter in installed().items() if secret_fields(adapter.config_schema)}
    assert with_credentials <= set(CREDENTIALS)


def create_all(client, shop) -> tuple[dict[str, dict], list[str]]:
    """One integration of every built-in adapter; their answers, and every secret sent or made."""
    created, secrets = {}, []
    for adapter, (config, values) in CREDENTIALS.items():
        answer = client.ok(client.post(f"merchants/{shop.merchant['id']}/integrations",
                                       {"adapter": adapter, "config": config}, key=shop.manager), 201)
        created[adapter] = answer
        secrets += values
    secrets.append(created["webhook"]["secret"])
    return created, secrets


def test_credentials_are_stored_encrypted_never_as_plain_json(app, client):
    shop = Shop(client)
    created, secrets = create_all(client, shop)
    with app.app_context():
        rows = db.session.execute(text("SELECT adapter, config, credentials FROM integrations")).all()
    assert {row.adapter for row in rows} == set(CREDENTIALS)
    for row in rows:
        stored = row.config if isinstance(row.config, str) else json.dumps(row.config)
        assert is_encrypted(row.credentials), row.adapter
        for secret in secrets:
            assert secret not in stored and secret not in row.credentials, (row.adapter, secret)


def test_credentials_are_write_only_in_every_answer(app, client):
    shop = Shop(client)
    created, secrets = create_all(client, shop)
    # the webhook's signing secret is answered once, when it is made; nothing else is echoed
    assert created["webhook"]["secret"].startswith("whsec_")
    assert all("secret" not in answer for adapter, answer in created.items() if adapter != "webhook")
    answers = [json.dumps({k: v for k, v in answer.items() if k != "secret"}) for answer in created.values()]
    for answer in created.values():
        answers.append(client.get(f"integrations/{answer['id']}", key=shop.manager).get_data(as_text=True))
        patched = client.patch(f"integrations/{answer['id']}", {"config": {}, "timeout": 5}, key=shop.manager)
        assert patched.status_code == 200, patched.get_json()
        answers.append(patched.get_data(as_text=True))
    answers.append(client.get(f"merchants/{shop.merchant['id']}/integrations",
                              key=shop.manager).get_data(as_text=True))
    for answer in answers:
        for secret in secrets:
            assert secret not in answer
    assert client.ok(client.get(f"integrations/{created['odoo']['id']}", key=shop.manager))["config"]["login"] \
        == "bot@acme.cn"


def test_a_patch_keeps_credentials_not_sent_again_and_replaces_those_sent(app, client):
    from couponsvc.integration_credentials import full_config
    from couponsvc.qr_keys import data_keys

    shop = Shop(client)
    created, _ = create_all(client, shop)
    odoo = created["odoo"]["id"]
    client.ok(client.patch(f"integrations/{odoo}", {"config": {"login": "other@acme.cn"}}, key=shop.manager))
    with app.app_context():
        assert full_config(db.session.get(Integration, odoo), data_keys())["api_key"] == "odoo-SECRET-api-key"
    client.ok(client.patch(f"integrations/{odoo}", {"config": {"api_key": "odoo-NEW"}}, key=shop.manager))
    with app.app_context():
        integration = db.session.get(Integration, odoo)
        assert full_config(integration, data_keys())["api_key"] == "odoo-NEW"
        assert "api_key" not in integration.config


def test_the_adapters_schemas_say_credentials_are_write_only(client):
    listed = {a["name"]: a["config_schema"]["properties"]
              for a in client.ok(client.get("adapters"))["data"]}
    expected = {"webhook": {"secret", "headers"}, "odoo": {"api_key"}, "wecom": {"webhook_url", "key"},
                "dingtalk": {"webhook_url", "access_token", "secret"}, "mastodon": {"access_token"}}
    for adapter, names in expected.items():
        write_only = {name for name, schema in listed[adapter].items() if schema.get("writeOnly")}
        assert write_only == names, adapter
        assert all(listed[adapter][name].get("x-secret") for name in names)


def test_a_dump_of_the_database_holds_no_key_or_credential(app, client, tmp_path):
    """pg_dump on PostgreSQL; the database file itself (and its journal) on SQLite."""
    shop = Shop(client)
    _, secrets = create_all(client, shop)
    made = client.post(f"merchants/{shop.merchant['id']}/api-keys", {"role": "scanner", "label": "till 2"},
                       headers={"Idempotency-Key": "key-for-till-2"})
    secrets.append(client.ok(made, 201)["key"])
    secrets += [shop.manager, shop.scanner, client.platform]
    dump = dump_database(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path)
    assert b"key-for-till-2" in dump  # the answer to that request is stored (and was dumped)
    assert b"bot@acme.cn" in dump  # and what is not secret is there in the clear
    for secret in secrets:
        assert secret.encode() not in dump, secret


def dump_database(uri: str, tmp_path: Path) -> bytes:
    if uri.startswith("sqlite"):
        path = uri.removeprefix("sqlite:///")
        return b"".join(Path(part).read_bytes() for part in (path, f"{path}-wal", f"{path}-journal")
                        if Path(part).exists())
    binary = shutil.which("pg_dump") or sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"))[-1]
    out = tmp_path / "dump.sql"
    subprocess.run([binary, "--no-owner", "--file", str(out), plain_postgres_url(uri)], check=True,
                   capture_output=True, timeout=120)
    return out.read_bytes()


def test_the_drain_delivers_with_the_decrypted_credentials(app, client):
    """A webhook's headers reach the receiver: the drain decrypts what the API encrypted."""
    from tests.deliveries.test_pipeline import work_off
    from tests.integrations.receiver import Receiver

    shop = Shop(client)
    with Receiver() as receiver:
        client.ok(client.post(f"merchants/{shop.merchant['id']}/integrations", {
            "adapter": "webhook", "config": {"url": receiver.url + "/hook", "headers": {"X-Erp-Token": "t0k3n"}},
            "events": ["coupon.redeemed"]}, key=shop.manager), 201)
        client.ok(shop.redeem(shop.coupon()["code"]), 201)
        work_off(app)
        sent = [{name.lower(): value for name, value in request.headers.items()} for request in receiver.requests]
        assert [headers.get("x-erp-token") for headers in sent] == ["t0k3n"]
    with app.app_context():
        stored = db.session.execute(select(Integration.config)).scalar_one()
    assert "headers" not in stored


def test_loaded_configs_are_cached_under_a_digest_never_a_credential():
    from integrations import adapter as interface
    from integrations.webhook import WebhookAdapter, new_secret

    webhook, first, second = WebhookAdapter(), new_secret(), new_secret()
    loaded = [interface.load_config(webhook, {"url": "https://erp.example.cn/hook", "secret": secret,
                                              "headers": {"X-Erp-Token": "cache-SECRET"}})
              for secret in (first, second)]
    assert [config["secret"] for config in loaded] == [first, second]  # a changed secret is a new entry
    keys = repr(list(interface._loaded_configs))
    assert first not in keys and second not in keys and "cache-SECRET" not in keys


def test_an_adapter_whose_credential_is_readable_does_not_conform():
    from marshmallow import Schema, fields

    from integrations.adapter import SECRET_FLAG, credential
    from integrations.registry import conformance_problem
    from integrations.wecom import WeComAdapter

    class Leaky(Schema):
        token = fields.String(metadata={SECRET_FLAG: True})

    class Sealed(Schema):
        token = credential(fields.String())

    leaky = type("LeakyAdapter", (WeComAdapter,), {"name": "leaky", "config_schema": Leaky})()
    assert "token" in conformance_problem(leaky)
    sealed = type("SealedAdapter", (WeComAdapter,), {"name": "sealed", "config_schema": Sealed})()
    assert conformance_problem(sealed) is None
