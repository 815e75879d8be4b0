"""Every absolute link the API answers starts with COUPONSVC_PUBLIC_URL, never the Host header."""

from __future__ import annotations

import pytest

from couponsvc import public_url
from couponsvc.api import links
from tests.conftest import make_app
from tests.factories import Shop

PUBLIC = "https://coupons.example.cn"
EVIL = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}


@pytest.mark.config(PUBLIC_URL=PUBLIC)
def test_links_start_with_the_public_url_whatever_the_host(client):
    shop = Shop(client)
    merchant = client.post("merchants", {"name": "面馆", "city": "赣州"}, headers=EVIL)
    order = client.post(f"campaigns/{shop.campaign['id']}/orders", {"customer_ref": "a"}, headers=EVIL)
    job = client.post(f"campaigns/{shop.campaign['id']}/coupons/bulk", {"count": 2}, headers=EVIL)
    links_seen = [merchant.headers["Location"], order.headers["Location"], job.headers["Location"],
                  client.ok(job, 202)["csv_url"]]
    code = client.ok(order, 201)["coupons"][0]["code"]
    links_seen += [c["qr_url"] for c in order.get_json()["coupons"]]
    links_seen.append(client.ok(client.get(f"coupons/{code}", headers=EVIL))["qr_url"])
    validated = client.ok(client.post("redemptions/validate", {"code": code}, key=shop.scanner, headers=EVIL))
    links_seen.append(validated["coupon"]["qr_url"])
    links_seen.append(client.ok(client.get(f"campaigns/{shop.campaign['id']}", headers=EVIL))["poster_url"])
    assert links_seen and all(link.startswith(PUBLIC + "/api/v1/") for link in links_seen), links_seen


def test_without_a_public_url_sqlite_links_point_at_the_loopback_port(tmp_path):
    """The embedded default: no PUBLIC_URL on SQLite; links go to 127.0.0.1:$PORT, not the Host."""
    app = make_app(f"sqlite:///{tmp_path / 'links.sqlite3'}", str(tmp_path), PUBLIC_URL="", PORT=8123)
    with app.test_request_context("/api/v1/merchants", headers=EVIL):
        assert public_url.base_url() == "http://127.0.0.1:8123"
        assert links.qr_url("K7QM3XPA9RT2").startswith("http://127.0.0.1:8123/api/v1/coupons/K7QM3XPA9RT2/qr.png?token=")
