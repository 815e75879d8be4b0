"""Merchants, stores and API keys in the admin: operators create merchants, a manager runs
their own; a new key is shown once; another merchant's ids are 404 whatever the method."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from couponsvc.extensions import db
from couponsvc.models import ApiKey, AuditEntry, Merchant, Store
from tests.factories import Shop


def english(page):
    page.http.get("/language/en")
    return page


def text(answer) -> str:
    return re.sub(r"\s+", " ", answer.get_data(as_text=True))


def audit(app, action: str) -> list[AuditEntry]:
    with app.app_context():
        rows = db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)
                                  .order_by(AuditEntry.at)).all()
        db.session.expunge_all()
        return rows


def field_error(html: str, name: str) -> str:
    found = re.search(rf'<p class="error" id="f-{re.escape(name)}-error">(.*?)</p>', html)
    return found.group(1).strip() if found else ""


@pytest.fixture
def shop(client):
    return Shop(client)


@pytest.fixture
def manager(shop, manager_of, signed_in, client):
    return english(signed_in(client, manager_of(shop.merchant)))


@pytest.fixture
def op(operator, signed_in, client):
    return english(signed_in(client, operator))


def test_an_operator_lists_and_creates_merchants_with_inline_errors(app, shop, op):
    listed = text(op.get("/admin/merchants"))
    assert shop.merchant["name"] in listed
    refused = op.post("/admin/merchants", {"name": "", "city": "赣州", "timezone": "Mars/Olympus",
                                           "reversal_window": "99999999"})
    assert refused.status_code == 422
    html = text(refused)
    assert field_error(html, "name") and field_error(html, "reversal_window")
    assert 'value="赣州"' in html  # what was typed stays
    digits = op.post("/admin/merchants", {"name": "老街面馆", "city": "赣州", "timezone": "Asia/Shanghai",
                                          "reversal_window": "9" * 5000})  # more digits than int() reads
    assert digits.status_code == 422 and field_error(text(digits), "reversal_window")
    bad_zone = text(op.post("/admin/merchants", {"name": "老街面馆", "city": "赣州", "timezone": "Mars/Olympus",
                                                 "reversal_window": ""}))
    assert field_error(bad_zone, "timezone") == "Unknown IANA time zone."
    done = op.post("/admin/merchants", {"name": "老街面馆", "city": "赣州", "timezone": "Asia/Urumqi",
                                        "reversal_window": "300"})
    assert done.status_code == 302
    with app.app_context():
        merchant = db.session.scalars(select(Merchant).where(Merchant.name == "老街面馆")).one()
        assert (merchant.city, merchant.timezone, merchant.reversal_window) == ("赣州", "Asia/Urumqi", 300)
    assert done.headers["Location"].endswith(f"/admin/merchants/{merchant.id}")
    [entry] = audit(app, "merchant.create")
    assert entry.target_id == merchant.id and entry.detail["name"] == "老街面馆"


def test_a_manager_has_one_merchant_and_no_other(client, shop, manager):
    other = Shop(client)
    assert manager.get("/admin/merchants").headers["Location"].endswith(f"/admin/merchants/{shop.merchant['id']}")
    assert manager.get(f"/admin/merchants/{shop.merchant['id']}").status_code == 200
    foreign = other.merchant["id"]
    assert manager.get(f"/admin/merchants/{foreign}").status_code == 404
    assert manager.post(f"/admin/merchants/{foreign}", {"merchant.name": "x", "merchant.city": "y",
                                                        "merchant.timezone": "Asia/Shanghai"}).status_code == 404
    assert manager.post(f"/admin/merchants/{foreign}/stores", {"store.name": "x"}).status_code == 404
    assert manager.post(f"/admin/merchants/{foreign}/api-keys", {"key.role": "scanner"}).status_code == 404
    assert manager.get(f"/admin/stores/{other.store['id']}").status_code == 404
    assert manager.post(f"/admin/stores/{other.store['id']}", {"name": "mine now"}).status_code == 404
    [key_id] = [k["id"] for k in client.ok(client.get(f"merchants/{foreign}/api-keys"))["data"]][:1]
    assert manager.post(f"/admin/api-keys/{key_id}/revoke").status_code == 404
    assert manager.post("/admin/merchants", {"name": "x", "city": "y", "timezone": "Asia/Shanghai"}).status_code == 403
    assert client.ok(client.get(f"merchants/{foreign}"))["name"] == other.merchant["name"]
    assert client.ok(client.get(f"api-keys/{key_id}"))["revoked_at"] is None


def test_each_form_of_the_merchant_page_labels_its_own_inputs(shop, manager):
    html = manager.get(f"/admin/merchants/{shop.merchant['id']}").get_data(as_text=True)
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    for label_for in re.findall(r'<label for="([^"]+)"', html):
        assert label_for in ids


def test_a_manager_edits_their_merchant(app, shop, manager):
    answer = manager.post(f"/admin/merchants/{shop.merchant['id']}",
                          {"merchant.name": "新名字", "merchant.city": "赣州", "merchant.timezone": "Asia/Urumqi",
                           "merchant.reversal_window": "120"})
    assert answer.status_code == 302
    page = text(manager.get(f"/admin/merchants/{shop.merchant['id']}"))
    assert "新名字" in page and "Asia/Urumqi" in page and "120 seconds" in page
    [entry] = audit(app, "merchant.update")
    assert entry.detail == {"name": "新名字", "timezone": "Asia/Urumqi", "reversal_window": 120}
    form = {"merchant.name": "新名字", "merchant.city": "赣州", "merchant.timezone": "Asia/Urumqi",
            "merchant.reversal_window": "120"}
    refused = manager.post(f"/admin/merchants/{shop.merchant['id']}",
                           form | {"merchant.deal_url_template": "ftp://shop.example.cn/{nope}"})
    assert refused.status_code == 422 and field_error(text(refused), "merchant.deal_url_template")
    template = "https://shop.example.cn/deals/{campaign_id}"
    assert manager.post(f"/admin/merchants/{shop.merchant['id']}",
                        form | {"merchant.deal_url_template": template}).status_code == 302
    assert f'value="{template}"' in text(manager.get(f"/admin/merchants/{shop.merchant['id']}"))
    assert audit(app, "merchant.update")[1].detail == {"deal_url_template": template}


def test_stores_are_added_and_edited_with_city_and_address(app, client, shop, manager):
    merchant_id = shop.merchant["id"]
    refused = manager.post(f"/admin/merchants/{merchant_id}/stores", {"store.name": "", "store.address": "x"})
    assert refused.status_code == 422 and field_error(text(refused), "store.name")
    assert 'value="x"' in text(refused)
    assert manager.post(f"/admin/merchants/{merchant_id}/stores",
                        {"store.name": "章贡店", "store.city": "", "store.address": "文清路 8 号"}).status_code == 302
    with app.app_context():
        store = db.session.scalars(select(Store).where(Store.name == "章贡店")).one()
        db.session.expunge(store)
    assert store.city == "赣州"  # the merchant's, as the API does
    form = text(manager.get(f"/admin/stores/{store.id}"))
    assert 'value="文清路 8 号"' in form
    assert manager.post(f"/admin/stores/{store.id}", {"name": "章贡旗舰店", "city": "南昌",
                                                      "address": "红谷滩 1 号"}).status_code == 302
    shown = client.ok(client.get(f"stores/{store.id}"))
    assert (shown["name"], shown["city"], shown["address"]) == ("章贡旗舰店", "南昌", "红谷滩 1 号")
    assert [e.detail["name"] for e in audit(app, "store.create")] == ["章贡店"]
    assert [e.detail["address"] for e in audit(app, "store.update")] == ["红谷滩 1 号"]


def test_a_new_key_is_shown_once_works_and_is_revoked(app, client, shop, manager):
    merchant_id = shop.merchant["id"]
    created = manager.post(f"/admin/merchants/{merchant_id}/api-keys", manager.key_form(
        merchant_id, **{"key.role": "scanner", "key.store_id": shop.store["id"], "key.label": "前台"}))
    assert created.status_code == 201
    assert created.headers["Cache-Control"] == "no-store"
    secret = re.search(r'data-testid="new-key">(cpn_scanner_[A-Za-z0-9_-]+)<', created.get_data(as_text=True)).group(1)
    whoami = client.ok(client.get("whoami", key=secret))
    assert (whoami["key"]["role"], whoami["store"]["id"]) == ("scanner", shop.store["id"])
    assert client.get("redemption-attempts", key=secret).status_code == 403  # a scanner key, as asked
    later = manager.get(f"/admin/merchants/{merchant_id}").get_data(as_text=True)
    assert secret not in later and secret[:16] in later  # the prefix tells it apart, the key is gone
    [entry] = audit(app, "api_key.create")
    assert secret not in json.dumps(entry.detail) and entry.detail["role"] == "scanner"
    with app.app_context():
        key = db.session.scalars(select(ApiKey).where(ApiKey.label == "前台")).one()
        key_id = key.id
    assert f'/admin/api-keys/{key_id}/revoke' in later
    without_token = manager.post(f"/admin/api-keys/{key_id}/revoke", csrf=False)
    assert without_token.status_code == 400
    assert client.get("whoami", key=secret).status_code == 200
    assert manager.post(f"/admin/api-keys/{key_id}/revoke").status_code == 302
    assert client.get("whoami", key=secret).status_code == 401
    assert audit(app, "api_key.revoke")[0].target_id == key_id
    assert "revoked" in text(manager.get(f"/admin/merchants/{merchant_id}"))


def test_a_key_form_refuses_what_the_api_refuses(client, shop, manager):
    merchant_id = shop.merchant["id"]
    pinned_manager = manager.post(f"/admin/merchants/{merchant_id}/api-keys", manager.key_form(
        merchant_id, **{"key.role": "manager", "key.store_id": shop.store["id"], "key.label": ""}))
    assert pinned_manager.status_code == 422
    assert field_error(text(pinned_manager), "key.store_id") == "Only scanner keys can be pinned to a store."
    platform = manager.post(f"/admin/merchants/{merchant_id}/api-keys",
                            manager.key_form(merchant_id, **{"key.role": "platform"}))
    assert platform.status_code == 422 and field_error(text(platform), "key.role")
    foreign_store = Shop(client).store["id"]
    other = manager.post(f"/admin/merchants/{merchant_id}/api-keys", manager.key_form(
        merchant_id, **{"key.role": "scanner", "key.store_id": foreign_store}))
    assert other.status_code == 422
    assert field_error(text(other), "key.store_id") == "No such store for this merchant."


def test_a_key_form_sent_again_makes_no_second_key(app, client, shop, manager):
    """A reload of the answer that showed a new key sends its form again: the key it made is
    not made twice, nor shown again."""
    merchant_id = shop.merchant["id"]
    path = f"/admin/merchants/{merchant_id}/api-keys"
    form = manager.key_form(merchant_id, **{"key.role": "scanner", "key.label": "收银台 2"})
    first = manager.post(path, form)
    assert first.status_code == 201
    secret = re.search(r'data-testid="new-key">(cpn_scanner_[A-Za-z0-9_-]+)<', first.get_data(as_text=True)).group(1)
    again = manager.post(path, form)
    assert again.status_code == 303
    assert again.headers["Location"].endswith(f"/admin/merchants/{merchant_id}#keys")
    page = manager.get(f"/admin/merchants/{merchant_id}")
    assert "This form has made its key already" in text(page) and secret not in text(page)
    with app.app_context():
        made = db.session.scalars(select(ApiKey).where(ApiKey.label == "收银台 2")).all()
    assert len(made) == 1 and len(audit(app, "api_key.create")) == 1
    assert client.get("whoami", key=secret).status_code == 200
    # the answer's own form makes another key, once
    second = manager.post(path, manager.key_form(merchant_id, **{"key.role": "manager", "key.label": "店长"}))
    assert second.status_code == 201 and len(audit(app, "api_key.create")) == 2


def test_a_key_form_without_a_good_token_makes_no_key(app, client, shop, manager):
    merchant_id = shop.merchant["id"]
    path = f"/admin/merchants/{merchant_id}/api-keys"
    good = manager.key_form(merchant_id, **{"key.role": "scanner", "key.label": "前台"})
    assert manager.key_form(merchant_id)["key.token"] != good["key.token"]  # each page its own
    payload, signed = good["key.token"].rsplit(".", 1)  # a character inside the signature changed
    tampered = f"{payload}.{signed[:10]}{'A' if signed[10] != 'A' else 'B'}{signed[11:]}"
    for token in ("", "not-a-token", tampered):
        refused = manager.post(path, good | {"key.token": token})
        assert refused.status_code == 422, token
        assert "This form is out of date" in text(refused)
        assert re.search(r'name="key.token" value="([^"]+)"', refused.get_data(as_text=True)).group(1) != token
    assert audit(app, "api_key.create") == []
    assert manager.post(path, good).status_code == 201


def test_a_key_form_of_one_merchant_makes_no_key_for_another(app, client, op):
    first, second = Shop(client), Shop(client)
    form = op.key_form(first.merchant["id"], **{"key.role": "scanner", "key.label": "前台"})
    refused = op.post(f"/admin/merchants/{second.merchant['id']}/api-keys", form)
    assert refused.status_code == 422 and "This form is out of date" in text(refused)
    assert audit(app, "api_key.create") == []


def test_the_merchant_pages_users_link_lists_that_merchants_people(client, shop, op, manager_of):
    other = Shop(client)
    theirs, not_theirs = manager_of(shop.merchant), manager_of(other.merchant)
    html = op.get(f"/admin/merchants/{shop.merchant['id']}").get_data(as_text=True)
    link = re.search(r'<a class="button secondary" href="([^"]+)">Users</a>', html).group(1)
    people = text(op.get(link.replace("&amp;", "&")))
    assert theirs.email in people and not_theirs.email not in people
