"""/metrics answers the addresses of COUPONSVC_METRICS_ALLOW only, after the proxies."""

from __future__ import annotations

import ipaddress

import pytest

from couponsvc.config import ConfigError, load_settings
from couponsvc.metrics.endpoint import allowed


def get(client, address: str, **headers):
    return client.http.get("/metrics", environ_base={"REMOTE_ADDR": address}, headers=headers)


def test_loopback_is_answered_by_default_in_prometheus_text(client):
    response = get(client, "127.0.0.1")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    text = response.get_data(as_text=True)
    assert "# TYPE couponsvc_redemptions_total counter" in text
    assert "# TYPE couponsvc_redeem_seconds histogram" in text
    assert "couponsvc_delivery_lag_seconds " in text
    assert get(client, "::1").status_code == 200
    assert get(client, "::ffff:127.0.0.1").status_code == 200


@pytest.mark.parametrize("address", ["10.0.0.7", "192.168.1.20", "203.0.113.9", "2001:db8::1"])
def test_other_addresses_get_the_404_of_a_missing_page(client, address):
    response = get(client, address)
    assert response.status_code == 404
    assert b"couponsvc_" not in response.get_data()


@pytest.mark.config(METRICS_ALLOW=[ipaddress.ip_network("10.1.0.0/16"),
                                   ipaddress.ip_network("2001:db8::/32")])
def test_the_allow_list_takes_cidr_ranges_and_replaces_loopback(client):
    assert get(client, "10.1.200.3").status_code == 200
    assert get(client, "2001:db8::9").status_code == 200
    assert get(client, "10.2.0.1").status_code == 404
    assert get(client, "127.0.0.1").status_code == 404


@pytest.mark.config(TRUSTED_PROXIES=1, METRICS_ALLOW=[ipaddress.ip_network("192.0.2.0/24")])
def test_behind_a_trusted_proxy_the_forwarded_client_address_decides(client):
    assert get(client, "127.0.0.1", **{"X-Forwarded-For": "192.0.2.5"}).status_code == 200
    assert get(client, "127.0.0.1", **{"X-Forwarded-For": "203.0.113.9"}).status_code == 404
    # only one hop is trusted: an address the client itself put first changes nothing
    forged = {"X-Forwarded-For": "192.0.2.5, 203.0.113.9"}
    assert get(client, "127.0.0.1", **forged).status_code == 404


@pytest.mark.config(METRICS=False)
def test_metrics_off_serves_nothing(client):
    assert get(client, "127.0.0.1").status_code == 404


def test_the_allow_list_setting_is_read_strictly(tmp_path):
    read = load_settings({"COUPONSVC_METRICS_ALLOW": "10.0.0.0/8, ::1,192.0.2.7"}, str(tmp_path))
    assert [str(n) for n in read["METRICS_ALLOW"]] == ["10.0.0.0/8", "::1/128", "192.0.2.7/32"]
    default = load_settings({}, str(tmp_path))["METRICS_ALLOW"]
    assert allowed("127.0.0.53", default) and allowed("::1", default)
    assert not allowed("10.0.0.1", default) and not allowed("not an address", default)
    with pytest.raises(ConfigError, match="COUPONSVC_METRICS_ALLOW"):
        load_settings({"COUPONSVC_METRICS_ALLOW": "10.0.0.0/33"}, str(tmp_path))
    with pytest.raises(ConfigError, match="COUPONSVC_WORKER_METRICS_LISTEN"):
        load_settings({"COUPONSVC_WORKER_METRICS_LISTEN": "9101"}, str(tmp_path))
    with pytest.raises(ConfigError, match="COUPONSVC_LOG_FORMAT"):
        load_settings({"COUPONSVC_LOG_FORMAT": "xml"}, str(tmp_path))


def test_requests_are_counted_under_labels_a_client_cannot_multiply(client):
    from .scrape import scrape, value

    before = scrape(client)
    for method in ("BREW", "PROPFIND", "X-ANY"):
        client.http.open("/no/such/thing", method=method)
    client.http.open(f"/api/v1/coupons/{'A' * 12}", method="GET")  # a path: its template is counted
    after = scrape(client)
    moved = value(after, "couponsvc_http_requests_total", method="OTHER", route="<unmatched>",
                  status="405") + value(after, "couponsvc_http_requests_total", method="OTHER",
                                        route="<unmatched>", status="404")
    assert moved - (value(before, "couponsvc_http_requests_total", method="OTHER",
                          route="<unmatched>", status="405")
                    + value(before, "couponsvc_http_requests_total", method="OTHER",
                            route="<unmatched>", status="404")) == 3
    assert not any("BREW" in str(labels) or "A" * 12 in str(labels) for _name, labels in after)
    assert value(after, "couponsvc_http_requests_total", method="GET",
                 route="/api/v1/coupons/<code>", status="401") >= 1
