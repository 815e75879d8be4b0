"""gzip of dynamic answers: what is compressed, and what must not be."""

from __future__ import annotations

import gzip
import json

from .factories import Shop

GZIP = {"Accept-Encoding": "gzip, deflate, br"}


def test_the_openapi_document_is_compressed_for_a_client_that_takes_gzip(client):
    plain = client.get("/api/v1/openapi.json", key=None)
    packed = client.get("/api/v1/openapi.json", key=None, headers=GZIP)
    assert "Content-Encoding" not in plain.headers
    assert packed.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed.headers["Vary"]
    assert json.loads(gzip.decompress(packed.data)) == plain.json
    assert len(packed.data) < len(plain.data) / 5


def test_a_json_list_is_compressed_and_a_small_answer_is_not(client):
    for _ in range(12):
        client.merchant()
    listed = client.get("merchants", headers=GZIP)
    assert listed.headers["Content-Encoding"] == "gzip"
    assert len(json.loads(gzip.decompress(listed.data))["data"]) == 12
    assert "Content-Encoding" not in client.get("/healthz", key=None, headers=GZIP).headers


def test_an_answer_to_a_request_with_a_cookie_is_never_compressed(client):
    """A page a browser fetched with its cookie may hold a secret next to echoed input."""
    client.http.set_cookie("couponsvc_admin", "abc")
    answer = client.get("/api/v1/openapi.json", key=None, headers=GZIP)
    assert answer.status_code == 200
    assert "Content-Encoding" not in answer.headers


def test_streamed_answers_answers_with_an_etag_and_refusals_are_left_alone(client):
    shop = Shop(client)
    coupons = shop.coupons(40)
    export = client.get(f"campaigns/{shop.campaign['id']}/coupons.csv", headers=GZIP)
    assert export.status_code == 200
    assert "Content-Encoding" not in export.headers
    assert export.get_data(as_text=True).count("\n") >= 40

    image = client.get(f"coupons/{coupons[0]['code']}/qr.svg", headers=GZIP)
    assert image.status_code == 200 and "ETag" in image.headers
    assert "Content-Encoding" not in image.headers

    missing = client.get("/api/v1/" + "nowhere/" * 200, headers=GZIP)
    assert missing.status_code == 404
    assert "Content-Encoding" not in missing.headers
