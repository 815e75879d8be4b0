"""The bounded caches: least recently used entries go first, and what must not be
remembered (a key's revocation, a refused Odoo login) is not."""

from __future__ import annotations

import pytest
from marshmallow import Schema, fields

from couponsvc import principal
from couponsvc.domain_error import DomainError
from couponsvc.extensions import db
from couponsvc.models import ApiKey
from couponsvc.timeutil import utcnow
from integrations import adapter, odoo
from integrations.adapter import Context
from tests.integrations.conftest import REDEEMED, make_event
from tests.integrations.receiver import Receiver
from tests.integrations.test_odoo import FakeOdoo


@pytest.fixture
def identities():
    principal._IDENTITIES.clear()
    yield principal._IDENTITIES
    principal._IDENTITIES.clear()


def _filler(n: int) -> principal.Principal:
    return principal.Principal(key_id=f"key_{n}", role=principal.SCANNER, merchant_id=None,
                               store_id=None)


def test_a_key_in_use_stays_remembered_when_the_identity_cache_is_full(app, identities):
    """Filling the cache forgets the least recently used keys, not the one in use; and
    `authenticate` still refuses it once revoked (only `identify` remembers)."""
    with app.app_context():
        session = db.session
        busy = principal.create_key(session, role="platform", label="busy")
        newcomer = principal.create_key(session, role="platform", label="newcomer")
        session.commit()
        busy_header = f"Bearer {busy.secret}"
        assert principal.authenticate(session, busy_header).key_id == busy.key.id
        for n in range(principal._IDENTITIES_MAX - 1):  # the cache is full
            identities[f"filler-{n}"] = _filler(n)
        assert principal.identify(session, busy_header).key_id == busy.key.id  # in use
        principal.authenticate(session, f"Bearer {newcomer.secret}")  # one more key
        assert len(identities) == principal._IDENTITIES_MAX

        session.get(ApiKey, busy.key.id).revoked_at = utcnow()
        session.commit()
        # Remembered: identify answers from memory (its caller's write re-checks the key) ...
        assert principal.identify(session, busy_header).key_id == busy.key.id
        # ... but authenticate asks the database every time.
        with pytest.raises(DomainError) as refused:
            principal.authenticate(session, busy_header)
        assert refused.value.code == "unauthenticated"


class _CountingSchema(Schema):
    loads = 0
    n = fields.Integer()

    def load(self, *args, **kwargs):
        type(self).loads += 1
        return super().load(*args, **kwargs)


class _CountingAdapter:
    name = "counting"
    config_schema = _CountingSchema


def test_a_config_in_use_stays_loaded_while_many_others_come_and_go():
    adapter._loaded_configs.clear()
    _CountingSchema.loads = 0
    counting, busy = _CountingAdapter(), {"n": -1}
    try:
        for n in range(adapter._LOADED_CONFIGS_MAX * 2):
            assert adapter.load_config(counting, busy) == busy  # a drain's config, used all along
            assert adapter.load_config(counting, {"n": n}) == {"n": n}
        assert len(adapter._loaded_configs) == adapter._LOADED_CONFIGS_MAX
        # Loaded once, then remembered, though 1,024 other configs passed through.
        assert _CountingSchema.loads == 1 + adapter._LOADED_CONFIGS_MAX * 2
    finally:
        adapter._loaded_configs.clear()


def test_odoo_uids_are_bounded(monkeypatch):
    monkeypatch.setenv("COUPONSVC_ALLOW_PRIVATE_WEBHOOK_TARGETS", "1")
    odoo._uids.clear()
    try:
        for n in range(odoo._UIDS_MAX):
            odoo._uids[("https://other.example", "db", f"login-{n}")] = n + 1
        with Receiver() as receiver:
            receiver.handler = FakeOdoo(uid=7)
            config = odoo.OdooConfig().load({"url": receiver.url, "database": "acme",
                                             "login": "bot@acme.cn", "api_key": "key-123"})
            odoo.OdooAdapter().deliver(make_event("coupon.redeemed", REDEEMED), config,
                                       Context(timeout=5.0))
        assert len(odoo._uids) == odoo._UIDS_MAX
        assert odoo._uids[(receiver.url.rstrip("/"), "acme", "bot@acme.cn")] == 7
    finally:
        odoo._uids.clear()
