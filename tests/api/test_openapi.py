"""The OpenAPI 3.1 document describes the whole contract; /docs renders it."""

from __future__ import annotations

import re

import pytest

PREFIX = "/api/v1"

# Every path and method of the contract (docs/contract.md), except the offline batch upload and the
# integrations (adapters, integrations, deliveries), which are not built yet.
CONTRACT = {
    "/merchants": {"get", "post"},
    "/merchants/{}": {"get"},
    "/merchants/{}/stores": {"post"},
    "/merchants/{}/api-keys": {"post"},
    "/api-keys/{}": {"delete"},
    "/campaigns": {"get", "post"},
    "/campaigns/{}": {"get", "patch"},
    "/campaigns/{}/publish": {"post"},
    "/campaigns/{}/pause": {"post"},
    "/campaigns/{}/resume": {"post"},
    "/campaigns/{}/cancel": {"post"},
    "/campaigns/{}/stats": {"get"},
    "/campaigns/{}/orders": {"post"},
    "/campaigns/{}/coupons/bulk": {"post"},
    "/campaigns/{}/coupons.csv": {"get"},
    "/coupons/{}": {"get"},
    "/coupons/{}/qr.png": {"get"},
    "/coupons/{}/qr.svg": {"get"},
    "/coupons/{}/void": {"post"},
    "/revocations": {"get"},
    "/qr-keys": {"get"},
    "/redemptions/validate": {"post"},
    "/redemptions": {"post"},
    "/redemptions/{}/reverse": {"post"},
    "/events": {"get"},
}
METHODS = {"get", "post", "put", "patch", "delete"}
# POSTs that create something: the contract promises Idempotency-Key on them.
CREATING = ["/campaigns/{}/orders", "/redemptions", "/redemptions/{}/reverse",
            "/campaigns/{}/coupons/bulk"]


@pytest.fixture
def spec(client):
    response = client.get(f"{PREFIX}/openapi.json", key=None)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json"
    return response.get_json()


def _paths(spec) -> dict[str, dict]:
    """The document's paths without the base path, with parameter names blanked."""
    paths = {}
    for path, item in spec["paths"].items():
        bare = path[len(PREFIX):] if path.startswith(PREFIX) else path
        paths[re.sub(r"\{[^}]+\}", "{}", bare)] = item
    return paths


def test_the_document_is_openapi_3_1(spec):
    assert spec["openapi"].startswith("3.1.")
    assert spec["info"]["title"] and spec["info"]["version"]


def test_every_path_of_the_contract_is_documented(spec):
    paths = _paths(spec)
    missing = sorted(set(CONTRACT) - set(paths))
    assert not missing, missing
    wrong = {path: sorted(methods - set(paths[path])) for path, methods in CONTRACT.items()
             if methods - set(paths[path])}
    assert not wrong, wrong


def test_every_documented_operation_is_served(client, spec):
    """No operation is documented that the app does not route (405/404 would be a lie)."""
    routed = {(rule.rule, method.lower()) for rule in client.app.url_map.iter_rules()
              for method in rule.methods}
    for path, item in spec["paths"].items():
        flask_path = re.sub(r"\{([^}]+)\}", r"<\1>", path)
        for method in set(item) & METHODS:
            assert (flask_path, method) in routed, (path, method)


def test_bearer_authentication_is_declared(spec):
    schemes = spec["components"]["securitySchemes"]
    bearer = [name for name, scheme in schemes.items()
              if scheme.get("type") == "http" and scheme.get("scheme") == "bearer"]
    assert bearer, schemes
    assert {name for requirement in spec.get("security", []) for name in requirement} & set(bearer)


def test_public_endpoints_need_no_key(spec):
    paths = _paths(spec)
    assert paths["/qr-keys"]["get"].get("security") == []
    for path in ("/coupons/{}/qr.png", "/coupons/{}/qr.svg"):  # a token, or a key
        assert paths[path]["get"].get("security") == [{}, {"bearerAuth": []}], path


def test_errors_are_documented_as_problem_json(spec):
    problem = spec["components"]["schemas"]["Problem"]["properties"]
    assert {"type", "title", "status", "detail", "code"} <= set(problem)
    media = set()
    for response in spec["components"].get("responses", {}).values():
        media |= set(response.get("content", {}))
    assert media == {"application/problem+json"}, media


def test_creating_posts_document_the_idempotency_key(spec):
    paths = _paths(spec)
    for path in CREATING:
        parameters = paths[path]["post"].get("parameters", []) + paths[path].get("parameters", [])
        headers = {p["name"].lower() for p in parameters if p.get("in") == "header"}
        assert "idempotency-key" in headers, path


def test_the_docs_page_renders_the_document(client):
    response = client.get(f"{PREFIX}/docs", key=None)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "<html" in page.lower()
    assert f"{PREFIX}/openapi.json" in page
