"""The deal link: a template of the deployment or the merchant, else the deal page."""

from __future__ import annotations

import pytest

from couponsvc.config import ConfigError, load_settings
from couponsvc.promotion.deal_link import deal_link, template_problems

BASE = "https://tuan.example.cn"


def link(merchant=None, deployment=None, campaign_id="cmp_1", merchant_id="mer_1"):
    return deal_link(campaign_id=campaign_id, merchant_id=merchant_id, merchant_template=merchant,
                     deployment_template=deployment, public_base=BASE)


def test_without_a_template_the_link_is_the_deal_page():
    assert link() == f"{BASE}/d/cmp_1"


def test_the_deployment_template_is_filled_in():
    assert link(deployment="https://shop.example.cn/deals/{campaign_id}?m={merchant_id}") \
        == "https://shop.example.cn/deals/cmp_1?m=mer_1"


def test_the_merchant_template_wins_over_the_deployment_one():
    assert link(merchant="https://laojie.example.cn/t/{campaign_id}",
                deployment="https://shop.example.cn/deals/{campaign_id}") \
        == "https://laojie.example.cn/t/cmp_1"


def test_values_are_escaped_for_the_url():
    assert link(deployment="https://shop.example.cn/{campaign_id}", campaign_id="a/b c") \
        == "https://shop.example.cn/a%2Fb%20c"
    assert link(campaign_id="a/b") == f"{BASE}/d/a%2Fb"


@pytest.mark.parametrize("template", [
    "https://shop.example.cn/deals/{campaign_id}",
    "http://shop.example.cn/m/{merchant_id}/d/{campaign_id}",
    "https://shop.example.cn/deals",  # one page for every deal
    "https://shop.example.cn/d?x={{literal}}&id={campaign_id}",
])
def test_good_templates(template):
    assert template_problems(template) == []


@pytest.mark.parametrize("template", [
    "https://shop.example.cn/deals/{id}",  # an unknown placeholder
    "https://shop.example.cn/deals/{}",  # a positional one
    "https://shop.example.cn/deals/{campaign_id!r}",  # a conversion
    "https://shop.example.cn/deals/{campaign_id:>40}",  # a format spec
    "https://shop.example.cn/deals/{campaign_id",  # unmatched brace
    "https://shop.example.cn/deals/}",
    "ftp://shop.example.cn/{campaign_id}",
    "javascript:alert(1)//{campaign_id}",
    "shop.example.cn/{campaign_id}",
    "https:///{campaign_id}",
    "https://shop.example.cn/deals/ {campaign_id}",
    "https://shop.example.cn/\n{campaign_id}",
    "https://[::1/{campaign_id}",
    "https://shop.example.cn/" + "x" * 500,
])
def test_bad_templates(template):
    assert template_problems(template)


def test_the_deployment_setting_is_checked_at_boot(tmp_path):
    assert load_settings({"COUPONSVC_DEAL_URL_TEMPLATE": "https://shop.example.cn/d/{campaign_id}"},
                         str(tmp_path))["DEAL_URL_TEMPLATE"] == "https://shop.example.cn/d/{campaign_id}"
    assert load_settings({}, str(tmp_path))["DEAL_URL_TEMPLATE"] is None
    with pytest.raises(ConfigError, match="COUPONSVC_DEAL_URL_TEMPLATE"):
        load_settings({"COUPONSVC_DEAL_URL_TEMPLATE": "https://shop.example.cn/{deal}"}, str(tmp_path))


def test_the_font_setting_must_name_a_file(tmp_path):
    with pytest.raises(ConfigError, match="COUPONSVC_POSTER_FONT"):
        load_settings({"COUPONSVC_POSTER_FONT": str(tmp_path / "missing.ttc")}, str(tmp_path))
    font = tmp_path / "font.ttf"
    font.write_bytes(b"")
    assert load_settings({"COUPONSVC_POSTER_FONT": str(font)}, str(tmp_path))["POSTER_FONT"] == str(font)
