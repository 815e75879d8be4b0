"""A merchant's own deal link template (`deal_url_template`) over the deployment's."""

from __future__ import annotations

import pytest

from couponsvc import merchants
from couponsvc.domain_error import DomainError
from couponsvc.extensions import db
from tests.factories import Shop, problem

from .conftest import open_png, qr_texts
from .test_poster_answer import fetch

PUBLIC = "https://tuan.example.cn"
DEPLOYMENT = "https://shop.example.cn/deals/{campaign_id}"
OWN = "https://laojie.example.cn/m/{merchant_id}/tuan/{campaign_id}"


def qr_of(client, campaign: dict) -> str:
    [text] = qr_texts(open_png(fetch(client, campaign).data))
    return text


@pytest.mark.config(PUBLIC_URL=PUBLIC, DEAL_URL_TEMPLATE=DEPLOYMENT)
def test_the_merchant_template_wins_and_clearing_it_falls_back(client):
    shop = Shop(client)
    merchant_id, campaign_id = shop.merchant["id"], shop.campaign["id"]
    assert shop.merchant["deal_url_template"] is None
    assert qr_of(client, shop.campaign) == f"https://shop.example.cn/deals/{campaign_id}"

    changed = client.ok(client.patch(f"merchants/{merchant_id}", {"deal_url_template": OWN},
                                     key=shop.manager))
    assert changed["deal_url_template"] == OWN
    own = f"https://laojie.example.cn/m/{merchant_id}/tuan/{campaign_id}"
    assert qr_of(client, shop.campaign) == own
    page = client.get(f"/d/{campaign_id}", key=None).get_data(as_text=True)
    assert f'class="buy" href="{own}"' in page

    client.ok(client.patch(f"merchants/{merchant_id}", {"deal_url_template": ""}))
    assert client.ok(client.get(f"merchants/{merchant_id}"))["deal_url_template"] is None
    assert qr_of(client, shop.campaign) == f"https://shop.example.cn/deals/{campaign_id}"


@pytest.mark.config(PUBLIC_URL=PUBLIC)
def test_without_any_template_the_link_is_the_deal_page_and_a_merchant_may_set_one(client):
    merchant = client.merchant(deal_url_template=OWN)
    assert merchant["deal_url_template"] == OWN
    campaign = client.campaign(merchant["id"])
    assert qr_of(client, campaign) == f"https://laojie.example.cn/m/{merchant['id']}/tuan/{campaign['id']}"
    client.ok(client.patch(f"merchants/{merchant['id']}", {"deal_url_template": None}))
    assert qr_of(client, campaign) == f"{PUBLIC}/d/{campaign['id']}"
    page = client.get(f"/d/{campaign['id']}", key=None).get_data(as_text=True)
    assert 'class="buy"' not in page  # no storefront: no button


@pytest.mark.parametrize("template", [
    "https://shop.example.cn/{deal_id}", "ftp://shop.example.cn/{campaign_id}",
    "shop.example.cn/{campaign_id}", "https://shop.example.cn/{campaign_id", 12,
])
def test_a_template_that_cannot_make_links_is_refused_with_its_field(client, template):
    shop = Shop(client)
    body = problem(client.patch(f"merchants/{shop.merchant['id']}", {"deal_url_template": template}),
                   422, "validation_error")
    assert list(body["errors"]) == ["deal_url_template"]
    body = problem(client.post("merchants", {"name": "面馆", "city": "赣州",
                                             "deal_url_template": template}), 422, "validation_error")
    assert list(body["errors"]) == ["deal_url_template"]


def test_the_refusal_speaks_chinese_when_asked(client):
    shop = Shop(client)
    body = problem(client.patch(f"merchants/{shop.merchant['id']}",
                                {"deal_url_template": "https://shop.example.cn/{deal}"},
                                headers={"Accept-Language": "zh-CN"}), 422, "validation_error")
    assert body["errors"]["deal_url_template"] == [
        "只能使用占位符 {campaign_id} 和 {merchant_id}（字面的花括号请写作 {{ 或 }}）。"]


def test_the_domain_refuses_it_too(app):
    with app.app_context(), pytest.raises(DomainError) as refused:
        merchants.create_merchant(db.session, name="面馆", city="赣州", max_window=3600,
                                  deal_url_template="javascript:alert(1)//{campaign_id}")
    assert refused.value.code == "validation_error"
    assert list(refused.value.extra["errors"]) == ["deal_url_template"]
