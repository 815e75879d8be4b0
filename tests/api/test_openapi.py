"""The OpenAPI 3.1 document describes the whole contract; /docs renders it."""

from __future__ import annotations

import re

import pytest

PREFIX = "/api/v1"

# Every path and method of the contract (docs/contract.md), except the integrations (adapters,
# integrations, deliveries), which are not built yet.
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
    "/redemptions/batch": {"post"},
    "/events": {"get"},
}
METHODS = {"get", "post", "put", "patch", "delete"}
# POSTs that create something: the contract promises Idempotency-Key on them.
CREATING = ["/campaigns/{}/orders", "/redemptions", "/redemptions/{}/reverse",
            "/campaigns/{}/coupons/bulk", "/redemptions/batch"]


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


def test_the_document_is_valid_openapi(spec):
    from openapi_spec_validator import validate

    validate(spec)  # raises, naming what is wrong


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


# -- the reference: every operation complete (couponsvc/api/operations.py) -------------------------


def _operations(spec):
    for path, item in spec["paths"].items():
        for method in set(item) & METHODS:
            yield method, path, item[method]


def _codes(response: dict) -> set[str]:
    """The problem codes a documented error response lists (its `code` enum)."""
    schema = response.get("content", {}).get("application/problem+json", {}).get("schema", {})
    return {code for part in schema.get("allOf", []) for code in
            part.get("properties", {}).get("code", {}).get("enum", [])}


def test_every_operation_has_a_summary_a_description_and_its_roles(spec):
    lacking = []
    for method, path, operation in _operations(spec):
        roles = operation.get("x-roles")
        if not operation.get("summary") or not operation.get("description"):
            lacking.append(f"{method.upper()} {path}: summary or description")
        if roles is None or not set(roles) <= {"platform", "manager", "scanner"}:
            lacking.append(f"{method.upper()} {path}: x-roles {roles}")
        elif not roles and operation.get("security") != []:
            lacking.append(f"{method.upper()} {path}: no role, yet a key is required")
        elif roles and f"Roles: {', '.join(roles)}." not in operation["description"] \
                and operation.get("security") != [{}, {"bearerAuth": []}]:
            lacking.append(f"{method.upper()} {path}: the description does not name its roles")
    assert not lacking, "\n".join(lacking)


def test_the_reference_names_only_documented_operations(spec):
    from couponsvc.api.operations import OPERATIONS

    documented = {f"{method.upper()} {path[len(PREFIX):]}" for method, path, _ in _operations(spec)}
    assert set(OPERATIONS) == documented, (set(OPERATIONS) ^ documented)


def test_roles_are_those_the_view_enforces(client, spec):
    """A key of a role the document does not list is refused 403; a listed one is not."""
    from tests.factories import Shop

    shop = Shop(client)
    keys = {"platform": "platform", "manager": shop.manager, "scanner": shop.roaming_scanner}
    for method, path, operation in _operations(spec):
        roles = operation["x-roles"]
        if operation.get("security") in ([], [{}, {"bearerAuth": []}]):
            continue  # public, or a token instead of a key: the view decides
        url = re.sub(r"\{[^}]+\}", "x", path)
        for role, key in keys.items():
            answer = client.request(method.upper(), url, key=key, json={})
            refused = answer.status_code == 403 and answer.get_json()["code"] == "forbidden"
            assert refused == (role not in roles), (method, path, role, answer.get_json())


def test_every_error_an_operation_can_answer_is_listed_with_its_code(spec):
    from couponsvc.domain_error import CODES

    paths = _paths(spec)
    for method, path, operation in _operations(spec):
        errors = {status: response for status, response in operation["responses"].items()
                  if status.isdigit() and int(status) >= 400}
        for status, response in errors.items():
            codes = _codes(response)
            assert codes and all(CODES[code][0] == int(status) for code in codes), (path, status)
            assert set(response["content"]["application/problem+json"]["examples"]) == codes
        listed = set().union(*map(_codes, errors.values())) if errors else set()
        if operation["x-roles"] and operation.get("security") != [{}, {"bearerAuth": []}]:
            assert {"unauthenticated", "forbidden"} <= listed, (method, path)
        if "requestBody" in operation:
            assert {"malformed_json", "unsupported_media_type", "validation_error"} <= listed, (method, path)
        if "{" in path:
            assert "not_found" in listed or "coupon_not_found" in listed, (method, path)
    redeem = set().union(*map(_codes, paths["/redemptions"]["post"]["responses"].values()))
    assert {"invalid_code", "invalid_qr", "coupon_not_found", "rate_limited", "coupon_already_redeemed",
            "coupon_voided", "insufficient_uses", "idempotency_key_reused"} <= redeem
    order = set().union(*map(_codes, paths["/campaigns/{}/orders"]["post"]["responses"].values()))
    assert {"sold_out", "customer_limit_reached", "campaign_not_on_sale"} <= order


def test_a_problem_may_carry_the_members_a_refusal_adds(spec):
    problem = spec["components"]["schemas"]["Problem"]
    assert problem.get("additionalProperties") is not False
    assert {"bought", "limit", "redeemed_at", "store_id", "uses_left", "remaining", "valid_until",
            "window", "errors", "roles"} <= set(problem["properties"])


def test_requests_and_answers_have_examples_their_schemas_accept(spec):
    from jsonschema import Draft202012Validator

    from couponsvc.api.operations import REQUEST_EXAMPLES

    def refused(media: dict, example) -> list[str]:
        schema = {**media.get("schema", {}), "components": spec["components"]}
        return [error.message[:200] for error in Draft202012Validator(schema).iter_errors(example)]

    lacking = []
    for method, path, operation in _operations(spec):
        for media in operation.get("requestBody", {}).get("content", {}).values():
            if "example" not in media:
                lacking.append(f"{method.upper()} {path}: request")
            else:
                lacking += [f"{method.upper()} {path} request: {m}" for m in refused(media, media["example"])]
        for status, response in operation["responses"].items():
            for kind, media in response.get("content", {}).items():
                examples = [media["example"]] if "example" in media else [
                    example["value"] for example in media.get("examples", {}).values()]
                if kind.endswith("json") and not examples:
                    lacking.append(f"{method.upper()} {path} {status}")
                for example in examples if kind.endswith("json") else ():
                    lacking += [f"{method.upper()} {path} {status}: {m}" for m in refused(media, example)]
    assert not lacking, "\n".join(lacking)
    bodies = {f"{method.upper()} {path[len(PREFIX):]}" for method, path, operation in _operations(spec)
              if "requestBody" in operation}
    assert set(REQUEST_EXAMPLES) <= bodies, set(REQUEST_EXAMPLES) - bodies


def test_every_schema_of_the_document_is_json_schema_2020_12(spec):
    from jsonschema import Draft202012Validator

    for schema in spec["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    for _method, _path, operation in _operations(spec):
        for response in operation["responses"].values():
            for media in response.get("content", {}).values():
                if "schema" in media:
                    Draft202012Validator.check_schema(media["schema"])
