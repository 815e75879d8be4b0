"""Odoo: JSON-RPC 2.0 at /jsonrpc, authenticate once, then execute_kw."""

import pytest
from marshmallow import ValidationError

from integrations import odoo
from integrations.adapter import PermanentError, RetryableError
from integrations.odoo import OdooAdapter, OdooConfig, record_values

from .conftest import REDEEMED, make_event
from .receiver import Answer

REVERSED = {
    "merchant_id": "mer_1",
    "coupon": {"code": "K7QM3XPA9RT2", "campaign_id": "cmp_1", "order_id": "ord_1",
               "uses_left": 1},
    "redemption": {"id": "red_1", "store_id": "sto_1", "uses": 1,
                   "redeemed_at": "2030-01-05T04:30:00+00:00",
                   "reversed_at": "2030-01-05T04:35:10+00:00", "reason": "wrong table"},
}


class FakeOdoo:
    """Answers JSON-RPC calls as Odoo does; `errors` maps a method to an error `data`."""

    def __init__(self, uid=7, existing=()):
        self.uid, self.existing, self.errors, self.calls = uid, list(existing), {}, []

    def __call__(self, received):
        call = received.json()
        self.calls.append(call)
        params = call["params"]
        method = params["method"] if params["service"] == "common" else params["args"][4]
        if method in self.errors:
            error = {"code": 200, "message": "Odoo Server Error", "data": self.errors[method]}
            return Answer(200, _json({"jsonrpc": "2.0", "id": call["id"], "error": error}))
        result = {"authenticate": self.uid, "create": 42, "search": self.existing,
                  "search_count": 3}[method]
        return Answer(200, _json({"jsonrpc": "2.0", "id": call["id"], "result": result}))


def _json(value):
    import json
    return json.dumps(value).encode()


@pytest.fixture(autouse=True)
def forget_uids():
    odoo._uids.clear()
    yield
    odoo._uids.clear()


@pytest.fixture
def fake(receiver):
    receiver.handler = FakeOdoo()
    return receiver.handler


def configure(receiver, **extra):
    return OdooConfig().load({"url": receiver.url + "/", "database": "acme", "login": "bot@acme.cn",
                              "api_key": "key-123", **extra})


def test_authenticate_then_execute_kw(receiver, fake, context):
    outcome = OdooAdapter().deliver(make_event("coupon.redeemed", REDEEMED),
                                    configure(receiver), context)
    assert outcome.status_code == 200 and outcome.excerpt == "created x_couponsvc.redemption 42"
    assert {r.path for r in receiver.requests} == {"/jsonrpc"}
    authenticate, search, create = fake.calls
    assert authenticate["jsonrpc"] == "2.0" and authenticate["method"] == "call"
    assert authenticate["params"] == {"service": "common", "method": "authenticate",
                                      "args": ["acme", "bot@acme.cn", "key-123", {}]}
    assert search["params"]["service"] == "object"
    assert search["params"]["method"] == "execute_kw"
    assert search["params"]["args"] == ["acme", 7, "key-123", "x_couponsvc.redemption",
                                        "search", [[["x_event_id", "=", "evt_1"]]],
                                        {"limit": 1}]
    db, uid, key, model, method, args = create["params"]["args"]
    assert (db, uid, key, model, method) == ("acme", 7, "key-123", "x_couponsvc.redemption",
                                             "create")
    assert args == [{
        "x_name": "red_1", "x_event_id": "evt_1", "x_reversal": False,
        "x_coupon_code": "K7QM3XPA9RT2", "x_campaign_id": "cmp_1",
        "x_campaign_title": "赣州老字号双人套餐", "x_order_id": "ord_1", "x_store_id": "sto_1",
        "x_uses": 1, "x_amount": 39.9, "x_currency": "CNY",
        "x_redeemed_at": "2030-01-05 04:30:00"}]
    assert len({call["id"] for call in fake.calls}) == 3


def test_the_uid_is_asked_once(receiver, fake, context):
    config = configure(receiver)
    for n in range(3):
        OdooAdapter().deliver(make_event("coupon.redeemed", REDEEMED, id_=f"evt_{n}"), config,
                              context)
    methods = [c["params"]["method"] for c in fake.calls]
    assert methods.count("authenticate") == 1


def test_a_configured_uid_skips_authenticate(receiver, fake, context):
    OdooAdapter().deliver(make_event("coupon.redeemed", REDEEMED), configure(receiver, uid=2),
                          context)
    assert [c["params"]["method"] for c in fake.calls] == ["execute_kw", "execute_kw"]
    assert fake.calls[0]["params"]["args"][1] == 2


