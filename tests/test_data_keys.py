"""Data keys: the first encrypts, all decrypt; `couponsvc rotate-data-keys` re-encrypts
every stored secret under the first, plaintext credentials of older versions included."""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest
from sqlalchemy import DateTime, Integer, String, Text, insert, select, update

from couponsvc.data_keys import DataKeyError, DataKeys, is_encrypted, new_key
from couponsvc.extensions import db
from couponsvc.integration_credentials import full_config
from couponsvc.models import IdempotencyRecord, Integration
from couponsvc.timeutil import utcnow
from tests.conftest import make_app
from tests.factories import Shop

OLD, NEW = new_key(), new_key()


@contextmanager
def app_with(migrated: str, instance_path: str, **settings):
    """Another app on the test database (another deployment's settings); its pool closed after."""
    other = make_app(migrated, instance_path, **settings)
    try:
        yield other
    finally:
        with other.app_context():
            db.engine.dispose()


def stored_answer(table, encrypted: str) -> dict:
    """A row of the stored answers' table whose text columns hold `encrypted`."""
    values = {}
    for n, column in enumerate(table.columns):
        if column.nullable and not column.primary_key:
            continue
        if isinstance(column.type, Text):
            values[column.name] = encrypted
        elif isinstance(column.type, String):
            values[column.name] = f"k{n}"
        elif isinstance(column.type, Integer):
            values[column.name] = 201
        elif isinstance(column.type, DateTime) or column.name.endswith("_at"):
            values[column.name] = utcnow()
    return values


@pytest.mark.config(DATA_KEYS=[OLD], ALLOW_PRIVATE_WEBHOOK_TARGETS=True)
def test_rotate_data_keys_re_encrypts_everything_under_the_first_key(app, client, migrated, instance_path):
    shop = Shop(client)
    path = f"merchants/{shop.merchant['id']}/integrations"
    odoo = client.ok(client.post(path, {"adapter": "odoo", "config": {
        "url": "http://127.0.0.1:9", "database": "acme", "login": "bot", "uid": 2, "api_key": "odoo-key"}},
        key=shop.manager), 201)["id"]
    mastodon = client.ok(client.post(path, {"adapter": "mastodon", "config": {
        "instance_url": "http://127.0.0.1:9", "access_token": "masto-token"}}, key=shop.manager), 201)["id"]
    table = IdempotencyRecord.__table__
    with app.app_context():
        # an integration as a version before encryption stored it: credentials in the clear
        legacy = db.session.get(Integration, mastodon)
        db.session.execute(update(Integration).where(Integration.id == mastodon)
                           .values(config={**legacy.config, "access_token": "masto-token"}, credentials=None))
        db.session.execute(insert(table).values(stored_answer(table, DataKeys([OLD]).encrypt("a stored answer"))))
        db.session.commit()

    with app_with(migrated, instance_path, DATA_KEYS=[NEW, OLD]) as rotated:
        result = rotated.test_cli_runner().invoke(args=["rotate-data-keys"])
    assert result.exit_code == 0, result.output
    assert "integrations: 2 value(s)" in result.output

    only_new = DataKeys([NEW])
    # the old key dropped: the service reads all it needs with the new one alone
    with app_with(migrated, instance_path, DATA_KEYS=[NEW]) as after, after.app_context():
        rows = {row.id: row for row in db.session.execute(select(Integration)).scalars()}
        assert full_config(rows[odoo], only_new)["api_key"] == "odoo-key"
        assert full_config(rows[mastodon], only_new)["access_token"] == "masto-token"
        assert "access_token" not in rows[mastodon].config
        assert all(is_encrypted(row.credentials) for row in rows.values())
        with pytest.raises(DataKeyError):
            full_config(rows[odoo], DataKeys([OLD]))
        texts = [column for column in table.columns if isinstance(column.type, Text)]
        stored = db.session.execute(select(*texts)).one()
        assert [only_new.decrypt(value) for value in stored] == ["a stored answer"] * len(texts)
        db.session.remove()


@pytest.mark.config(DATA_KEYS=[OLD], ALLOW_PRIVATE_WEBHOOK_TARGETS=True)
def test_rotate_data_keys_without_the_old_key_fails_naming_the_cause(app, client, migrated, instance_path):
    shop = Shop(client)
    client.ok(client.post(f"merchants/{shop.merchant['id']}/integrations", {"adapter": "mastodon", "config": {
        "instance_url": "http://127.0.0.1:9", "access_token": "t"}}, key=shop.manager), 201)
    with app_with(migrated, instance_path, DATA_KEYS=[NEW]) as other:
        result = other.test_cli_runner().invoke(args=["rotate-data-keys"])
    assert result.exit_code == 1, result.output
    assert "COUPONSVC_DATA_KEYS" in result.output
    with app.app_context():
        stored = db.session.execute(select(Integration.credentials)).scalar_one()
    assert json.loads(DataKeys([OLD]).decrypt(stored)) == {"access_token": "t"}