def test_a_reversal_is_a_record_of_its_own(receiver, fake, context):
    OdooAdapter().deliver(make_event("coupon.redemption_reversed", REVERSED, id_="evt_9"),
                          configure(receiver), context)
    values = fake.calls[-1]["params"]["args"][5][0]
    assert values["x_reversal"] is True and values["x_event_id"] == "evt_9"
    assert values["x_reversed_at"] == "2030-01-05 04:35:10"
    assert "x_amount" not in values  # the reversal event carries no campaign block


def test_an_event_already_recorded_is_not_created_again(receiver, context):
    receiver.handler = FakeOdoo(existing=[42])
    outcome = OdooAdapter().deliver(make_event("coupon.redeemed", REDEEMED),
                                    configure(receiver), context)
    assert outcome.excerpt == "already recorded as x_couponsvc.redemption 42"
    assert [c["params"]["args"][4] for c in receiver.handler.calls[1:]] == ["search"]


def test_custom_model_and_mapping(receiver, fake, context):
    config = configure(receiver, model="pos.order.coupon", dedupe_field=None, field_mapping={
        "name": "coupon.code", "amount": "campaign.price|amount", "date": "event.created_at"})
    OdooAdapter().deliver(make_event("coupon.redeemed", REDEEMED), config, context)
    (create,) = fake.calls[1:]
    args = create["params"]["args"]
    assert args[3:5] == ["pos.order.coupon", "create"]
    assert args[5] == [{"name": "K7QM3XPA9RT2", "amount": 39.9,
                        "date": "2030-01-05T04:30:00+00:00"}]


def test_a_refused_login_is_permanent(receiver, context):
    receiver.handler = FakeOdoo(uid=False)
    with pytest.raises(PermanentError, match="refused the login"):
        OdooAdapter().deliver(make_event("coupon.redeemed", REDEEMED), configure(receiver),
                              context)


@pytest.mark.parametrize(("name", "error"), [
    ("odoo.exceptions.AccessError", PermanentError),
    ("odoo.exceptions.ValidationError", PermanentError),
    ("builtins.ValueError", PermanentError),
    ("psycopg2.errors.SerializationFailure", RetryableError),
    ("odoo.http.SessionExpiredException", RetryableError)])
def test_json_rpc_errors(receiver, fake, context, name, error):
    fake.errors["create"] = {"name": name, "message": "Invalid field 'x_uses'", "debug": "..."}
    with pytest.raises(error) as caught:
        OdooAdapter().deliver(make_event("coupon.redeemed", REDEEMED), configure(receiver),
                              context)
    assert caught.value.excerpt == f"{name}: Invalid field 'x_uses'"
    assert caught.value.status_code == 200


def test_access_denied_forgets_the_uid(receiver, fake, context):
    config = configure(receiver)
    fake.errors["search"] = {"name": "odoo.exceptions.AccessDenied", "message": "Access Denied"}
    with pytest.raises(PermanentError):
        OdooAdapter().deliver(make_event("coupon.redeemed", REDEEMED), config, context)
    assert odoo._uids == {}


def test_ping_authenticates_and_reaches_the_model(receiver, fake, context):
    outcome = OdooAdapter().deliver(make_event(), configure(receiver), context)
    assert outcome.excerpt == "authenticated; x_couponsvc.redemption holds 3 records"
    assert fake.calls[-1]["params"]["args"][4:] == ["search_count", [[]]]


def test_other_events_are_skipped(receiver, fake, context):
    outcome = OdooAdapter().deliver(make_event("campaign.tipped", {}), configure(receiver),
                                    context)
    assert outcome.status_code is None and receiver.requests == []


def test_mapping_validation():
    for mapping in ({}, {"Bad Field": "coupon.code"}, {"x_a": "coupon..code"},
                    {"x_a": "coupon.code|upper"}):
        with pytest.raises(ValidationError):
            OdooConfig().load({"url": "https://acme.odoo.com", "database": "d", "login": "l",
                               "api_key": "k", "field_mapping": mapping})


def test_record_values_leave_out_missing_sources():
    values = record_values(make_event("coupon.redeemed", {"coupon": {"code": "C"}}),
                           {"a": "coupon.code", "b": "campaign.title", "c": "coupon.code.x"})
    assert values == {"a": "C"}


def test_api_key_is_not_dumped():
    config = OdooConfig().load({"url": "https://acme.odoo.com", "database": "d", "login": "l",
                                "api_key": "k"})
    assert "api_key" not in OdooConfig().dump(config)
    assert config["field_mapping"] == odoo.DEFAULT_MAPPING
